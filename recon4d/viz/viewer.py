"""Look at a scene: Open3D geometries, a headless PNG render and an interactive window.

What is drawn, all in world coordinates (DESIGN §2):

- the point map of one frame (or a few frames), camera-frame points moved to the world with
  ``cam_to_world``, coloured by the video's RGB or by object (mask → palette colour, the
  background grey);
- camera frustums along the path, the current frame's in red, and the camera path;
- each object's 3D trajectory as a polyline in its palette colour, with a small sphere at
  its current position;
- each agent's forward axis as an arrow: R_world←cam · forward_axis(orientation);
- the world axes (x red, y green, z blue).

Headless renders go through :mod:`recon4d.viz.offscreen` (a worker process with its own
EGL/Vulkan context).
open3d is imported inside the functions that need it (STYLE §6).
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path
from typing import Literal

import numpy as np

from recon4d.optional import require
from recon4d.errors import Recon4dError, ShapeError
from recon4d.outputs import check_output, write_bytes
from recon4d.geometry import forward_axis
from recon4d.viz.offscreen import RenderCamera, render_geometries
from recon4d.types import Scene

ColorBy = Literal["rgb", "object"]

BACKGROUND_GREY = (0.6, 0.6, 0.6)
CURRENT_FRUSTUM_COLOUR = (0.9, 0.1, 0.1)
PATH_FRUSTUM_COLOUR = (0.25, 0.25, 0.3)
_MIN_CONF = 0.1  # DESIGN §4: the π³ reference keeps pixels with sigmoid(conf) > 0.1
_MAX_PATH_FRUSTUMS = 12
_OVERVIEW_FRAMES = 4
_SYSTEM_PACKAGES = "libvulkan1 mesa-vulkan-drivers libegl1 libgl1-mesa-dri"


def object_palette(n_objects: int) -> np.ndarray:
    """(K, 3) float64 RGB in [0, 1]: saturated, well separated hues, none of them grey."""
    hues = (0.08 + np.arange(n_objects) * 0.618034) % 1.0  # golden-ratio steps keep neighbours apart
    return np.array([colorsys.hsv_to_rgb(h, 0.85, 0.95) for h in hues]).reshape(n_objects, 3)


def scene_frame_rgb(scene: Scene, frames) -> np.ndarray:
    """(len(frames), H, W, 3) uint8: the source video's frames at the point-map size (H, W).

    Raises Recon4dError when the scene has no point maps or its source video is gone.
    """
    from recon4d.video import iter_frames

    if scene.local_points is None:
        raise Recon4dError("the scene has no point maps (geometry/local_points); RGB colours need them.")
    if scene.source is None or not Path(scene.source.path).is_file():
        where = scene.source.path if scene.source is not None else "not recorded"
        raise Recon4dError(f"the scene's source video ({where}) cannot be found, so points cannot be "
                           "coloured by RGB; pass color_by='object' or frames_rgb.")
    height, width = scene.local_points.shape[1:3]
    frames = np.asarray(frames, np.int64)
    order = np.argsort(frames)
    wanted = scene.frame_index[frames[order]]
    decoded = [rgb for _, _, rgb in iter_frames(scene.source.path, wanted, size=(width, height))]
    rgb = np.empty((len(frames), height, width, 3), np.uint8)
    for slot, frame_rgb in zip(order, decoded):
        rgb[slot] = frame_rgb
    return rgb


def _overview_frames(n_frames: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_frames - 1, min(_OVERVIEW_FRAMES, n_frames)).round().astype(np.int64))


def _points_and_colours(scene: Scene, frames: np.ndarray, color_by: ColorBy, frames_rgb,
                        max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) and colours (N, 3) in [0, 1] of ``frames``, at most ~``max_points``."""
    _, height, width, _ = scene.local_points.shape
    stride = max(1, math.ceil(math.sqrt(len(frames) * height * width / max(1, max_points))))
    rows, cols = slice(None, None, stride), slice(None, None, stride)
    rgb = None
    if color_by == "rgb":
        if frames_rgb is not None:
            check_rgb = np.asarray(frames_rgb)
            if check_rgb.shape != (scene.n_frames, height, width, 3):
                raise ShapeError(f"frames_rgb must have shape {(scene.n_frames, height, width, 3)} (one RGB "
                                 f"frame per scene frame at the point-map size), got {check_rgb.shape}.")
            rgb = check_rgb[frames]
        else:
            rgb = scene_frame_rgb(scene, frames)
    palette = object_palette(scene.n_objects)
    all_points, all_colours = [], []
    for slot, t in enumerate(frames):
        local = np.asarray(scene.local_points[t, rows, cols], np.float64).reshape(-1, 3)
        keep = np.isfinite(local).all(axis=1)
        if scene.conf is not None:
            keep &= np.asarray(scene.conf[t, rows, cols], np.float64).reshape(-1) > _MIN_CONF
        if color_by == "rgb":
            colours = rgb[slot, rows, cols].reshape(-1, 3) / 255.0
        else:
            colours = np.tile(BACKGROUND_GREY, (local.shape[0], 1))
            if scene.masks is not None and scene.n_objects:
                masks = np.asarray(scene.masks[:, int(t)])[:, rows, cols].reshape(scene.n_objects, -1)
                for k in range(scene.n_objects):
                    colours[masks[k]] = palette[k]
        rotation, translation = scene.cam_to_world[t, :3, :3], scene.cam_to_world[t, :3, 3]
        all_points.append(local[keep] @ rotation.T + translation)
        all_colours.append(colours[keep])
    return np.concatenate(all_points), np.concatenate(all_colours)


