"""How the objects of plain synthetic scenes move (:mod:`recon4d.synth.scene`).

Paths are smooth and stay within ``ACTION_RADIUS_M`` of the origin: agents walk ellipses
facing where they go, non-agents slide or roll on ellipses or back-and-forth lines. Each
path is redrawn (up to 200 times, the best draw kept) while it leaves the camera's view or
comes too close to objects already placed. Footage-like scenes move their objects with
:mod:`recon4d.synth.motion`, which reuses the helpers here.
"""

from __future__ import annotations

import math

import numpy as np

from recon4d.synth.bodies import AGENT_CATEGORIES, heading_rotation

ACTION_RADIUS_M = 3.0  # every object's path stays within this distance of the world origin
_SPEED_M_S = {"person": (0.9, 1.4), "dog": (1.2, 1.9), "box": (0.5, 1.0), "ball": (0.8, 1.5),
              "cone": (0.4, 0.8)}


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
    reach = math.sqrt(rng.uniform()) * max(0.0, ACTION_RADIUS_M - axes[0])
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


def project_points(points_world: np.ndarray, cam_to_world: np.ndarray, intrinsics: np.ndarray):
    """Pixel coordinates (T, N, 2) and depths (T, N) of points (T, N, 3) in cameras (T, 4, 4)."""
    camera = np.einsum("tji,tnj->tni", cam_to_world[:, :3, :3], points_world - cam_to_world[:, None, :3, 3])
    depth = camera[..., 2]
    pixels = camera[..., :2] / depth[..., None] * intrinsics[[0, 1], [0, 1]] + intrinsics[:2, 2]
    return pixels, depth


def body_in_view(xy, body, cam_to_world, intrinsics, size) -> np.ndarray:
    """(T,) bool: a body standing at ground point ``xy`` (T, 2) is seen whole (feet, middle and
    top inside the image less a 4 % margin) and more than 2 m in front of the camera."""
    width, height = size
    margin = 0.04 * width
    probes = np.zeros((len(xy), 3, 3))
    probes[:, :, :2] = xy[:, None]
    probes[:, :, 2] = [0.0, body.extent[2] / 2.0, body.extent[2]]
    pixels, depth = project_points(probes, cam_to_world, intrinsics)
    return ((pixels[..., 0] > margin) & (pixels[..., 0] < width - margin) & (pixels[..., 1] > margin)
            & (pixels[..., 1] < height - margin) & (depth > 2.0)).all(axis=1)


def _path_violations(xy, body, cam_to_world, intrinsics, size, placed) -> int:
    """Frames where an object on ground track ``xy`` (T, 2) is out of view or too close to another."""
    inside = body_in_view(xy, body, cam_to_world, intrinsics, size)
    bad = ~inside
    radius = 0.5 * np.hypot(body.extent[0], body.extent[1])
    for other_xy, other_radius in placed:
        bad |= np.linalg.norm(xy - other_xy, axis=-1) < radius + other_radius + 0.25
    return int(bad.sum())


def rolling_rotations(xy: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
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


def object_poses(bodies, cam_to_world, intrinsics, size, times_s, rng,
                 first_track: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Object-to-world poses (K, T, 4, 4) and world headings (K, T) radians of every body.

    Paths are drawn until one keeps the object in view and apart from those already placed
    in every frame (up to 200 tries; otherwise the path with the fewest bad frames is kept).
    ``first_track``: fixed ground positions and directions of travel (T, 2) of body 0 (a
    subject the camera follows) instead of a drawn path.
    """
    n_frames = len(times_s)
    poses = np.tile(np.eye(4), (len(bodies), n_frames, 1, 1))
    headings = np.zeros((len(bodies), n_frames))
    placed = []
    for k, body in enumerate(bodies):
        best = None if k > 0 or first_track is None else (0, *first_track)
        for _ in range(200 if best is None else 0):
            xy, velocity = _path_xy(_random_path(body.category, rng), times_s)
            bad = _path_violations(xy, body, cam_to_world, intrinsics, size, placed)
            if best is None or bad < best[0]:
                best = (bad, xy, velocity)
            if bad == 0:
                break
        _, xy, velocity = best
        placed.append((xy, 0.5 * np.hypot(body.extent[0], body.extent[1])))
        if body.category == "ball":
            poses[k, :, :3, :3] = rolling_rotations(xy, body.extent[2] / 2.0, rng)
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


