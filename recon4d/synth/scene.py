"""Procedural 4D scenes with full ground truth (DESIGN §9).

A scene is a walled yard under a sky dome: a textured ground plane (world z = 0, z up), four
brick walls, and a few objects moving on smooth paths — agents ("person", "dog") that face
where they walk and non-agents ("box", "ball", "cone", "car") that slide, roll or drive —
filmed by a camera of one of ``CAMERA_KINDS`` (:mod:`recon4d.synth.cameras`: static, a
panning tripod, an orbit, a handheld walk, a handheld follower).

Two flavours (``SynthConfig.varied``):

- plain (the library default, what most unit tests are written against): paved ground,
  no props, objects that always move and stay in view, an orbiting or still camera;
- footage-like (``recon4d synth``'s default): paving, grass or asphalt; walls, pillars,
  crates and parked cars that objects pass behind (:mod:`recon4d.synth.layout`); cars;
  groups of people walking close together; objects that stop and restart, or enter and
  leave the frame (:mod:`recon4d.synth.motion`); the camera kind drawn from the seed.

Meshes are built with trimesh and ray cast with Open3D's ``RaycastingScene`` (exact depth,
geometry ids and normals, on the CPU); procedural textures and Lambert + ambient shading
with sun shadows are computed in numpy over all rays of a frame at once.

Ground truth and its conventions:

- Pixels: pixel (row i, column j) covers [j, j+1) × [i, i+1) and its ray passes through its
  centre (j + 0.5, i + 0.5), so a point it sees projects to u = fx·x/z + cx = j + 0.5.
  Boxes use pixel edges: x2 = last column + 1. Intrinsics have fx = fy and the principal
  point at the image centre (W/2, H/2).
- ``cam_to_world`` (T, 4, 4): OpenCV camera → world. World: z up, ground at z = 0, the action
  around the origin.
- ``local_points`` (T, H, W, 3) float32: the first surface each pixel's ray hits, in OpenCV
  camera coordinates (z = depth). Every ray hits something (the sky is a dome of radius
  60 m), so ``conf`` is 1 everywhere. Props are background: their pixels belong to no object.
- ``masks`` (K, T, H, W): pixels whose first hit is object k (occlusion is exact). An object
  is ``visible`` when at least ``min_visible_px`` pixels show it; box, centre, extent and
  orientation are NaN where it is not.
- ``center_world``: centre of the object's own bounding box (the origin of its pose);
  ``extent``: the size of that box along the object's forward, left and up axes, metres.
- ``orientation`` (agents only): (azimuth, polar, rotation) of R_cam←agent = R_world←camᵀ ·
  R_world←agent, where the agent frame has forward = heading (its direction of travel, the
  path's tangent while it stands still) and up = world z (DESIGN §2); ``orient_conf`` is 1
  there. Handheld cameras roll a little, so ``rotation`` need not be 0.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from recon4d import __version__
from recon4d.optional import require
from recon4d.synth.bodies import heading_rotation, make_body, pick_categories, pick_varied_categories
from recon4d.synth.cameras import CAMERA_KINDS, follow_path, look_at, orbit_path, pan_path, static_path, walk_path
from recon4d.synth.layout import Prop, place_props
from recon4d.synth.looks import ground_albedo, object_albedo, random_look, sky_colour, wall_albedo, with_ground
from recon4d.synth.motion import draw_subject_path, varied_object_poses
from recon4d.synth.paths import object_poses
from recon4d.errors import StoreError
from recon4d.geometry import rotation_to_orientation
from recon4d.types import ProgressFn, Scene, SourceInfo

_YARD_HALF_SIZE_M = 14.0
_WALL_HEIGHT_M = 6.0
_SKY_RADIUS_M = 60.0
_MAX_OBJECTS = 8
_CAMERA_KIND_STREAM = 3  # child of SeedSequence(seed) that draws the camera kind of varied scenes

__all__ = ["CAMERA_KINDS", "SynthConfig", "SyntheticScene", "SyntheticPaths", "generate_scene", "write_synthetic",
           "synth_intrinsics", "look_at", "heading_to_orientation"]
_SHADOW_RANGE_M = 30.0  # farther than any wall or object from a point in the yard, nearer than the sky


@dataclass(frozen=True)
class SynthConfig:
    """How to generate one synthetic scene; the defaults give a 4 s, 640×360 clip."""

    seed: int = 0
    """Seed of every random choice (camera path, objects, paths, textures): same seed, same scene."""
    n_frames: int = 48
    """Number of frames T."""
    fps: float = 12.0
    """Frame rate; frame t shows the scene at t / fps seconds."""
    width: int = 640
    """Image width in pixels; even, because H.264 with 4:2:0 chroma needs even sides."""
    height: int = 360
    """Image height in pixels; even."""
    n_objects: int | None = None
    """Number of moving objects K, 0–8; None lets the seed pick 2–6 (footage-like: 2–7)."""
    static_camera: bool = False
    """Keep the camera still (the same as ``camera="static"``)."""
    camera: str | None = None
    """Camera kind, one of ``CAMERA_KINDS``; None: "orbit" for plain scenes, drawn from the
    seed for footage-like ones (``camera_kind`` resolves it)."""
    varied: bool = False
    """Footage-like content: props that hide objects, cars, groups, objects that stop and
    restart or cross the frame, varied ground (module docstring); False: the plain yard."""
    fov_deg: float = 60.0
    """Horizontal field of view in degrees (square pixels)."""
    min_visible_px: int = 20
    """An object is visible in a frame when at least this many pixels show it."""
    shadows: bool = True
    """Cast sun shadows (one more ray per lit pixel)."""

    def __post_init__(self) -> None:
        def fail(message: str) -> NoReturn:
            raise ValueError(f"SynthConfig: {message}")

        for name in ("seed", "n_frames", "width", "height", "min_visible_px", "n_objects"):
            value = getattr(self, name)
            if value is None and name == "n_objects":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                fail(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
        if self.seed < 0:
            fail(f"seed must be a non-negative integer, got {self.seed}.")
        if self.n_frames < 1:
            fail(f"n_frames must be at least 1, got {self.n_frames}.")
        if not (isinstance(self.fps, (int, float, np.number)) and math.isfinite(self.fps) and self.fps > 0):
            fail(f"fps must be a positive number, got {self.fps}.")
        for name in ("width", "height"):
            size = getattr(self, name)
            if size < 16 or size % 2:
                fail(f"{name} must be an even number of pixels ≥ 16 (H.264 needs even sides), got {size}.")
        if self.n_objects is not None and not 0 <= self.n_objects <= _MAX_OBJECTS:
            fail(f"n_objects must be between 0 and {_MAX_OBJECTS} (or None for 2–6), got {self.n_objects}.")
        if not (isinstance(self.fov_deg, (int, float, np.number)) and 10.0 <= self.fov_deg <= 120.0):
            fail(f"fov_deg must be between 10 and 120 degrees, got {self.fov_deg}.")
        if self.min_visible_px < 1:
            fail(f"min_visible_px must be at least 1, got {self.min_visible_px}.")
        if self.camera is not None and self.camera not in CAMERA_KINDS:
            fail(f"camera must be one of {', '.join(CAMERA_KINDS)} (or None), got {self.camera!r}.")
        if self.static_camera and self.camera not in (None, "static"):
            fail(f"static_camera=True asks for a still camera but camera={self.camera!r}; give one of them.")

    @property
    def camera_kind(self) -> str:
        """The camera kind this config renders (``camera`` resolved as its docstring says)."""
        if self.static_camera:
            return "static"
        if self.camera is not None:
            return self.camera
        if not self.varied:
            return "orbit"
        stream = np.random.SeedSequence(self.seed).spawn(_CAMERA_KIND_STREAM + 1)[_CAMERA_KIND_STREAM]
        return str(np.random.default_rng(stream).choice(CAMERA_KINDS))

    def to_json(self) -> dict:
        """The fields as plain JSON values and the resolved ``camera_kind`` (the scene's ``config``)."""
        data = {key: value.item() if isinstance(value, np.generic) else value
                for key, value in dataclasses.asdict(self).items()}
        return dict(data, camera_kind=self.camera_kind)


@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A rendered clip and its ground truth.

    frames:          (T, H, W, 3) uint8 RGB.
    scene:           the ground-truth :class:`Scene` (points, conf, masks and extent filled;
                     ``source`` is None until the clip is written as a video).
    object_to_world: (K, T, 4, 4) float64 pose of each object's own frame (x forward, y left,
                     z up, origin at its bounding-box centre) in every frame, seen or not.
    pixel_counts:    (K, T) int64 pixels showing each object.
    camera_kind:     the kind of camera path (one of ``CAMERA_KINDS``).
    props:           the static props (walls, pillars, crates, parked cars) of the scene.
    """

    frames: np.ndarray
    scene: Scene
    object_to_world: np.ndarray
    pixel_counts: np.ndarray
    camera_kind: str = "orbit"
    props: tuple[Prop, ...] = ()

    @property
    def depth(self) -> np.ndarray:
        """(T, H, W) float32 z-depth of every pixel (metres along the optical axis)."""
        return self.scene.local_points[..., 2]


@dataclass(frozen=True)
class SyntheticPaths:
    """Files written by :func:`write_synthetic`."""

    video: Path
    scene: Path


def synth_intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """(3, 3) float64 pinhole intrinsics: square pixels, principal point at the image centre."""
    focal = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def heading_to_orientation(cam_to_world: np.ndarray, heading_rad: np.ndarray) -> np.ndarray:
    """Camera-relative (azimuth, polar, rotation) degrees (..., 3) of upright agents.

    cam_to_world: (..., 4, 4) OpenCV camera → world; heading_rad: (...) world heading of the
    agent's forward axis, measured from world x towards world y.
    """
    camera_rotation = np.asarray(cam_to_world, np.float64)[..., :3, :3]
    agent_rotation = heading_rotation(np.asarray(heading_rad, np.float64))
    return rotation_to_orientation(np.swapaxes(camera_rotation, -1, -2) @ agent_rotation)


def _boxes_from_masks(masks: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(K, T, 4) float32 xyxy pixel-edge boxes of (K, T, H, W) masks, NaN where not visible."""
    cols, rows = masks.any(axis=2), masks.any(axis=3)
    width, height = cols.shape[-1], rows.shape[-1]
    boxes = np.stack([cols.argmax(-1), rows.argmax(-1), width - cols[..., ::-1].argmax(-1),
                      height - rows[..., ::-1].argmax(-1)], axis=-1).astype(np.float32)
    boxes[~visible] = np.nan
    return boxes