def scene_bounds(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) world corners of the camera centres and object centres (point maps ignored:
    a sky or far wall would swamp the action)."""
    centres = [scene.cam_to_world[:, :3, 3], scene.center_world.reshape(-1, 3)]
    stacked = np.concatenate(centres)
    stacked = stacked[np.isfinite(stacked).all(axis=1)]
    if not len(stacked):
        check_drawable(scene)
        return np.zeros(3), np.zeros(3)
    return stacked.min(axis=0), stacked.max(axis=0)


def _scene_scale(scene: Scene) -> float:
    low, high = scene_bounds(scene)
    return max(float(np.linalg.norm(high - low)), 1.0)


def _frustum_lines(cam_to_world: np.ndarray, intrinsics: np.ndarray, image_size: tuple[int, int],
                   depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (5, 3) and line index pairs (8, 2) of a camera frustum ``depth`` deep."""
    width, height = image_size
    if np.isfinite(intrinsics).all():
        corners_px = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
        corners = (np.linalg.inv(intrinsics.astype(np.float64)) @ corners_px.T).T
    else:
        half_w = 0.5 * width / max(width, height)  # unknown intrinsics: draw a ~53° field of view
        half_h = 0.5 * height / max(width, height)
        corners = np.array([[-half_w, -half_h, 1], [half_w, -half_h, 1], [half_w, half_h, 1], [-half_w, half_h, 1]])
    local = np.vstack([np.zeros(3), corners * depth])
    vertices = local @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
    lines = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1]])
    return vertices, lines


def _line_set(o3d, vertices: np.ndarray, lines: np.ndarray, colour):
    line_set = o3d.geometry.LineSet(o3d.utility.Vector3dVector(np.asarray(vertices, np.float64)),
                                    o3d.utility.Vector2iVector(np.asarray(lines, np.int32).reshape(-1, 2)))
    line_set.paint_uniform_color(colour)
    return line_set


def _image_size(scene: Scene) -> tuple[int, int]:
    if scene.source is not None:
        return tuple(scene.source.size)
    if scene.local_points is not None:
        return int(scene.local_points.shape[2]), int(scene.local_points.shape[1])
    return 640, 360


