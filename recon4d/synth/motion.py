"""How objects move in footage-like synthetic scenes (:mod:`recon4d.synth.scene`, ``varied=True``).

On top of the plain scenes' smooth loops (:mod:`recon4d.synth.paths`):

- objects stop and restart: the speed eases to zero, holds 0.4–1.5 s and eases back
  (a warp of time along the path, so positions and headings stay smooth);
- some objects cross the view: straight paths that enter or leave the frame (cars mostly);
- people walk in groups of two or three, abreast or in single file, on offset copies of one
  path, close but never touching;
- paths keep clear of props (:mod:`recon4d.synth.layout`), of the camera and of each other,
  and objects meant to stay in view are not hidden behind props most of the time.

Agents and cars face along their path (its tangent, defined even while stopped); balls roll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recon4d.synth.bodies import AGENT_CATEGORIES, Body, heading_rotation
from recon4d.synth.layout import Prop, footprint_hits, sight_blocked
from recon4d.synth.paths import ACTION_RADIUS_M, body_in_view, rolling_rotations

_SPEED_M_S = {"person": (0.8, 1.5), "dog": (1.0, 2.2), "box": (0.4, 1.0), "ball": (0.8, 2.2),
              "cone": (0.3, 0.7), "car": (2.0, 4.5)}
_FAST_M_S = {"person": (0.15, (2.2, 3.0)), "dog": (0.25, (2.5, 3.6))}  # chance and speed of a jog or run
_YARD_LIMIT_M = 13.4  # object footprints stay inside the yard's walls (|x|, |y| < 14 m)
TRANSIT_RADIUS_M = 11.0  # crossings stay within this distance of the origin (a car's half length inside the walls)
_MAX_TRIES = 200


@dataclass(frozen=True)
class GroundPath:
    """A smooth path on the ground, walked with optional stops.

    kind:       "ellipse" (loop), "line" (back and forth) or "transit" (straight, at constant speed).
    centre:     (x, y) of the curve's centre (transit: where it is at ``phase`` seconds).
    axes:       ellipse semi-axes / line half length, metres (transit: unused).
    angle:      turn of the curve's x axis from world x, radians.
    phase:      ellipse/line: phase at t = 0, radians; transit: time it passes ``centre``, seconds.
    rate:       ellipse/line: phase per second (sign = direction); transit: speed, m/s.
    stops:      (start_s, hold_s, ramp_s) per stop: the speed eases to 0 over ramp_s, holds, eases back.
    lateral_m:  offset to the left of the curve (group members).
    lag_s:      how far behind along the curve, in seconds of travel (group members).
    """

    kind: str
    centre: tuple[float, float]
    axes: tuple[float, float]
    angle: float
    phase: float
    rate: float
    stops: tuple[tuple[float, float, float], ...] = ()
    lateral_m: float = 0.0
    lag_s: float = 0.0

    def travel_time(self, times_s: np.ndarray) -> np.ndarray:
        """(T,) time spent moving by ``times_s``: t minus the time lost to stops (exact integral)."""
        times_s = np.asarray(times_s, np.float64)
        lost = np.zeros_like(times_s)
        for start, hold, ramp in self.stops:
            x = times_s - start
            down = x / 2 - ramp / (2 * math.pi) * np.sin(math.pi * x / ramp)
            y = x - ramp - hold
            up = ramp / 2 + hold + y / 2 + ramp / (2 * math.pi) * np.sin(math.pi * y / ramp)
            lost += np.select([x < 0, x < ramp, y < 0, y < ramp], [0.0, down, ramp / 2 + (x - ramp), up],
                              ramp + hold)
        return times_s - lost

    def at(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground positions (T, 2) and unit tangents (T, 2) (direction of travel) at ``times_s``."""
        tau = self.travel_time(times_s) - self.lag_s
        a, b = self.axes
        if self.kind == "transit":
            local = np.stack([self.rate * (tau - self.phase), np.zeros_like(tau)], -1)
            tangent = np.tile([1.0, 0.0], (len(tau), 1))
        else:
            phase = self.phase + self.rate * tau
            sign = math.copysign(1.0, self.rate)
            if self.kind == "ellipse":
                local = np.stack([a * np.cos(phase), b * np.sin(phase)], -1)
                tangent = sign * np.stack([-a * np.sin(phase), b * np.cos(phase)], -1)
            else:
                local = np.stack([a * np.sin(phase), np.zeros_like(phase)], -1)
                tangent = np.stack([np.where(np.cos(phase) * sign >= 0, 1.0, -1.0), np.zeros_like(phase)], -1)
            tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True)
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        rotation = np.array([[cos, -sin], [sin, cos]])
        xy, tangent = np.asarray(self.centre) + local @ rotation.T, tangent @ rotation.T
        left = np.stack([-tangent[:, 1], tangent[:, 0]], -1)
        return xy + self.lateral_m * left, tangent


