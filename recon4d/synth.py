"""Procedural 4D scenes with full ground truth (DESIGN §9).

A scene is a walled yard under a sky dome: a paved ground plane (world z = 0, z up), four
brick walls, and a few objects moving on smooth paths — agents ("person", "dog") that face
where they walk and non-agents ("box", "ball", "cone") that slide or roll — filmed by a
camera that orbits, dollies, pans and tilts around the action (or stands still). Meshes are
built with trimesh and ray cast with Open3D's ``RaycastingScene`` (exact depth, geometry
ids and normals, on the CPU); procedural textures and Lambert + ambient shading with sun
shadows are computed in numpy over all rays of a frame at once.

Ground truth and its conventions:

- Pixels: pixel (row i, column j) covers [j, j+1) × [i, i+1) and its ray passes through its
  centre (j + 0.5, i + 0.5), so a point it sees projects to u = fx·x/z + cx = j + 0.5.
  Boxes use pixel edges: x2 = last column + 1. Intrinsics have fx = fy and the principal
  point at the image centre (W/2, H/2).
- ``cam_to_world`` (T, 4, 4): OpenCV camera → world. World: z up, ground at z = 0, the action
  around the origin.
- ``local_points`` (T, H, W, 3) float32: the first surface each pixel's ray hits, in OpenCV
  camera coordinates (z = depth). Every ray hits something (the sky is a dome of radius
  60 m), so ``conf`` is 1 everywhere.
- ``masks`` (K, T, H, W): pixels whose first hit is object k (occlusion is exact). An object
  is ``visible`` when at least ``min_visible_px`` pixels show it; box, centre, extent and
  orientation are NaN where it is not.
- ``center_world``: centre of the object's own bounding box (the origin of its pose);
  ``extent``: the size of that box along the object's forward, left and up axes, metres.
- ``orientation`` (agents only): (azimuth, polar, rotation) of R_cam←agent = R_world←camᵀ ·
  R_world←agent, where the agent frame has forward = heading (its direction of travel) and
  up = world z (DESIGN §2); ``orient_conf`` is 1 there.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn

import numpy as np

from recon4d import __version__
from recon4d._optional import require
from recon4d.errors import StoreError
from recon4d.geometry import rotation_to_orientation
from recon4d.types import Scene, SourceInfo

AGENT_CATEGORIES = ("person", "dog")
NON_AGENT_CATEGORIES = ("box", "ball", "cone")
ProgressFn = Callable[[int, int], None]

_YARD_HALF_SIZE_M = 14.0
_WALL_HEIGHT_M = 6.0
_SKY_RADIUS_M = 60.0
_ACTION_RADIUS_M = 3.0  # every object's path stays within this distance of the world origin
_MAX_OBJECTS = 8
_SPEED_M_S = {"person": (0.9, 1.4), "dog": (1.2, 1.9), "box": (0.5, 1.0), "ball": (0.8, 1.5),
              "cone": (0.4, 0.8)}
_SHADOW_RANGE_M = 30.0  # farther than any wall or object from a point in the yard, nearer than the sky
_NOISE_TILE = 256  # side of the value-noise lattice (power of two, wraps around)


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
    """Number of moving objects K, 0–8; None lets the seed pick 2–6."""
    static_camera: bool = False
    """Keep the camera at its first pose; otherwise it orbits, dollies, pans and tilts."""
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

    def to_json(self) -> dict:
        """The fields as plain JSON values (stored as the scene's ``config``)."""
        return {key: value.item() if isinstance(value, np.generic) else value
                for key, value in dataclasses.asdict(self).items()}


@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A rendered clip and its ground truth.

    frames:          (T, H, W, 3) uint8 RGB.
    scene:           the ground-truth :class:`Scene` (points, conf, masks and extent filled;
                     ``source`` is None until the clip is written as a video).
    object_to_world: (K, T, 4, 4) float64 pose of each object's own frame (x forward, y left,
                     z up, origin at its bounding-box centre) in every frame, seen or not.
    pixel_counts:    (K, T) int64 pixels showing each object.
    """

    frames: np.ndarray
    scene: Scene
    object_to_world: np.ndarray
    pixel_counts: np.ndarray

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


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV cam_to_world (..., 4, 4) of cameras at ``position`` (..., 3) looking at ``target``.

    The image x axis stays horizontal (no roll): right = forward × world-up, down = forward × right.
    """
    position = np.asarray(position, np.float64)
    forward = np.asarray(target, np.float64) - position
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    pose = np.zeros(position.shape[:-1] + (4, 4))
    pose[..., :3, :3] = np.stack([right, down, forward], axis=-1)
    pose[..., :3, 3] = position
    pose[..., 3, 3] = 1.0
    return pose