def _static_meshes(trimesh) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ground (2 triangles), walls (2 per wall, facing in, wall w = triangles 2w, 2w+1), sky dome."""
    half, top = _YARD_HALF_SIZE_M, _WALL_HEIGHT_M
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    ground = (np.column_stack([corners, np.zeros(4)]), np.array([[0, 1, 2], [0, 2, 3]]))
    wall_vertices, wall_faces = [], []
    for w in range(4):
        a, b = corners[w], corners[(w + 1) % 4]
        wall_vertices += [[*a, 0.0], [*b, 0.0], [*b, top], [*a, top]]
        wall_faces += [[4 * w, 4 * w + 1, 4 * w + 2], [4 * w, 4 * w + 2, 4 * w + 3]]
    sky = trimesh.creation.icosphere(subdivisions=3, radius=_SKY_RADIUS_M)
    meshes = [ground, (np.array(wall_vertices), np.array(wall_faces)), (sky.vertices, sky.faces)]
    return [(np.ascontiguousarray(v, np.float32), np.ascontiguousarray(f, np.uint32)) for v, f in meshes]


def _pixel_rays(intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H·W, 3) float32 camera-frame ray directions through pixel centres, with z = 1."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x = (cols - intrinsics[0, 2]) / intrinsics[0, 0]
    y = (rows - intrinsics[1, 2]) / intrinsics[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3).astype(np.float32)


def _rotate(matrix: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors @ matrix.T`` for (N, 3) vectors and a (M, 3) matrix, without BLAS.

    OpenBLAS worker threads spinning next to Open3D's ray-casting threads cost more than
    these thin products; elementwise sums keep the render loop to one thread pool.
    """
    matrix = matrix.astype(vectors.dtype, copy=False)
    return vectors[:, :1] * matrix[:, 0] + vectors[:, 1:2] * matrix[:, 1] + vectors[:, 2:3] * matrix[:, 2]