def _frustums(o3d, scene: Scene, frame: int, depth: float) -> list:
    """Path frustums (one LineSet with the camera path), and the current frame's frustum."""
    size = _image_size(scene)
    picks = np.unique(np.linspace(0, scene.n_frames - 1, min(_MAX_PATH_FRUSTUMS, scene.n_frames)).round())
    vertices, lines = [scene.cam_to_world[:, :3, 3]], [np.stack([np.arange(scene.n_frames - 1),
                                                                  np.arange(1, scene.n_frames)], axis=1)]
    offset = scene.n_frames
    for t in picks.astype(int):
        if t == frame:
            continue
        v, l = _frustum_lines(scene.cam_to_world[t], scene.intrinsics[t], size, 0.6 * depth)
        vertices.append(v)
        lines.append(l + offset)
        offset += len(v)
    path = _line_set(o3d, np.concatenate(vertices), np.concatenate(lines), PATH_FRUSTUM_COLOUR)
    v, l = _frustum_lines(scene.cam_to_world[frame], scene.intrinsics[frame], size, depth)
    return [path, _line_set(o3d, v, l, CURRENT_FRUSTUM_COLOUR)]


def _trajectory(o3d, centres: np.ndarray, colour):
    """A polyline through the finite (T, 3) centres; gaps (NaN frames) are not bridged."""
    finite = np.isfinite(centres).all(axis=1)
    joined = np.flatnonzero(finite[:-1] & finite[1:])
    return _line_set(o3d, np.nan_to_num(centres), np.stack([joined, joined + 1], axis=1), colour)