def heading_rotation(heading_rad: np.ndarray) -> np.ndarray:
    """R_world←agent (..., 3, 3) of an upright agent facing world direction (cos h, sin h, 0)."""
    cos, sin = np.cos(heading_rad), np.sin(heading_rad)
    zero, one = np.zeros_like(cos), np.ones_like(cos)
    return np.stack([np.stack([cos, -sin, zero], -1), np.stack([sin, cos, zero], -1),
                     np.stack([zero, zero, one], -1)], axis=-2)


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


# --- camera ------------------------------------------------------------------------------


def _camera_path(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, 4, 4) cam_to_world: an orbit arc with a dolly-in, looking at a wandering target."""
    radius0, dolly = rng.uniform(7.5, 9.5), rng.uniform(0.6, 1.6)
    angle0 = rng.uniform(0.0, 2.0 * math.pi)
    sweep = rng.choice([-1.0, 1.0]) * math.radians(rng.uniform(18.0, 35.0))
    height0 = rng.uniform(1.8, 2.8)
    pan_m, pan_phase = rng.uniform(0.5, 1.0), rng.uniform(0.0, 2.0 * math.pi)
    tilt_m, tilt_phase = rng.uniform(0.2, 0.4), rng.uniform(0.0, 2.0 * math.pi)
    if config.static_camera or config.n_frames == 1:
        progress = np.zeros(config.n_frames)
    else:
        # Half linear, half eased: the camera is already moving at the first frame.
        linear = np.linspace(0.0, 1.0, config.n_frames)
        progress = 0.5 * linear + 0.25 - 0.25 * np.cos(math.pi * linear)
    angle = angle0 + sweep * progress
    radius = radius0 - dolly * progress
    position = np.stack([radius * np.cos(angle), radius * np.sin(angle),
                         height0 + 0.3 * np.sin(math.pi * progress)], axis=-1)
    # The target wanders sideways and up/down, so the camera pans and tilts against its orbit.
    pan = pan_m * np.sin(2.0 * math.pi * progress + pan_phase)
    target = np.stack([-pan * np.sin(angle), pan * np.cos(angle),
                       0.5 + tilt_m * np.sin(1.5 * math.pi * progress + tilt_phase)], axis=-1)
    return look_at(position, target)


# --- object meshes ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Body:
    """An object's mesh in its own frame (x forward, y left, z up, origin at its box centre)."""

    category: str
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) uint32
    face_albedo: np.ndarray  # (F, 3) float32 base colour of each face
    extent: np.ndarray  # (3,) size along x, y, z
    pattern: str  # "checker", "stripes" or "plain"

    @property
    def is_agent(self) -> bool:
        return self.category in AGENT_CATEGORIES


def _colour(rng: np.random.Generator, saturation=(0.55, 0.9), value=(0.55, 0.9), hue=(0.0, 1.0)):
    """(3,) random RGB colour in [0, 1] from HSV ranges (hue wraps around 1)."""
    hue, saturation, value = rng.uniform(*hue) % 1.0, rng.uniform(*saturation), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


def _body(category: str, parts: list, pattern: str) -> _Body:
    """Join (mesh, rgb) parts into one body re-centred on its bounding box."""
    vertices, faces, albedo, offset = [], [], [], 0
    for mesh, rgb in parts:
        vertices.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        albedo.append(np.tile(np.asarray(rgb, np.float32), (len(mesh.faces), 1)))
        offset += len(mesh.vertices)
    vertices = np.concatenate(vertices)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return _Body(category, vertices - (low + high) / 2.0, np.concatenate(faces).astype(np.uint32),
                 np.concatenate(albedo), high - low, pattern)


