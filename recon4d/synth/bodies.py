"""Objects of the synthetic scenes (:mod:`recon4d.synth.scene`): their meshes and how they move.

Agents ("person", "dog") face where they walk; non-agents ("box", "ball", "cone") slide or
roll. Paths are smooth and stay within ``_ACTION_RADIUS_M`` of the origin; each is redrawn
(up to 200 times, the best draw kept) while it leaves the camera's view or comes too close to
objects already placed.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

AGENT_CATEGORIES = ("person", "dog")
NON_AGENT_CATEGORIES = ("box", "ball", "cone")

_ACTION_RADIUS_M = 3.0  # every object's path stays within this distance of the world origin
_SPEED_M_S = {"person": (0.9, 1.4), "dog": (1.2, 1.9), "box": (0.5, 1.0), "ball": (0.8, 1.5),
              "cone": (0.4, 0.8)}


def heading_rotation(heading_rad: np.ndarray) -> np.ndarray:
    """R_world←agent (..., 3, 3) of an upright agent facing world direction (cos h, sin h, 0)."""
    cos, sin = np.cos(heading_rad), np.sin(heading_rad)
    zero, one = np.zeros_like(cos), np.ones_like(cos)
    return np.stack([np.stack([cos, -sin, zero], -1), np.stack([sin, cos, zero], -1),
                     np.stack([zero, zero, one], -1)], axis=-2)


@dataclass(frozen=True, eq=False)
class Body:
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


def random_colour(rng: np.random.Generator, saturation=(0.55, 0.9), value=(0.55, 0.9), hue=(0.0, 1.0)):
    """(3,) random RGB colour in [0, 1] from HSV ranges (hue wraps around 1)."""
    hue, saturation, value = rng.uniform(*hue) % 1.0, rng.uniform(*saturation), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


def _body(category: str, parts: list, pattern: str) -> Body:
    """Join (mesh, rgb) parts into one body re-centred on its bounding box."""
    vertices, faces, albedo, offset = [], [], [], 0
    for mesh, rgb in parts:
        vertices.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        albedo.append(np.tile(np.asarray(rgb, np.float32), (len(mesh.faces), 1)))
        offset += len(mesh.vertices)
    vertices = np.concatenate(vertices)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return Body(category, vertices - (low + high) / 2.0, np.concatenate(faces).astype(np.uint32),
                 np.concatenate(albedo), high - low, pattern)


def make_body(trimesh, category: str, rng: np.random.Generator) -> Body:
    """A procedural mesh of ``category`` with random size and colours; agents face +x."""
    def box(size, at):
        return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(at))

    if category == "person":
        h = rng.uniform(1.55, 1.85)
        shirt, trousers = random_colour(rng), random_colour(rng, value=(0.2, 0.45))
        accent = random_colour(rng, saturation=(0.8, 1.0), value=(0.9, 1.0))
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
        fur = random_colour(rng, (0.3, 0.7), (0.35, 0.8))
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
        return _body(category, [(box(size, (0, 0, size[2] / 2)), random_colour(rng))], "checker")
    if category == "ball":
        ball = trimesh.creation.icosphere(subdivisions=3, radius=rng.uniform(0.25, 0.42))
        return _body(category, [(ball, random_colour(rng))], "checker")
    if category == "cone":
        radius, height = rng.uniform(0.22, 0.32), rng.uniform(0.55, 0.85)
        cone = trimesh.creation.cone(radius=radius, height=height, sections=32)
        return _body(category, [(cone, random_colour(rng, value=(0.8, 1.0)))], "stripes")
    raise ValueError(f"unknown synthetic category {category!r}")


def pick_categories(n_objects: int, rng: np.random.Generator) -> list[str]:
    """At least one agent whenever there is an object; agents first."""
    if n_objects == 0:
        return []
    n_agents = int(rng.integers(1, (n_objects + 1) // 2 + 1))
    agents = rng.choice(AGENT_CATEGORIES, size=n_agents, p=[0.65, 0.35]).tolist()
    others = rng.choice(NON_AGENT_CATEGORIES, size=n_objects - n_agents).tolist()
    return agents + others




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


def object_poses(bodies, cam_to_world, intrinsics, size, times_s, rng) -> tuple[np.ndarray, np.ndarray]:
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