def _speed(category: str, rng: np.random.Generator) -> float:
    chance, fast = _FAST_M_S.get(category, (0.0, None))
    return float(rng.uniform(*fast)) if rng.uniform() < chance else float(rng.uniform(*_SPEED_M_S[category]))


def _stops(duration_s: float, rng: np.random.Generator) -> tuple[tuple[float, float, float], ...]:
    """One stop in 40% of paths: it starts in the first two thirds of the clip and ends in it."""
    if duration_s < 1.5 or rng.uniform() >= 0.4:
        return ()
    ramp = rng.uniform(0.25, 0.5)
    hold = rng.uniform(0.4, min(1.5, 0.35 * duration_s))
    start = rng.uniform(0.1 * duration_s, max(0.1 * duration_s, duration_s - 2 * ramp - hold - 0.3))
    return ((float(start), float(hold), float(ramp)),)


def draw_path(category: str, role: str, duration_s: float, rng: np.random.Generator,
              can_stop: bool = True, min_radius_m: float = 0.0) -> GroundPath:
    """A random path for ``category``: ``role`` "stay" (a loop in the action area) or "transit"
    (a straight crossing); ``min_radius_m`` bounds the loop's curvature (for offset group paths)."""
    speed = _speed(category, rng)
    stops = _stops(duration_s, rng) if can_stop else ()
    angle = rng.uniform(0.0, 2.0 * math.pi)
    if role == "transit":
        reach = math.sqrt(rng.uniform()) * (ACTION_RADIUS_M + 0.5)
        direction = rng.uniform(0.0, 2.0 * math.pi)
        centre = np.array([reach * math.cos(direction), reach * math.sin(direction)])
        # Where the line leaves the disc of TRANSIT_RADIUS_M, ahead and behind the centre.
        along = float(centre @ [math.cos(angle), math.sin(angle)])
        half_chord = math.sqrt(along**2 - centre @ centre + TRANSIT_RADIUS_M**2)
        ahead, behind = half_chord - along, half_chord + along
        speed = min(speed, 0.95 * (ahead + behind) / duration_s)
        low, high = max(0.15 * duration_s, duration_s - ahead / speed), min(0.85 * duration_s, behind / speed)
        if low > high:
            low, high = max(0.0, duration_s - ahead / speed), min(duration_s, behind / speed)
        return GroundPath("transit", (float(centre[0]), float(centre[1])), (0.0, 0.0), angle,
                          float(rng.uniform(low, high)), speed, stops)
    if category in AGENT_CATEGORIES or category == "car" or rng.uniform() < 0.5:
        low, high = (3.0, 4.5) if category == "car" else (max(1.2, min_radius_m), max(2.6, min_radius_m + 0.4))
        a = rng.uniform(low, high)
        b = a * rng.uniform(0.75 if min_radius_m or category == "car" else 0.55, 1.0)
        axes = (a, b)
        rate = rng.choice([-1.0, 1.0]) * speed / math.sqrt((a**2 + b**2) / 2.0)
        kind = "ellipse"
    else:
        a = rng.uniform(0.8, 2.0)
        axes, rate, kind = (a, 0.0), speed / a, "line"
    reach = math.sqrt(rng.uniform()) * max(0.0, ACTION_RADIUS_M + 0.5 - axes[0])
    direction = rng.uniform(0.0, 2.0 * math.pi)
    centre = (reach * math.cos(direction), reach * math.sin(direction))
    return GroundPath(kind, centre, axes, angle, rng.uniform(0.0, 2.0 * math.pi), rate, stops)


