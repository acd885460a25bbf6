"""Static props of footage-like synthetic scenes: walls, pillars, crates and parked cars.

Props stand between the camera and the action, so objects pass behind them (partly or
wholly hidden) and reappear; they are background, never ground-truth objects. Placement
works on ground footprints: each prop is a rectangle (centre, half sizes, yaw) that must keep
clear of the camera path, of the yard's walls, of other props and of paths already fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recon4d.synth.bodies import PROP_KINDS, Body, heading_rotation, make_prop

_YARD_LIMIT_M = 13.3  # props keep this far inside the yard's walls (|x|, |y| < 14 m)
_CAMERA_CLEARANCE_M = 2.5  # from a prop's footprint to the camera in every frame (it must not fill the view)


@dataclass(frozen=True, eq=False)
class Prop:
    """One piece of static scenery on the ground.

    body:     the mesh in its own frame (x along its long side, z up, origin at its box centre).
    centre:   (2,) ground position of its centre, metres.
    yaw_rad:  turn of its x axis from world x towards world y.
    """

    body: Body
    centre: np.ndarray
    yaw_rad: float

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) prop → world, resting on the ground."""
        pose = np.eye(4)
        pose[:3, :3] = heading_rotation(np.array(self.yaw_rad))
        pose[:2, 3] = self.centre
        pose[2, 3] = self.body.extent[2] / 2.0
        return pose

    @property
    def half_size(self) -> np.ndarray:
        """(2,) half length and half width of the footprint."""
        return self.body.extent[:2] / 2.0

    @property
    def height(self) -> float:
        return float(self.body.extent[2])

    def to_local(self, xy: np.ndarray) -> np.ndarray:
        """Ground points (..., 2) in the prop's footprint frame."""
        cos, sin = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        offset = np.asarray(xy, np.float64) - self.centre
        return np.stack([offset[..., 0] * cos + offset[..., 1] * sin, -offset[..., 0] * sin + offset[..., 1] * cos], -1)

    def distance(self, xy: np.ndarray) -> np.ndarray:
        """(...) ground distance from points (..., 2) to the footprint (0 inside)."""
        outside = np.maximum(np.abs(self.to_local(xy)) - self.half_size, 0.0)
        return np.linalg.norm(outside, axis=-1)


def footprint_hits(props: list[Prop], xy: np.ndarray, radius: float) -> np.ndarray:
    """(...) bool: a disc of ``radius`` at ``xy`` (..., 2) overlaps some prop's footprint."""
    hit = np.zeros(np.shape(xy)[:-1], bool)
    for prop in props:
        hit |= prop.distance(xy) < radius
    return hit


def sight_blocked(props: list[Prop], camera_xy: np.ndarray, object_xy: np.ndarray, object_height: float) -> np.ndarray:
    """(T,) bool: the ground line from the camera to the object crosses a prop at least 0.8× as
    tall as the object (a cheap stand-in for "mostly hidden", used while placing paths)."""
    blocked = np.zeros(len(object_xy), bool)
    for prop in props:
        if prop.height < 0.8 * object_height:
            continue
        start, end = prop.to_local(camera_xy), prop.to_local(object_xy)
        step = end - start
        enter, leave = np.zeros(len(step)), np.ones(len(step))
        for axis in range(2):  # Liang–Barsky clipping of the segment against the rectangle
            half = prop.half_size[axis]
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-half - start[:, axis]) / step[:, axis]
                t2 = (half - start[:, axis]) / step[:, axis]
            parallel = np.abs(step[:, axis]) < 1e-12
            inside = np.abs(start[:, axis]) <= half
            enter = np.where(parallel, np.where(inside, enter, 2.0), np.maximum(enter, np.minimum(t1, t2)))
            leave = np.where(parallel, np.where(inside, leave, -1.0), np.minimum(leave, np.maximum(t1, t2)))
        blocked |= enter <= leave
    return blocked


def place_props(trimesh, cam_to_world: np.ndarray, rng: np.random.Generator,
                keep_clear: list[tuple[np.ndarray, float]] = ()) -> list[Prop]:
    """0–3 props between the camera and the action (the disc of radius 2.5 m around the origin).

    cam_to_world: (T, 4, 4) the camera path; props keep ``_CAMERA_CLEARANCE_M`` from it.
    keep_clear: (xy (T, 2), radius) paths already fixed (a followed subject) that props avoid.
    A prop that finds no place in 60 tries is left out.
    """
    n_props = int(rng.choice(4, p=[0.1, 0.35, 0.35, 0.2]))
    cameras = cam_to_world[:, :2, 3]
    props: list[Prop] = []
    for _ in range(n_props):
        kind = str(rng.choice(PROP_KINDS, p=[0.35, 0.25, 0.2, 0.2]))
        body = make_prop(trimesh, kind, rng)
        for _ in range(60):
            camera = cameras[int(rng.integers(len(cameras)))]
            goal = rng.uniform(-2.5, 2.5, 2)
            centre = camera + rng.uniform(0.35, 0.65) * (goal - camera)
            across = math.atan2(goal[1] - camera[1], goal[0] - camera[0]) + math.pi / 2
            yaw = rng.uniform(0.0, 2.0 * math.pi) if kind == "parked_car" else across + rng.uniform(-0.4, 0.4)
            prop = Prop(body, centre, float(yaw))
            if np.abs(_corners_world(prop)).max() > _YARD_LIMIT_M:
                continue
            if (prop.distance(cameras) < _CAMERA_CLEARANCE_M).any():
                continue
            radius = float(np.linalg.norm(prop.half_size))
            if any(np.linalg.norm(centre - other.centre) < radius + np.linalg.norm(other.half_size) + 0.5
                   for other in props):
                continue
            if any((prop.distance(xy) < clearance).any() for xy, clearance in keep_clear):
                continue
            props.append(prop)
            break
    return props


def _corners_world(prop: Prop) -> np.ndarray:
    """(4, 2) footprint corners in the world."""
    cos, sin = math.cos(prop.yaw_rad), math.sin(prop.yaw_rad)
    local = np.array([[sx, sy] for sx in (-1, 1) for sy in (-1, 1)]) * prop.half_size
    return prop.centre + local @ np.array([[cos, sin], [-sin, cos]])
