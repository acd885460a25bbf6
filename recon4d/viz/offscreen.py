"""Headless rendering of Open3D geometry, in a worker process.

An OpenGL/Vulkan context on Mesa's software drivers loads Mesa's LLVM into the process; a
later import of a library with its own LLVM (triton, which torch and transformers import)
then crashes the interpreter (seen here: render, then ``import triton`` → SIGSEGV). So
:func:`render_geometries` sends plain arrays to one long-lived worker process
(``python -m recon4d.viz.render_worker``, started on first use, stopped at exit, killed and
replaced when it stalls) and the caller's process never holds a GL context.

In the worker the legacy ``Visualizer`` on an EGL offscreen context (``libegl1
libgl1-mesa-dri``; ~0.1 s a frame on the CPU) is tried first, then Filament's
``OffscreenRenderer`` (Vulkan; Mesa's lavapipe without a GPU, ``libvulkan1
mesa-vulkan-drivers``), which took 1–6 s a frame on lavapipe here and stalled after a few
renders in one process. open3d is imported inside the functions that need it (STYLE §6).
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



_WORKER = {}
_WORKER_TIMEOUT_S = 300.0


def _to_arrays(o3d, geometry) -> tuple:
    if isinstance(geometry, o3d.geometry.PointCloud):
        return ("points", np.asarray(geometry.points), np.asarray(geometry.colors))
    if isinstance(geometry, o3d.geometry.LineSet):
        return ("lines", np.asarray(geometry.points), np.asarray(geometry.lines), np.asarray(geometry.colors))
    if isinstance(geometry, o3d.geometry.TriangleMesh):
        return ("mesh", np.asarray(geometry.vertices), np.asarray(geometry.triangles),
                np.asarray(geometry.vertex_colors))
    raise TypeError(f"cannot render a {type(geometry).__name__}")


def _from_arrays(o3d, item: tuple):
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


def _worker_render(payload: list, camera: RenderCamera, size: tuple[int, int], point_size: float):
    """In the worker: rebuild the geometries, try the legacy EGL renderer, then Filament.
    Returns the image, or the list of failure reasons."""
    import open3d as o3d

    geometries = [_from_arrays(o3d, item) for item in payload]
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


def _stop_worker() -> None:
    """Close the worker's stdin (it exits), wait for it and release its pipes and log."""
    worker, log = _WORKER.pop("process", None), _WORKER.pop("log", None)
    if worker is not None:
        worker.stdin.close()
        try:
            worker.wait(timeout=10)
        except Exception:  # a stuck worker is killed rather than waited on forever
            worker.kill()
            worker.wait()
        worker.stdout.close()
    if log is not None:
        log.close()


def _render_in_worker(payload: list, camera: RenderCamera, size: tuple[int, int], point_size: float):
    """Send one render to the worker process (started on first use); the image, or failure reasons."""
    import pickle
    import select
    import subprocess
    import sys
    import tempfile

    from recon4d.viz.render_worker import read_frame, write_frame

    worker = _WORKER.get("process")
    if worker is None or worker.poll() is not None:
        log = tempfile.TemporaryFile()
        worker = subprocess.Popen([sys.executable, "-m", "recon4d.viz.render_worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log)
        if not _WORKER:
            import atexit

            atexit.register(_stop_worker)
        _WORKER.update(process=worker, log=log)
    try:
        write_frame(worker.stdin, pickle.dumps((payload, camera, size, point_size)))
        ready, _, _ = select.select([worker.stdout], [], [], _WORKER_TIMEOUT_S)
        reply = read_frame(worker.stdout) if ready else None
    except (BrokenPipeError, OSError):
        reply = None
    if reply is None:
        worker.kill()
        worker.wait()
        log = _WORKER["log"]
        log.seek(0)
        tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
        _stop_worker()
        why = "timed out" if worker.returncode in (-9, None) else f"exited with code {worker.returncode}"
        return [f"the render worker {why}" + (f": {' / '.join(tail)}" if tail else "")]
    status, result = pickle.loads(reply)
    if status == "error":
        return [f"the render worker failed: {result}"]
    return result


def render_geometries(o3d, geometries: list, camera: RenderCamera, size: tuple[int, int],
                      point_size: float) -> np.ndarray | list[str]:
    """(height, width, 3) uint8 render of Open3D ``geometries`` (point clouds, line sets,
    triangle meshes) from ``camera`` at ``size`` = (width, height); or, when no renderer
    works, the list of reasons why."""
    return _render_in_worker([_to_arrays(o3d, g) for g in geometries], camera, size, point_size)