def draw_subject_path(category: str, duration_s: float, rng: np.random.Generator) -> tuple[GroundPath, float]:
    """The path of a subject a camera follows, and the camera's lag in seconds: a loop without
    stops, with the follower 3–8 m behind (the chord, not the arc) in every frame."""
    times = np.linspace(0.0, duration_s, max(2, int(duration_s * 20)))
    best = None
    for _ in range(_MAX_TRIES):
        path = draw_path(category, "stay", duration_s, rng, can_stop=False, min_radius_m=1.8)
        lag = rng.uniform(2.0, 4.5)
        chord = np.linalg.norm(path.at(times)[0] - path.at(times - lag)[0], axis=-1)
        bad = int(((chord < 3.0) | (chord > 8.0)).sum())
        if best is None or bad < best[0]:
            best = (bad, path, lag)
        if bad == 0:
            break
    return best[1], float(best[2])


def _group_offsets(size: int, speed_m_s: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(lateral_m, lag_s) of each member: abreast 0.8–1.0 m apart, or in single file 1.0–1.4 m apart."""
    if rng.uniform() < 0.6:
        spacing = rng.uniform(0.8, 1.0)
        return [((i - (size - 1) / 2) * spacing, 0.0) for i in range(size)]
    return [(rng.uniform(-0.15, 0.15), i * rng.uniform(1.0, 1.4) / speed_m_s) for i in range(size)]


def _frame_checks(xy, body, cam_to_world, intrinsics, size, props) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame (T,) bool: in view (whole height inside the image, > 2 m away), hitting
    something static or the camera, hidden behind a prop."""
    in_view = body_in_view(xy, body, cam_to_world, intrinsics, size)
    radius = 0.5 * float(np.hypot(body.extent[0], body.extent[1]))
    camera_xy = cam_to_world[:, :2, 3]
    crash = footprint_hits(props, xy, radius + 0.15) | (np.abs(xy).max(axis=-1) + radius > _YARD_LIMIT_M)
    crash |= np.linalg.norm(xy - camera_xy, axis=-1) < radius + 1.5
    hidden = sight_blocked(props, camera_xy, xy, float(body.extent[2]))
    return in_view, crash, hidden


def _unit_cost(tracks, bodies, roles, cam_to_world, intrinsics, size, props, placed) -> int:
    """Bad frames of a unit (one object, or a group on one path): lower is better, 0 is clean."""
    cost = 0
    n_frames = len(cam_to_world)
    for xy, body, role in zip(tracks, bodies, roles, strict=True):
        in_view, bad, hidden = _frame_checks(xy, body, cam_to_world, intrinsics, size, props)
        radius = 0.5 * float(np.hypot(body.extent[0], body.extent[1]))
        for other_xy, other_radius in placed:
            bad = bad | (np.linalg.norm(xy - other_xy, axis=-1) < radius + other_radius + 0.25)
        cost += int(bad.sum())
        if role == "stay":
            cost += int((~in_view).sum()) + max(0, int(hidden.sum()) - n_frames // 2)
        elif role == "transit":  # seen (in view, not behind a prop) for a quarter to nine tenths of the clip
            share = float((in_view & ~hidden).mean())
            cost += 0 if 0.25 <= share <= 0.9 else 1 + int(n_frames * min(abs(share - 0.25), abs(share - 0.9)) * 4)
    return cost


def varied_object_poses(bodies: list[Body], group_size: int, cam_to_world: np.ndarray, intrinsics: np.ndarray,
                        size: tuple[int, int], times_s: np.ndarray, props: list[Prop], rng: np.random.Generator,
                        subject: GroundPath | None = None) -> tuple[np.ndarray, np.ndarray, list[GroundPath]]:
    """Object-to-world poses (K, T, 4, 4), world headings (K, T) and the path of every body.

    ``subject``: body 0's path when a camera follows it (fixed, not redrawn). The first
    ``group_size`` bodies walk together. Every other unit is drawn up to 200 times and the
    draw with the fewest bad frames kept (:func:`_unit_cost`).
    """
    n_frames = len(times_s)
    duration = float(times_s[-1]) if n_frames > 1 else 1.0
    poses = np.tile(np.eye(4), (len(bodies), n_frames, 1, 1))
    headings = np.zeros((len(bodies), n_frames))
    paths: list[GroundPath | None] = [None] * len(bodies)
    placed: list[tuple[np.ndarray, float]] = []

    def radius(k):
        return 0.5 * float(np.hypot(bodies[k].extent[0], bodies[k].extent[1]))

    units: list[list[int]] = []
    start = 0
    if group_size >= 2:
        units.append(list(range(group_size)))
        start = group_size
    elif subject is not None and bodies:
        units.append([0])
        start = 1
    units += [[k] for k in range(start, len(bodies))]
    for unit in units:
        lead = bodies[unit[0]]
        followed = subject is not None and unit[0] == 0
        best = None
        for _ in range(1 if followed and len(unit) == 1 else _MAX_TRIES):
            if followed:
                base = subject
            else:
                transit_chance = 0.6 if lead.category == "car" else 0.3
                role = "transit" if rng.uniform() < transit_chance else "stay"
                base = draw_path(lead.category, role, duration, rng, min_radius_m=1.8 if len(unit) > 1 else 0.0)
            speed = abs(base.rate) * (1.0 if base.kind == "transit" else math.sqrt(sum(a * a for a in base.axes) / 2))
            offsets = _group_offsets(len(unit), max(speed, 0.3), rng) if len(unit) > 1 else [(0.0, 0.0)]
            if followed:  # the followed subject keeps the base path; its mates walk beside or behind it
                offsets = [(o[0] - offsets[0][0], o[1] - offsets[0][1]) for o in offsets]
            member_paths = [GroundPath(base.kind, base.centre, base.axes, base.angle, base.phase, base.rate,
                                       base.stops, lateral, lag) for lateral, lag in offsets]
            tracks = [path.at(times_s)[0] for path in member_paths]
            roles = ["subject" if followed and i == 0 else
                     ("transit" if base.kind == "transit" else "stay") for i in range(len(unit))]
            cost = _unit_cost(tracks, [bodies[k] for k in unit], roles, cam_to_world, intrinsics, size, props, placed)
            if best is None or cost < best[0]:
                best = (cost, member_paths)
            if cost == 0:
                break
        for k, path in zip(unit, best[1], strict=True):
            paths[k] = path
            placed.append((path.at(times_s)[0], radius(k)))

    for k, (body, path) in enumerate(zip(bodies, paths, strict=True)):
        xy, tangent = path.at(times_s)
        heading = np.arctan2(tangent[:, 1], tangent[:, 0])
        if body.category == "ball":
            poses[k, :, :3, :3] = rolling_rotations(xy, body.extent[2] / 2.0, rng)
            headings[k] = heading
        elif body.is_agent or body.category == "car":
            headings[k] = heading
            poses[k, :, :3, :3] = heading_rotation(heading)
        else:  # boxes and cones slide without turning
            headings[k] = rng.uniform(0.0, 2.0 * math.pi)
            poses[k, :, :3, :3] = heading_rotation(headings[k])
        poses[k, :, :2, 3] = xy
        poses[k, :, 2, 3] = body.extent[2] / 2.0
    return poses, headings, paths