def _render_frame(o3d, static, props, bodies, look, object_poses, cam_to_world, rays_camera, ray_lengths, focal,
                  shadows):
    """Render one frame: RGB (N, 3) uint8, z-depth (N,) float32 and object index (N,) int16 (−1: none).

    static: (vertices, faces) of the ground, the walls and the sky; props: (Prop, posed
    vertices) of the static props (background, like the walls).
    """
    scene = o3d.t.geometry.RaycastingScene()
    ground_id, wall_id, sky_id = (scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
                                  for v, f in static)
    prop_ids = [scene.add_triangles(o3d.core.Tensor(posed), o3d.core.Tensor(prop.body.faces))
                for prop, posed in props]
    object_ids = []
    for body, pose in zip(bodies, object_poses, strict=True):
        posed = (_rotate(pose[:3, :3], body.vertices) + pose[:3, 3]).astype(np.float32)
        object_ids.append(scene.add_triangles(o3d.core.Tensor(posed), o3d.core.Tensor(body.faces)))
    rotation = cam_to_world[:3, :3].astype(np.float32)
    origin = cam_to_world[:3, 3].astype(np.float32)
    directions = _rotate(rotation, rays_camera)  # still z = 1 in camera terms, so t_hit is depth
    rays = np.concatenate([np.broadcast_to(origin, directions.shape), directions], axis=1)
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    depth, normals = hit["t_hit"].numpy(), hit["primitive_normals"].numpy()
    geometry = hit["geometry_ids"].numpy().astype(np.int64)
    faces = hit["primitive_ids"].numpy().astype(np.int64)
    points = origin + directions * depth[:, None]
    facing = np.einsum("ij,ij->i", normals, directions)
    normals *= np.where(facing > 0, np.float32(-1), np.float32(1))[:, None]  # face the camera
    cos_incidence = np.abs(facing) / ray_lengths
    # Metres of surface under one pixel, to filter textures finer than that.
    footprint = depth * ray_lengths / focal / np.maximum(cos_incidence, 0.2)

    object_index = np.full(len(depth), -1, np.int16)
    albedo = np.zeros((len(depth), 3), np.float32)
    lit = geometry != sky_id
    sel = geometry == ground_id
    albedo[sel] = ground_albedo(look, points[sel], footprint[sel])
    sel = geometry == wall_id
    albedo[sel] = wall_albedo(look, points[sel], normals[sel], faces[sel] // 2, footprint[sel])
    sel = geometry == sky_id
    albedo[sel] = sky_colour(look, points[sel])
    for (prop, _), gid in zip(props, prop_ids, strict=True):
        sel = np.flatnonzero(geometry == gid)
        pose = prop.pose
        local = _rotate(pose[:3, :3].T, points[sel] - pose[:3, 3])
        albedo[sel] = object_albedo(look, prop.body, local, _rotate(pose[:3, :3].T, normals[sel]), faces[sel],
                                    footprint[sel])
    for k, (body, pose, gid) in enumerate(zip(bodies, object_poses, object_ids, strict=True)):
        sel = np.flatnonzero(geometry == gid)
        object_index[sel] = k
        local = _rotate(pose[:3, :3].T, points[sel] - pose[:3, 3])
        if body.category == "ball":  # smooth sphere normals instead of facets
            local_normals = local / np.linalg.norm(local, axis=1, keepdims=True)
            normals[sel] = _rotate(pose[:3, :3], local_normals)
        else:
            local_normals = _rotate(pose[:3, :3].T, normals[sel])
        albedo[sel] = object_albedo(look, body, local, local_normals, faces[sel], footprint[sel])

    sun_cos = np.clip(_rotate(look.sun[None], normals)[:, 0], 0.0, None) * lit
    if shadows:
        # Anything within _SHADOW_RANGE_M towards the sun blocks it; the sky dome is farther.
        test = np.flatnonzero(sun_cos > 0)
        origins = points[test] + 2e-3 * normals[test]
        rays = np.concatenate([origins, np.broadcast_to(look.sun, origins.shape)], axis=1)
        blocked = scene.test_occlusions(o3d.core.Tensor(rays), tfar=_SHADOW_RANGE_M).numpy()
        sun_cos[test[blocked]] = 0.0
    light = np.where(lit, 0.45 + 0.7 * sun_cos, 1.0)
    rgb = np.clip(albedo * light[:, None] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, depth.astype(np.float32), object_index




def _camera_and_subject(config: SynthConfig, kind: str, times_s, categories, rngs):
    """(T, 4, 4) camera path and, for a follow camera, the followed subject's path (else None)."""
    camera_rng, motion_rng = rngs
    if kind == "orbit" or (kind == "static" and not config.varied):  # the plain scenes' cameras
        return orbit_path(config.n_frames, camera_rng, still=kind == "static"), None
    if kind == "static":
        return static_path(config.n_frames, camera_rng), None
    if kind == "pan":
        return pan_path(times_s, camera_rng), None
    if kind == "walk":
        return walk_path(times_s, camera_rng), None
    category = categories[0] if categories else "person"
    duration = max(float(times_s[-1]), 1.0)
    subject, lag = draw_subject_path(category, duration, motion_rng)
    height = {"person": 0.9, "dog": 0.5}.get(category, 0.5)
    return follow_path(times_s, lambda t: subject.at(t)[0], lag, camera_rng, subject_height_m=height), subject


def generate_scene(config: SynthConfig = SynthConfig(), progress: ProgressFn | None = None) -> SyntheticScene:
    """Build, animate and render a procedural scene; return its frames and ground truth.

    Deterministic for ``config.seed``: the camera, objects and look each draw from their own
    child of ``numpy.random.SeedSequence(seed)`` (footage-like scenes draw their camera kind,
    props and motion from three more). ``progress(done, total)`` is called after every
    rendered frame. Rendering 48 frames at 640×360 takes a few seconds on two cores.
    """
    o3d = require("open3d", extra="synth", purpose="ray casting synthetic scenes")
    trimesh = require("trimesh", extra="synth", purpose="building synthetic scene meshes")
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    camera_rng, object_rng, look_rng, _, layout_rng, motion_rng = (np.random.default_rng(seed) for seed in seeds)
    n_frames, width, height = config.n_frames, config.width, config.height
    times_s = np.arange(n_frames) / config.fps
    intrinsics = synth_intrinsics(width, height, config.fov_deg)
    kind = config.camera_kind

    if config.varied:
        n_objects = int(object_rng.integers(2, 8)) if config.n_objects is None else config.n_objects
        categories, group_size = pick_varied_categories(n_objects, object_rng)
    else:
        n_objects = int(object_rng.integers(2, 7)) if config.n_objects is None else config.n_objects
        categories, group_size = pick_categories(n_objects, object_rng), 0
    bodies = [make_body(trimesh, category, object_rng) for category in categories]
    cam_to_world, subject = _camera_and_subject(config, kind, times_s, categories, (camera_rng, motion_rng))
    if config.varied:
        keep_clear = [] if subject is None else [(subject.at(times_s)[0], 1.0)]
        props = place_props(trimesh, cam_to_world, layout_rng, keep_clear)
        object_to_world, headings, _ = varied_object_poses(
            bodies, group_size, cam_to_world, intrinsics, (width, height), times_s, props, motion_rng,
            subject=subject if bodies else None)
        look = with_ground(random_look(look_rng), layout_rng)
    else:
        props = []
        first = None if subject is None or not bodies else subject.at(times_s)
        object_to_world, headings = object_poses(bodies, cam_to_world, intrinsics, (width, height), times_s,
                                                 object_rng, first_track=first)
        look = random_look(look_rng)

    static = _static_meshes(trimesh)
    posed_props = [(prop, (_rotate(prop.pose[:3, :3], prop.body.vertices) + prop.pose[:3, 3]).astype(np.float32))
                   for prop in props]
    rays_camera = _pixel_rays(intrinsics, width, height)
    ray_lengths = np.linalg.norm(rays_camera, axis=1)  # rotating rays into the world keeps their length
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    local_points = np.empty((n_frames, height, width, 3), np.float32)
    object_index = np.empty((n_frames, height, width), np.int16)
    for t in range(n_frames):
        rgb, depth, index = _render_frame(o3d, static, posed_props, bodies, look, object_to_world[:, t],
                                          cam_to_world[t], rays_camera, ray_lengths, intrinsics[0, 0],
                                          config.shadows)
        frames[t] = rgb.reshape(height, width, 3)
        local_points[t] = (rays_camera * depth[:, None]).reshape(height, width, 3)
        object_index[t] = index.reshape(height, width)
        if progress is not None:
            progress(t + 1, n_frames)

    masks = object_index[None] == np.arange(n_objects, dtype=np.int16)[:, None, None, None]
    pixel_counts = masks.sum(axis=(2, 3), dtype=np.int64)
    visible = pixel_counts >= config.min_visible_px
    is_agent = np.array([body.is_agent for body in bodies], bool)
    orientation = np.full((n_objects, n_frames, 3), np.nan)
    if is_agent.any():
        orientation[is_agent] = heading_to_orientation(cam_to_world[None], headings[is_agent])
    orientation[~visible] = np.nan
    orient_conf = np.where(is_agent[:, None] & visible, 1.0, np.nan)
    extent = np.array([body.extent for body in bodies]).reshape(n_objects, 1, 3).repeat(n_frames, axis=1)
    backend = {"name": "synth-gt", "version": __version__, "weights_sha256": None}
    scene = Scene(
        timestamps_s=times_s,
        frame_index=np.arange(n_frames),
        cam_to_world=cam_to_world,
        intrinsics=np.broadcast_to(intrinsics, (n_frames, 3, 3)),
        ids=np.arange(n_objects),
        categories=tuple(body.category for body in bodies),
        is_agent=is_agent,
        visible=visible,
        box_xyxy=_boxes_from_masks(masks, visible),
        center_world=np.where(visible[..., None], object_to_world[..., :3, 3], np.nan),
        orientation=orientation,
        orient_conf=orient_conf,
        extent=np.where(visible[..., None], extent, np.nan),
        local_points=local_points,
        conf=np.isfinite(local_points[..., 2]).astype(np.float32),
        masks=masks,
        backends={"recon": backend, "tracker": dict(backend), "orient": dict(backend)},
        config=config.to_json(),
        unit="metric",
    )
    return SyntheticScene(frames, scene, object_to_world, pixel_counts, kind, tuple(props))


def write_synthetic(
    out_dir: str | Path,
    config: SynthConfig = SynthConfig(),
    progress: ProgressFn | None = None,
    overwrite: bool = False,
) -> SyntheticPaths:
    """Render a scene and write ``out_dir/video.mp4`` and its ground truth ``out_dir/scene.zarr``.

    The store's ``source`` names the video (path, sha256, fps, frame count, size). Raises
    StoreError before rendering anything when ``scene.zarr`` already exists and is not empty,
    unless ``overwrite``; a lone ``video.mp4`` (an interrupted run) is replaced. Both paths are
    locked for the run; the video and the store are written completely under temporary names
    first, then the old store is moved out, the video renamed, and the new store renamed in, so
    a ``scene.zarr`` present always matches its ``video.mp4`` (a crash between the renames
    leaves a lone video, which the next run replaces).
    """
    from recon4d.outputs import check_output, clean_stale, output_lock, temporary_name
    from recon4d.store import file_sha256, is_store, write_scene
    from recon4d.video import write_video

    out_dir = Path(out_dir)
    video_path, scene_path = out_dir / "video.mp4", out_dir / "scene.zarr"
    check_output(out_dir, "dir", overwrite=True, what="synthetic scene folder")
    if scene_path.exists() and not overwrite and (not scene_path.is_dir() or any(scene_path.iterdir())):
        raise StoreError(
            f"{scene_path} already exists; choose another output folder or pass overwrite=True "
            "(--overwrite on the command line) to replace the scene and its video."
        )
    check_output(scene_path, "dir", overwrite=True, replaceable=is_store, what="scene store")
    check_output(video_path, "file", what="video")
    with output_lock(scene_path), output_lock(video_path):
        synthetic = generate_scene(config, progress=progress)
        staged_video, staged_scene = temporary_name(video_path), temporary_name(scene_path)
        displaced = None
        try:
            write_video(staged_video, synthetic.frames, config.fps)
            source = SourceInfo(path=str(video_path), sha256=file_sha256(staged_video), fps=config.fps,
                                n_frames=config.n_frames, size=(config.width, config.height))
            write_scene(dataclasses.replace(synthetic.scene, source=source), staged_scene)
            if scene_path.exists():
                displaced = temporary_name(scene_path)
                scene_path.rename(displaced)
            staged_video.replace(video_path)
            staged_scene.rename(scene_path)
        except BaseException:
            if displaced is not None and not scene_path.exists():
                displaced.rename(scene_path)
            raise
        finally:
            clean_stale(scene_path)
            clean_stale(video_path)
    return SyntheticPaths(video=video_path, scene=scene_path)
