"""Open3D rendering of plain arrays, run inside the render worker (:mod:`recon4d.viz.render_worker`).

Geometries cross the process boundary as tuples of numpy arrays (:func:`to_arrays` /
:func:`from_arrays`). :func:`render_payload` tries the legacy ``Visualizer`` on an EGL
offscreen context first, then Filament's ``OffscreenRenderer`` (see :mod:`recon4d.viz.offscreen`
for why this happens in a separate process). open3d is imported inside the functions (STYLE §6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RenderCamera:
    """A pinhole camera to render from (OpenCV convention, like the scene's own cameras).

    intrinsics:   (3, 3) pixels of the rendered image.
    cam_to_world: (4, 4) OpenCV camera → world.
    """

    intrinsics: np.ndarray
    cam_to_world: np.ndarray


def _clip_range(geometries: list, eye: np.ndarray) -> tuple[float, float]:
    """Near and far planes that keep every geometry (a sky dome tens of metres away included)."""
    corners = np.concatenate([np.asarray(g.get_axis_aligned_bounding_box().get_box_points()) for g in geometries])
    far = float(np.linalg.norm(corners - eye, axis=1).max()) * 1.1 + 1.0
    return max(far * 1e-4, 1e-3), far


def _material(rendering, geometry, o3d, point_size: float):
    material = rendering.MaterialRecord()
    if isinstance(geometry, o3d.geometry.LineSet):
        material.shader = "unlitLine"
        material.line_width = 2.0
    else:
        material.shader = "defaultUnlit"  # unlit: object colours come out exactly as the palette
        material.point_size = point_size
    return material


_RENDERERS: dict = {}
"""One Filament offscreen renderer per image size, reused: creating and dropping many in one
process leaks GPU/driver state and eventually hangs (seen after ~5 with Mesa lavapipe)."""


def _offscreen_renderer(rendering, size: tuple[int, int]):
    renderer = _RENDERERS.get(size)
    if renderer is None:
        renderer = _RENDERERS[size] = rendering.OffscreenRenderer(*size)
        renderer.scene.view.set_post_processing(False)  # no tone mapping: palette colours stay exact
    renderer.scene.clear_geometry()
    renderer.scene.set_background([1.0, 1.0, 1.0, 1.0])
    return renderer


def _render_filament(o3d, geometries: list, camera: RenderCamera, size: tuple[int, int],
                     point_size: float) -> np.ndarray:
    rendering = o3d.visualization.rendering
    renderer = _offscreen_renderer(rendering, size)
    for i, geometry in enumerate(geometries):
        renderer.scene.add_geometry(f"g{i}", geometry, _material(rendering, geometry, o3d, point_size))
    renderer.setup_camera(camera.intrinsics, np.linalg.inv(camera.cam_to_world), *size)
    near, far = _clip_range(geometries, camera.cam_to_world[:3, 3])
    renderer.scene.camera.set_projection(camera.intrinsics, near, far, *size)
    return np.asarray(renderer.render_to_image())[..., :3].copy()


def _render_legacy(o3d, geometries: list, camera: RenderCamera, size: tuple[int, int],
                   point_size: float) -> np.ndarray:
    visualizer = o3d.visualization.Visualizer()
    if not visualizer.create_window(visible=False, width=size[0], height=size[1]):
        raise RuntimeError("the legacy Visualizer could not open an offscreen window")
    try:
        for geometry in geometries:
            visualizer.add_geometry(geometry)
        options = visualizer.get_render_option()
        options.point_size = point_size
        options.light_on = False
        options.background_color = np.ones(3)
        parameters = o3d.camera.PinholeCameraParameters()
        parameters.intrinsic = o3d.camera.PinholeCameraIntrinsic(size[0], size[1], camera.intrinsics)
        parameters.extrinsic = np.linalg.inv(camera.cam_to_world)
        visualizer.get_view_control().convert_from_pinhole_camera_parameters(parameters, allow_arbitrary=True)
        visualizer.poll_events()
        visualizer.update_renderer()
        image = np.asarray(visualizer.capture_screen_float_buffer(do_render=True))
    finally:
        visualizer.destroy_window()
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_arrays(o3d, geometry) -> tuple:
    if isinstance(geometry, o3d.geometry.PointCloud):
        return ("points", np.asarray(geometry.points), np.asarray(geometry.colors))
    if isinstance(geometry, o3d.geometry.LineSet):
        return ("lines", np.asarray(geometry.points), np.asarray(geometry.lines), np.asarray(geometry.colors))
    if isinstance(geometry, o3d.geometry.TriangleMesh):
        return ("mesh", np.asarray(geometry.vertices), np.asarray(geometry.triangles),
                np.asarray(geometry.vertex_colors))
    raise TypeError(f"cannot render a {type(geometry).__name__}")



def from_arrays(o3d, item: tuple):
    kind, *arrays = item
    vec3, vec2i, vec3i = o3d.utility.Vector3dVector, o3d.utility.Vector2iVector, o3d.utility.Vector3iVector
    if kind == "points":
        geometry = o3d.geometry.PointCloud(vec3(arrays[0]))
        geometry.colors = vec3(arrays[1])
    elif kind == "lines":
        geometry = o3d.geometry.LineSet(vec3(arrays[0]), vec2i(arrays[1]))
        geometry.colors = vec3(arrays[2])
    else:
        geometry = o3d.geometry.TriangleMesh(vec3(arrays[0]), vec3i(arrays[1]))
        geometry.vertex_colors = vec3(arrays[2])
    return geometry



def render_payload(payload: list, camera: RenderCamera, size: tuple[int, int], point_size: float):
    """In the worker: rebuild the geometries, try the legacy EGL renderer, then Filament.
    Returns the image, or the list of failure reasons."""
    import open3d as o3d

    geometries = [from_arrays(o3d, item) for item in payload]
    failures = []
    for renderer in (_render_legacy, _render_filament):
        try:
            image = renderer(o3d, geometries, camera, size, point_size)
        except RuntimeError as exc:
            failures.append(f"{renderer.__name__.lstrip('_')}: {exc}")
            continue
        if image.shape[:2] == (size[1], size[0]) and image.std() > 0:
            return image
        failures.append(f"{renderer.__name__.lstrip('_')}: returned a blank {image.shape} image")
    return failures