def _make_body(trimesh, category: str, rng: np.random.Generator) -> _Body:
    """A procedural mesh of ``category`` with random size and colours; agents face +x."""
    def box(size, at):
        return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(at))

    if category == "person":
        h = rng.uniform(1.55, 1.85)
        shirt, trousers = _colour(rng), _colour(rng, value=(0.2, 0.45))
        accent = _colour(rng, saturation=(0.8, 1.0), value=(0.9, 1.0))
        head_r = 0.065 * h
        head = trimesh.creation.icosphere(subdivisions=2, radius=head_r)
        head.apply_translation([0.0, 0.0, h - head_r])
        # The visor and chest badge mark the front, the backpack the back.
        parts = [(box((0.22, 0.36, 0.47 * h), (0, 0, 0.235 * h)), trousers),
                 (box((0.26, 0.46, 0.34 * h), (0, 0, 0.64 * h)), shirt),
                 (box((0.11, 0.10, 0.32 * h), (0, 0.28, 0.63 * h)), shirt),
                 (box((0.11, 0.10, 0.32 * h), (0, -0.28, 0.63 * h)), shirt),
                 (head, (0.85, 0.66, 0.52)),
                 (box((0.10, 0.18, 0.045), (head_r + 0.03, 0, h - 1.1 * head_r)), accent),
                 (box((0.03, 0.24, 0.12), (0.145, 0, 0.70 * h)), accent),
                 (box((0.12, 0.32, 0.26 * h), (-0.19, 0, 0.64 * h)), 0.4 * shirt)]
        return _body(category, parts, "plain")
    if category == "dog":
        length = rng.uniform(0.75, 1.05)
        fur = _colour(rng, (0.3, 0.7), (0.35, 0.8))
        dark = 0.35 * fur
        x_head = length / 2 + 0.06
        parts = [(box((length, 0.28, 0.26), (0, 0, 0.46)), fur),
                 (box((0.22, 0.20, 0.20), (x_head, 0, 0.68)), fur),
                 (box((0.14, 0.12, 0.10), (x_head + 0.18, 0, 0.64)), dark),
                 (box((0.05, 0.05, 0.09), (x_head - 0.04, 0.07, 0.82)), dark),
                 (box((0.05, 0.05, 0.09), (x_head - 0.04, -0.07, 0.82)), dark),
                 (box((0.26, 0.05, 0.05), (-length / 2 - 0.12, 0, 0.56)), dark)]
        parts += [(box((0.08, 0.08, 0.34), (sx * 0.36 * length, sy * 0.09, 0.17)), fur)
                  for sx in (-1, 1) for sy in (-1, 1)]
        return _body(category, parts, "plain")
    if category == "box":
        size = (rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.9), rng.uniform(0.4, 0.85))
        return _body(category, [(box(size, (0, 0, size[2] / 2)), _colour(rng))], "checker")
    if category == "ball":
        ball = trimesh.creation.icosphere(subdivisions=3, radius=rng.uniform(0.25, 0.42))
        return _body(category, [(ball, _colour(rng))], "checker")
    if category == "cone":
        radius, height = rng.uniform(0.22, 0.32), rng.uniform(0.55, 0.85)
        cone = trimesh.creation.cone(radius=radius, height=height, sections=32)
        return _body(category, [(cone, _colour(rng, value=(0.8, 1.0)))], "stripes")
    raise ValueError(f"unknown synthetic category {category!r}")