def _rotation_from_z(direction: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking +z to the unit vector ``direction`` (Open3D arrows point along +z)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _markers_and_arrows(o3d, scene: Scene, frame: int, scale: float) -> list:
    """Spheres at the objects' current centres; forward arrows on agents with an orientation."""
    palette = object_palette(scene.n_objects)
    geometries = []
    for k in range(scene.n_objects):
        centre = scene.center_world[k, frame]
        if not np.isfinite(centre).all():
            continue
        sphere = o3d.geometry.TriangleMesh.create_sphere(radius=0.012 * scale, resolution=12)
        sphere.translate(centre)
        sphere.paint_uniform_color(palette[k])
        sphere.compute_vertex_normals()
        geometries.append(sphere)
        angles = scene.orientation[k, frame]
        if not (scene.is_agent[k] and np.isfinite(angles).all()):
            continue
        direction = scene.cam_to_world[frame, :3, :3] @ forward_axis(angles.astype(np.float64))
        length = 0.08 * scale
        arrow = o3d.geometry.TriangleMesh.create_arrow(
            cylinder_radius=0.04 * length, cone_radius=0.1 * length,
            cylinder_height=0.75 * length, cone_height=0.25 * length)
        arrow.rotate(_rotation_from_z(direction), center=np.zeros(3))
        arrow.translate(centre)
        arrow.paint_uniform_color(palette[k])
        arrow.compute_vertex_normals()
        geometries.append(arrow)
    return geometries


def _check_frame(scene: Scene, frame: int | None) -> None:
    if frame is not None and not 0 <= frame < scene.n_frames:
        raise Recon4dError(f"frame {frame} is out of range; the scene has frames 0..{scene.n_frames - 1}.")


def check_drawable(scene: Scene) -> None:
    """Refuse a scene whose camera poses are not finite numbers, naming the frames: the renderer
    would otherwise fail in a way that looks like a graphics-driver problem."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(scene.cam_to_world)).all(axis=(1, 2)))
    if bad.size:
        frames = ", ".join(str(int(t)) for t in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise Recon4dError(f"the scene's camera poses are not finite numbers (NaN or inf) at {bad.size} of "
                           f"{scene.n_frames} frames ({frames}), so it cannot be drawn; the store is damaged or its "
                           "reconstruction failed. Re-process the video (`recon4d inspect --verify` checks a store).")


def build_geometries(scene: Scene, frame: int | None = None, color_by: ColorBy = "rgb", frames_rgb=None,
                     max_points: int = 200_000) -> list:
    """Open3D geometries showing ``scene`` at ``frame``, all in world coordinates.

    frame:      scene frame (0..T-1) whose points, frustum and markers are current; None shows
                the points of a few frames spread over the clip, with frame 0 current.
    color_by:   "rgb" (video colours) or "object" (palette colour per object, grey background).
    frames_rgb: (T, H, W, 3) uint8 video frames at the point-map size; None decodes them from
                the scene's source video when ``color_by == "rgb"``.
    max_points: about how many points to keep (pixels are taken on a regular stride).

    Returns, in order: the PointCloud (only when the scene has point maps), the camera path
    with its frustums (LineSet), the current frustum (LineSet), one trajectory LineSet per
    object, then per object visible at ``frame`` a sphere and (agents) an arrow, then the axes.
    """
    o3d = require("open3d", extra="viz", purpose="viewing scenes")
    if color_by not in ("rgb", "object"):
        raise Recon4dError(f"color_by must be 'rgb' or 'object', got {color_by!r}.")
    _check_frame(scene, frame)
    check_drawable(scene)
    current = 0 if frame is None else int(frame)
    scale = _scene_scale(scene)
    geometries = []
    if scene.local_points is not None:
        frames = _overview_frames(scene.n_frames) if frame is None else np.array([current])
        points, colours = _points_and_colours(scene, frames, color_by, frames_rgb, max_points)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        cloud.colors = o3d.utility.Vector3dVector(colours)
        geometries.append(cloud)
    geometries += _frustums(o3d, scene, current, 0.06 * scale)
    palette = object_palette(scene.n_objects)
    geometries += [_trajectory(o3d, scene.center_world[k], palette[k]) for k in range(scene.n_objects)]
    geometries += _markers_and_arrows(o3d, scene, current, scale)
    geometries.append(o3d.geometry.TriangleMesh.create_coordinate_frame(size=0.05 * scale))
    return geometries


def auto_camera(scene: Scene, size: tuple[int, int], fov_deg: float = 60.0) -> RenderCamera:
    """A camera behind and above the first camera, looking at the centre of the scene's bounds.

    "Up" is the first camera's up (−y in OpenCV), so it is right whichever way the world is turned.
    """
    low, high = scene_bounds(scene)
    target = 0.5 * (low + high)
    diagonal = max(float(np.linalg.norm(high - low)), 1.0)
    first = scene.cam_to_world[0]
    up = -first[:3, 1]
    back = first[:3, 3] - target
    back = back - up * (back @ up)
    back = back / np.linalg.norm(back) if np.linalg.norm(back) > 1e-9 else -first[:3, 2]
    eye = target + back * (0.5 * diagonal + np.linalg.norm(first[:3, 3] - target)) + up * 0.45 * diagonal
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = np.stack([right, down, forward], axis=1)
    cam_to_world[:3, 3] = eye
    width, height = size
    focal = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    intrinsics = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    return RenderCamera(intrinsics=intrinsics, cam_to_world=cam_to_world)


def scene_camera(scene: Scene, frame: int, size: tuple[int, int]) -> RenderCamera:
    """The scene's own camera at ``frame``, intrinsics rescaled from source pixels to ``size``."""
    intrinsics = scene.intrinsics[frame].astype(np.float64)
    if not np.isfinite(intrinsics).all():
        raise Recon4dError(f"the scene has no intrinsics at frame {frame}; render with the automatic camera.")
    source_w, source_h = _image_size(scene)
    scaled = np.diag([size[0] / source_w, size[1] / source_h, 1.0]) @ intrinsics
    return RenderCamera(intrinsics=scaled, cam_to_world=scene.cam_to_world[frame].copy())


def _point_size(scene: Scene, render_width: int, max_points: int) -> float:
    """Pixels per point so that a point map enlarged into the render leaves no gaps between rows."""
    if scene.local_points is None:
        return 2.0
    _, height, width, _ = scene.local_points.shape
    stride = max(1, math.ceil(math.sqrt(height * width / max(1, max_points))))
    return float(np.clip(round(1.5 * render_width * stride / width), 2, 8))


def render_image(scene: Scene, frame: int = 0, size: tuple[int, int] = (960, 540), color_by: ColorBy = "rgb",
                 camera: RenderCamera | None = None, frames_rgb=None) -> np.ndarray:
    """(height, width, 3) uint8 headless render of :func:`build_geometries` at ``frame``.

    camera: where to look from; None picks :func:`auto_camera`. Tries Filament's offscreen
    renderer, then the legacy Visualizer; raises Recon4dError naming the system packages when
    neither can start.
    """
    o3d = require("open3d", extra="viz", purpose="rendering scenes")
    width, height = (int(s) for s in size)
    if width <= 0 or height <= 0:
        raise Recon4dError(f"size must be positive (width, height), got {size}.")
    max_points = 200_000
    geometries = build_geometries(scene, frame, color_by=color_by, frames_rgb=frames_rgb, max_points=max_points)
    camera = camera if camera is not None else auto_camera(scene, (width, height))
    point_size = _point_size(scene, width, max_points)
    failures = render_geometries(o3d, geometries, camera, (width, height), point_size)
    if isinstance(failures, np.ndarray):
        return failures
    raise Recon4dError(
        "headless rendering is not possible on this machine (" + "; ".join(failures) + "). Open3D needs "
        f"Vulkan or EGL; on Debian/Ubuntu install them with `apt-get install -y {_SYSTEM_PACKAGES}` "
        "(Mesa's software drivers work without a GPU), or use `recon4d view` on a machine with a display."
    )


def render_png(scene: Scene, out_png: str | Path, frame: int = 0, size: tuple[int, int] = (960, 540),
               color_by: ColorBy = "rgb", camera: RenderCamera | None = None, frames_rgb=None) -> Path:
    """Render ``scene`` at ``frame`` headless (see :func:`render_image`) and write it as a PNG."""
    import cv2

    check_output(out_png, "file", what="screenshot")
    image = render_image(scene, frame, size, color_by, camera, frames_rgb)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise Recon4dError(f"could not encode the render for {out_png} as a PNG (OpenCV's imencode failed).")
    return write_bytes(out_png, encoded.tobytes(), what="screenshot")


def view_interactive(scene: Scene, frame: int = 0, color_by: ColorBy = "rgb", size: tuple[int, int] = (1280, 720),
                     frames_rgb=None) -> None:
    """Open a window on ``scene``; N / → step forward in time, P / ← back, Q or Esc closes.

    Needs a display. RGB colours are decoded once for the whole clip, so stepping is quick.
    """
    o3d = require("open3d", extra="viz", purpose="viewing scenes")
    _check_frame(scene, frame)
    if color_by == "rgb" and frames_rgb is None and scene.local_points is not None:
        frames_rgb = scene_frame_rgb(scene, np.arange(scene.n_frames))
    state = {"frame": int(frame)}
    visualizer = o3d.visualization.VisualizerWithKeyCallback()
    if not visualizer.create_window(window_name="recon4d", width=size[0], height=size[1]):
        raise Recon4dError("could not open a window; is there a display? Use --screenshot to render a PNG.")

    def show(reset_view: bool) -> None:
        visualizer.clear_geometries()
        for geometry in build_geometries(scene, state["frame"], color_by=color_by, frames_rgb=frames_rgb):
            visualizer.add_geometry(geometry, reset_bounding_box=reset_view)
        print(f"frame {state['frame']}/{scene.n_frames - 1}  t = {scene.timestamps_s[state['frame']]:.2f} s")

    def step(delta: int):
        def callback(_visualizer) -> bool:
            state["frame"] = (state["frame"] + delta) % scene.n_frames
            show(reset_view=False)
            return True
        return callback

    for key, delta in ((ord("N"), 1), (262, 1), (ord("P"), -1), (263, -1)):  # 262/263: GLFW right/left
        visualizer.register_key_callback(key, step(delta))
    visualizer.get_render_option().point_size = 2.0
    show(reset_view=True)
    visualizer.run()
    visualizer.destroy_window()