def _pick_categories(n_objects: int, rng: np.random.Generator) -> list[str]:
    """At least one agent whenever there is an object; agents first."""
    if n_objects == 0:
        return []
    n_agents = int(rng.integers(1, (n_objects + 1) // 2 + 1))
    agents = rng.choice(AGENT_CATEGORIES, size=n_agents, p=[0.65, 0.35]).tolist()
    others = rng.choice(NON_AGENT_CATEGORIES, size=n_objects - n_agents).tolist()
    return agents + others


# --- object motion -----------------------------------------------------------------------------


def _random_path(category: str, rng: np.random.Generator) -> dict:
    """Parameters of a smooth ground path: an ellipse (agents always) or a back-and-forth line."""
    speed = rng.uniform(*_SPEED_M_S[category])
    kind = "ellipse" if category in AGENT_CATEGORIES or rng.uniform() < 0.5 else "line"
    if kind == "ellipse":
        a = rng.uniform(1.2, 2.4)
        axes = (a, a * rng.uniform(0.55, 1.0))
        omega = rng.choice([-1.0, 1.0]) * speed / math.sqrt((axes[0] ** 2 + axes[1] ** 2) / 2.0)
    else:
        a = rng.uniform(0.8, 2.0)
        axes, omega = (a, 0.0), speed / a
    reach = math.sqrt(rng.uniform()) * max(0.0, _ACTION_RADIUS_M - axes[0])
    direction = rng.uniform(0.0, 2.0 * math.pi)
    return {"kind": kind, "centre": reach * np.array([math.cos(direction), math.sin(direction)]),
            "axes": axes, "angle": rng.uniform(0.0, 2.0 * math.pi), "phase": rng.uniform(0.0, 2.0 * math.pi),
            "omega": omega}


def _path_xy(path: dict, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground position and velocity (T, 2) of a path at ``times_s``."""
    a, b = path["axes"]
    phase = path["phase"] + path["omega"] * times_s
    if path["kind"] == "ellipse":
        local = np.stack([a * np.cos(phase), b * np.sin(phase)], -1)
        local_velocity = path["omega"] * np.stack([-a * np.sin(phase), b * np.cos(phase)], -1)
    else:
        local = np.stack([a * np.sin(phase), np.zeros_like(phase)], -1)
        local_velocity = np.stack([a * path["omega"] * np.cos(phase), np.zeros_like(phase)], -1)
    cos, sin = math.cos(path["angle"]), math.sin(path["angle"])
    rotation = np.array([[cos, -sin], [sin, cos]])
    return path["centre"] + local @ rotation.T, local_velocity @ rotation.T


def _project(points_world: np.ndarray, cam_to_world: np.ndarray, intrinsics: np.ndarray):
    """Pixel coordinates (T, N, 2) and depths (T, N) of points (T, N, 3) in cameras (T, 4, 4)."""
    camera = np.einsum("tji,tnj->tni", cam_to_world[:, :3, :3], points_world - cam_to_world[:, None, :3, 3])
    depth = camera[..., 2]
    pixels = camera[..., :2] / depth[..., None] * intrinsics[[0, 1], [0, 1]] + intrinsics[:2, 2]
    return pixels, depth


def _path_violations(xy, body, cam_to_world, intrinsics, size, placed) -> int:
    """Frames where an object on ground track ``xy`` (T, 2) is out of view or too close to another."""
    width, height = size
    margin = 0.04 * width
    probes = np.zeros((len(xy), 3, 3))
    probes[:, :, :2] = xy[:, None]
    probes[:, :, 2] = [0.0, body.extent[2] / 2.0, body.extent[2]]
    pixels, depth = _project(probes, cam_to_world, intrinsics)
    inside = ((pixels[..., 0] > margin) & (pixels[..., 0] < width - margin) & (pixels[..., 1] > margin)
              & (pixels[..., 1] < height - margin) & (depth > 2.0)).all(axis=1)
    bad = ~inside
    radius = 0.5 * np.hypot(body.extent[0], body.extent[1])
    for other_xy, other_radius in placed:
        bad |= np.linalg.norm(xy - other_xy, axis=-1) < radius + other_radius + 0.25
    return int(bad.sum())


def _rolling_rotations(xy: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 3, 3) rotations of a ball rolling without slipping along ground track ``xy``."""
    quaternion = rng.normal(size=4)
    w, x, y, z = quaternion / np.linalg.norm(quaternion)
    current = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    rotations = [current]
    for step in np.diff(xy, axis=0):
        distance = float(np.linalg.norm(step))
        if distance > 1e-12:
            axis = np.array([-step[1], step[0], 0.0]) / distance  # world up × direction of travel
            skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
            angle = distance / radius
            turn = np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew
            current = turn @ current
        rotations.append(current)
    return np.stack(rotations)


def _object_poses(bodies, cam_to_world, intrinsics, size, times_s, rng) -> tuple[np.ndarray, np.ndarray]:
    """Object-to-world poses (K, T, 4, 4) and world headings (K, T) radians of every body.

    Paths are drawn until one keeps the object in view and apart from those already placed
    in every frame (up to 200 tries; otherwise the path with the fewest bad frames is kept).
    """
    n_frames = len(times_s)
    poses = np.tile(np.eye(4), (len(bodies), n_frames, 1, 1))
    headings = np.zeros((len(bodies), n_frames))
    placed = []
    for k, body in enumerate(bodies):
        best = None
        for _ in range(200):
            xy, velocity = _path_xy(_random_path(body.category, rng), times_s)
            bad = _path_violations(xy, body, cam_to_world, intrinsics, size, placed)
            if best is None or bad < best[0]:
                best = (bad, xy, velocity)
            if bad == 0:
                break
        _, xy, velocity = best
        placed.append((xy, 0.5 * np.hypot(body.extent[0], body.extent[1])))
        if body.category == "ball":
            poses[k, :, :3, :3] = _rolling_rotations(xy, body.extent[2] / 2.0, rng)
            headings[k] = np.arctan2(velocity[:, 1], velocity[:, 0])
        elif body.is_agent:
            headings[k] = np.arctan2(velocity[:, 1], velocity[:, 0])
            poses[k, :, :3, :3] = heading_rotation(headings[k])
        else:
            headings[k] = rng.uniform(0.0, 2.0 * math.pi)
            poses[k, :, :3, :3] = heading_rotation(headings[k])
        poses[k, :, :2, 3] = xy
        poses[k, :, 2, 3] = body.extent[2] / 2.0
    return poses, headings


# --- textures and shading ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Look:
    """Random appearance of the static world."""

    noise: np.ndarray  # (_NOISE_TILE, _NOISE_TILE) float32 lattice values in [0, 1]
    ground_albedo: np.ndarray  # (2, 3) two paving tones
    wall_albedo: np.ndarray  # (4, 3) one brick colour per wall
    sun: np.ndarray  # (3,) unit direction towards the sun


def _random_look(rng: np.random.Generator) -> _Look:
    ground = np.stack([_colour(rng, (0.05, 0.2), (0.5, 0.65)), _colour(rng, (0.1, 0.3), (0.45, 0.6))])
    walls = np.stack([_colour(rng, (0.2, 0.55), (0.45, 0.7), hue=(-0.04, 0.1)) for _ in range(4)])  # brick
    azimuth, elevation = rng.uniform(0.0, 2.0 * math.pi), math.radians(rng.uniform(45.0, 65.0))
    sun = np.array([math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                    math.sin(elevation)])
    noise = rng.uniform(size=(_NOISE_TILE, _NOISE_TILE)).astype(np.float32)
    return _Look(noise, ground.astype(np.float32), walls.astype(np.float32), sun.astype(np.float32))


def _value_noise(tile: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smoothly interpolated lattice noise in [0, 1] at lattice coordinates (u, v), wrapping."""
    size = tile.shape[0]
    flat = tile.ravel()
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0, j0 = iu.astype(np.int32) & (size - 1), iv.astype(np.int32) & (size - 1)
    row0, row1 = i0 * size, ((i0 + 1) & (size - 1)) * size
    j1 = (j0 + 1) & (size - 1)
    a, b = flat.take(row0 + j0), flat.take(row0 + j1)
    c, d = flat.take(row1 + j0), flat.take(row1 + j1)
    top = a + fv * (b - a)
    bottom = c + fv * (d - c)
    return top + fu * (bottom - top)


def _fbm(tile, u, v, cell_m: float, footprint_m, octaves: int = 3, seed: float = 0.0) -> np.ndarray:
    """Fractal value noise in [0, 1] with cells of ``cell_m`` metres, halving per octave.

    Octaves whose cells are smaller than ~3 pixels (``footprint_m`` = metres per pixel) fade
    to their mean, so distant ground does not shimmer from frame to frame.
    """
    total, weight = 0.5, 0.5
    for octave in range(octaves):
        cell = cell_m / 2**octave
        fade = np.clip(cell / (footprint_m + 1e-6) / 1.5 - 1.0, 0.0, 1.0)
        value = _value_noise(tile, u / cell + 17.3 * octave + seed, v / cell + 5.1 * octave - seed)
        total = total + weight * fade * (value - 0.5)
        weight *= 0.5
    return np.clip(total, 0.0, 1.0)


def _line_coverage(distance_m, half_width_m: float, footprint_m) -> np.ndarray:
    """Fraction of a pixel (box filter of width ``footprint_m``) covered by a line of half width
    ``half_width_m`` at ``distance_m`` from the pixel centre."""
    half = footprint_m / 2
    overlap = np.minimum(distance_m + half, half_width_m) - np.maximum(distance_m - half, -half_width_m)
    return np.clip(overlap / footprint_m, 0.0, 1.0)


def _cell_random(tile: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random value in [0, 1] per integer cell (i, j)."""
    mask = tile.shape[0] - 1
    return tile[(i.astype(np.int64) * 7 + 3) & mask, (j.astype(np.int64) * 13 + 11) & mask]


def _ground_albedo(look: _Look, points, footprint) -> np.ndarray:
    """1 m paving stones in two tones (4 m patches), per-stone tint, noise and grout lines."""
    x, y = points[:, 0], points[:, 1]
    i, j = np.floor(x), np.floor(y)
    tone = look.ground_albedo[((np.floor(x / 4) + np.floor(y / 4)).astype(np.int64) & 1)]
    tint = 0.75 + 0.5 * _cell_random(look.noise, i, j)
    grain = 0.6 + 0.8 * _fbm(look.noise, x, y, 0.3, footprint)
    grout = _line_coverage(np.minimum(np.abs(x - np.round(x)), np.abs(y - np.round(y))), 0.025, footprint)
    return tone * (tint * grain * (1 - 0.6 * grout))[:, None]


def _wall_albedo(look: _Look, points, normals, wall, footprint) -> np.ndarray:
    """Staggered bricks (0.8 × 0.35 m) with per-brick tint, noise and mortar lines."""
    along = np.where(np.abs(normals[:, 0]) > np.abs(normals[:, 1]), points[:, 1], points[:, 0])
    z = points[:, 2]
    row = np.floor(z / 0.35)
    s = along / 0.8 + 0.5 * (row.astype(np.int64) & 1)
    tint = 0.7 + 0.6 * _cell_random(look.noise, row + 31 * wall, np.floor(s))
    grain = 0.7 + 0.6 * _fbm(look.noise, along, z, 0.2, footprint, seed=50.0)
    mortar_m = np.minimum(np.abs(s - np.round(s)) * 0.8, np.abs(z / 0.35 - np.round(z / 0.35)) * 0.35)
    mortar = _line_coverage(mortar_m, 0.02, footprint)
    return look.wall_albedo[wall] * (tint * grain * (1 - 0.55 * mortar))[:, None]


def _sky_colour(look: _Look, points) -> np.ndarray:
    """Blue gradient with soft clouds (unlit)."""
    direction = points / np.linalg.norm(points, axis=-1, keepdims=True)
    up = np.clip(direction[:, 2], 0.0, 1.0)[:, None] ** 0.6
    sky = (1 - up) * np.float32([0.78, 0.86, 0.95]) + up * np.float32([0.32, 0.52, 0.86])
    clouds = _fbm(look.noise, points[:, 0], points[:, 1], 12.0, 0.0, octaves=4, seed=90.0)
    cover = np.clip((clouds - 0.5) / 0.2, 0.0, 1.0)[:, None]
    return sky * (1 - 0.7 * cover) + 0.7 * cover * np.float32([0.97, 0.97, 0.97])


def _object_albedo(look: _Look, body: _Body, local, local_normals, faces, footprint) -> np.ndarray:
    """Face colour × pattern × noise, mapped on the two local axes across the hit face's normal."""
    across = np.argmax(np.abs(local_normals), axis=-1)
    first = np.where(across == 0, local[:, 1], local[:, 0])
    second = np.where(across == 2, local[:, 1], local[:, 2])
    grain = 0.8 + 0.4 * _fbm(look.noise, first, second, 0.1, footprint, seed=7.0)
    albedo = body.face_albedo[faces] * grain[:, None]
    if body.pattern == "checker":
        checker = (np.floor(first / 0.15) + np.floor(second / 0.15)).astype(np.int64) & 1
        albedo = albedo * (0.55 + 0.45 * checker)[:, None]
    elif body.pattern == "stripes":
        stripe = (np.floor((local[:, 2] + body.extent[2]) / 0.14).astype(np.int64) & 1)[:, None]
        albedo = albedo * (1 - stripe) + stripe * np.float32([0.95, 0.95, 0.92])
    return albedo


# --- rendering ------------------------------------------------------------------------------------


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


def _render_frame(o3d, static, bodies, look, object_poses, cam_to_world, rays_camera, ray_lengths, focal,
                  shadows):
    """Render one frame: RGB (N, 3) uint8, z-depth (N,) float32 and object index (N,) int16 (−1: none)."""
    scene = o3d.t.geometry.RaycastingScene()
    ground_id, wall_id, sky_id = (scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
                                  for v, f in static)
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
    albedo[sel] = _ground_albedo(look, points[sel], footprint[sel])
    sel = geometry == wall_id
    albedo[sel] = _wall_albedo(look, points[sel], normals[sel], faces[sel] // 2, footprint[sel])
    sel = geometry == sky_id
    albedo[sel] = _sky_colour(look, points[sel])
    for k, (body, pose, gid) in enumerate(zip(bodies, object_poses, object_ids, strict=True)):
        sel = np.flatnonzero(geometry == gid)
        object_index[sel] = k
        local = _rotate(pose[:3, :3].T, points[sel] - pose[:3, 3])
        if body.category == "ball":  # smooth sphere normals instead of facets
            local_normals = local / np.linalg.norm(local, axis=1, keepdims=True)
            normals[sel] = _rotate(pose[:3, :3], local_normals)
        else:
            local_normals = _rotate(pose[:3, :3].T, normals[sel])
        albedo[sel] = _object_albedo(look, body, local, local_normals, faces[sel], footprint[sel])

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


# --- public entry points ------------------------------------------------------------------------


def generate_scene(config: SynthConfig = SynthConfig(), progress: ProgressFn | None = None) -> SyntheticScene:
    """Build, animate and render a procedural scene; return its frames and ground truth.

    Deterministic for ``config.seed``: the camera, objects and look each draw from their own
    child of ``numpy.random.SeedSequence(seed)``. ``progress(done, total)`` is called after
    every rendered frame. Rendering 48 frames at 640×360 takes a few seconds on two cores.
    """
    o3d = require("open3d", extra="synth", purpose="ray casting synthetic scenes")
    trimesh = require("trimesh", extra="synth", purpose="building synthetic scene meshes")
    seeds = np.random.SeedSequence(config.seed).spawn(3)
    camera_rng, object_rng, look_rng = (np.random.default_rng(seed) for seed in seeds)
    n_frames, width, height = config.n_frames, config.width, config.height
    times_s = np.arange(n_frames) / config.fps
    intrinsics = synth_intrinsics(width, height, config.fov_deg)
    cam_to_world = _camera_path(config, camera_rng)

    n_objects = int(object_rng.integers(2, 7)) if config.n_objects is None else config.n_objects
    categories = _pick_categories(n_objects, object_rng)
    bodies = [_make_body(trimesh, category, object_rng) for category in categories]
    object_to_world, headings = _object_poses(bodies, cam_to_world, intrinsics, (width, height), times_s,
                                              object_rng)
    look = _random_look(look_rng)

    static = _static_meshes(trimesh)
    rays_camera = _pixel_rays(intrinsics, width, height)
    ray_lengths = np.linalg.norm(rays_camera, axis=1)  # rotating rays into the world keeps their length
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    local_points = np.empty((n_frames, height, width, 3), np.float32)
    object_index = np.empty((n_frames, height, width), np.int16)
    for t in range(n_frames):
        rgb, depth, index = _render_frame(o3d, static, bodies, look, object_to_world[:, t], cam_to_world[t],
                                          rays_camera, ray_lengths, intrinsics[0, 0], config.shadows)
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
    )
    return SyntheticScene(frames, scene, object_to_world, pixel_counts)


def write_synthetic(
    out_dir: str | Path,
    config: SynthConfig = SynthConfig(),
    progress: ProgressFn | None = None,
    overwrite: bool = False,
) -> SyntheticPaths:
    """Render a scene and write ``out_dir/video.mp4`` and its ground truth ``out_dir/scene.zarr``.

    The store's ``source`` names the video (path, sha256, fps, frame count, size). Raises
    StoreError before rendering anything when ``scene.zarr`` already exists and is not empty,
    unless ``overwrite``; a lone ``video.mp4`` (an interrupted run) is replaced.
    """
    from recon4d.store import file_sha256, write_scene
    from recon4d.video import write_video

    out_dir = Path(out_dir)
    video_path, scene_path = out_dir / "video.mp4", out_dir / "scene.zarr"
    if scene_path.exists() and not overwrite and (not scene_path.is_dir() or any(scene_path.iterdir())):
        raise StoreError(
            f"{scene_path} already exists; choose another output folder or pass overwrite=True "
            "(--overwrite on the command line) to replace the scene and its video."
        )
    synthetic = generate_scene(config, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_video(video_path, synthetic.frames, config.fps)
    source = SourceInfo(path=str(video_path), sha256=file_sha256(video_path), fps=config.fps,
                        n_frames=config.n_frames, size=(config.width, config.height))
    write_scene(dataclasses.replace(synthetic.scene, source=source), scene_path, overwrite=True)
    return SyntheticPaths(video=video_path, scene=scene_path)
