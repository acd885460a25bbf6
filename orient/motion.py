"""Weights-free orientation: an agent faces its smoothed direction of travel.

The ``motion`` orient backend (DESIGN §4). For each agent, from its lifted 3D centres
(``LiftResult.center_world``, (K, T, 3)) and the clip timestamps:

1. Velocity: a local quadratic fit (Savitzky–Golay on the actual timestamps, so gaps and
   uneven sampling are fine) of the centre against time over a centred window of
   ``window_s`` seconds (widened to reach the neighbouring samples when the clip is
   sampled more sparsely, slid inward at the clip's ends), differentiated at each frame;
   a local linear fit where the window holds only 2–3 visible samples.
2. World up: the mean of the cameras' up axes (−y of OpenCV, i.e. ``−cam_to_world[:, :3,
   1]``) over the clip, with its pitch corrected by the agents' own velocities (agents
   walk on the ground, so up is orthogonal to their velocities; cameras are taken not
   to roll, so only the pitch is fitted: a camera looking down would otherwise tilt
   every agent). The correction needs motion towards or away from the camera and is
   kept only within ``max_up_refinement_deg`` of the camera estimate
   (:func:`estimate_up`).
3. Heading: the velocity with its up component removed; forward = its direction,
   left = up × forward, up. R_cam←agent = R_world←camᵀ · R_world←agent, converted with
   :func:`recon4d.geometry.rotation_to_orientation` to (azimuth, polar, rotation) degrees
   relative to the camera of each frame (DESIGN §2).
4. Confidence from horizontal speed: conf = clip((speed − v_min) / (v_full − v_min), 0,
   1). Slower than ``v_min`` the heading is unknown: orientation NaN, conf 0. Agents not
   visible in a frame, and non-agents everywhere, get NaN orientation and NaN conf.

Speeds are in metres per second. A reconstruction whose unit is not metric
(``Reconstruction.unit`` "arbitrary", e.g. π³, or "unknown") is first brought to metres
when people were lifted: one metre per unit is taken from their median lifted height (the
vertical extent of their points, :data:`PERSON_EXTENT_M` for a 1.7 m person), and a warning
gives the factor. Without people the thresholds are applied in world units per second, with
a warning that they may mean nothing at that scale.

    MotionOrienter.from_config({}, "cpu").orient(clip, tracks, recon, lifted) -> Orientations
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from recon4d.checks import check_shape
from recon4d.backends import config_from_options
from recon4d.errors import Recon4dError
from recon4d.geometry import rotation_to_orientation
from recon4d.types import Clip, LiftResult, Orientations, ProgressFn, Reconstruction, Tracks2D

__all__ = [
    "PERSON_EXTENT_M",
    "MotionOrientWarning",
    "MotionOrienter",
    "MotionOrienterConfig",
    "estimate_up",
    "heading_rotations",
    "metres_per_unit",
    "smoothed_velocity",
    "speed_confidence",
]


PERSON_EXTENT_M = 0.9 * 1.7
"""Vertical 5–95 % quantile range of the points of a standing 1.7 m person (lifting's extent),
taken as uniform along the body: what one person's extent measures in a metric scene."""

_PEOPLE = ("person", "people", "pedestrian")


class MotionOrientWarning(UserWarning):
    """Speeds were judged in a unit other than metres (see the module docstring)."""


@dataclass(frozen=True)
class MotionOrienterConfig:
    """Settings of :class:`MotionOrienter`."""

    window_s: float = 0.5
    """Width of the centred window the velocity is fitted over, seconds."""
    v_min: float = 0.15
    """Horizontal speed (world units/s) below which an agent counts as standing: no heading, conf 0."""
    v_full: float = 0.6
    """Horizontal speed at which the confidence reaches 1 (linear from v_min)."""
    max_up_refinement_deg: float = 30.0
    """The velocity-based up is used only within this angle of the cameras' mean up."""

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise Recon4dError(f"MotionOrienterConfig: window_s must be positive, got {self.window_s}.")
        if not 0 <= self.v_min < self.v_full:
            raise Recon4dError(f"MotionOrienterConfig: need 0 ≤ v_min < v_full, got v_min={self.v_min}, "
                               f"v_full={self.v_full}.")
        if not 0 <= self.max_up_refinement_deg <= 90:
            raise Recon4dError("MotionOrienterConfig: max_up_refinement_deg must lie in [0, 90], "
                               f"got {self.max_up_refinement_deg}.")


def smoothed_velocity(center_world: np.ndarray, visible: np.ndarray, timestamps_s: np.ndarray,
                      window_s: float = 0.5) -> np.ndarray:
    """Velocity (K, T, 3) float64 of trajectories by local polynomial fits; NaN where unknown.

    center_world: (K, T, 3); visible: (K, T) bool; timestamps_s: (T,) increasing. At frame
    t the visible samples within ±h of its time, h = max(window_s / 2, median step), are
    fitted with a quadratic in time (≥ 4 samples) or a line (2–3 samples), and the fit's
    slope at t is the velocity: a Savitzky–Golay derivative on the real timestamps. Within
    h of the clip's ends the window slides inward (it keeps its width). NaN where frame t
    is not visible or fewer than 2 samples fall in its window.
    """
    center_world = np.asarray(center_world, np.float64)
    dims = check_shape("center_world", center_world, ("K", "T", 3))
    check_shape("visible", np.asarray(visible), ("K", "T"), dims)
    times = np.asarray(timestamps_s, np.float64)
    check_shape("timestamps_s", times, ("T",), dims)
    n_objects, n_frames = dims["K"], dims["T"]
    velocity = np.full((n_objects, n_frames, 3), np.nan)
    if n_frames < 2 or n_objects == 0:
        return velocity
    half = max(window_s / 2.0, float(np.median(np.diff(times))))
    offsets = times[None, :] - times[:, None]  # (T query, T sample)
    # Near the ends the window slides inward instead of shrinking, so end frames keep a
    # full window of samples (a one-sided half window makes the quadratic noisy).
    centres = np.clip(times, times[0] + half, max(times[-1] - half, times[0] + half))
    in_window = np.abs(times[None, :] - centres[:, None]) <= half + 1e-9
    usable = np.asarray(visible, bool) & np.isfinite(center_world).all(axis=-1)
    weight = in_window[None] & usable[:, None, :]  # (K, T, T)
    count = weight.sum(axis=-1)
    scaled = offsets / half  # keeps the normal equations well conditioned
    positions = np.where(usable[..., None], center_world, 0.0)
    for degree, enough in ((1, (count >= 2) & (count < 4)), (2, count >= 4)):
        basis = np.stack([scaled ** p for p in range(degree + 1)], axis=-1)  # (T, T, P)
        normal = np.einsum("kts,tsp,tsq->ktpq", weight, basis, basis)
        moment = np.einsum("kts,tsp,ksd->ktpd", weight, basis, positions)
        coefficients = np.einsum("ktpq,ktqd->ktpd", np.linalg.pinv(normal), moment)
        take = enough & usable
        velocity[take] = coefficients[take][:, 1] / half
    return velocity


def estimate_up(cam_to_world: np.ndarray, velocities: np.ndarray | None = None,
                max_refinement_deg: float = 30.0, min_depth_motion: float = 0.1) -> np.ndarray:
    """World up (3,) unit vector of a clip.

    cam_to_world: (T, 4, 4) OpenCV poses; the cameras' up is −y, averaged over the clip.
    velocities: (N, 3) agent velocities (any order, NaN rows ignored) or None. Cameras are
    assumed not to roll but may pitch, so the up is searched in the plane of the cameras'
    mean up and mean forward: the direction there most orthogonal to the velocities (agents
    walk on the ground). It replaces the camera up when the velocities have a component
    in that plane (toward or away from the camera) carrying at least ``min_depth_motion``
    of their energy, the fit is clear (the residual eigenvalue under a quarter of the
    other), and it lies within ``max_refinement_deg`` of the camera up.
    """
    cam_to_world = np.asarray(cam_to_world, np.float64)
    check_shape("cam_to_world", cam_to_world, ("T", 4, 4))
    camera_up = -cam_to_world[:, :3, 1].mean(axis=0)
    camera_up /= np.linalg.norm(camera_up)
    if velocities is None:
        return camera_up
    velocities = np.asarray(velocities, np.float64).reshape(-1, 3)
    velocities = velocities[np.isfinite(velocities).all(axis=1)]
    forward = cam_to_world[:, :3, 2].mean(axis=0)
    forward -= (forward @ camera_up) * camera_up
    if len(velocities) < 2 or np.linalg.norm(forward) < 1e-9:
        return camera_up
    basis = np.stack([camera_up, forward / np.linalg.norm(forward)])  # (2, 3)
    projected = velocities @ basis.T
    eigenvalues, eigenvectors = np.linalg.eigh(projected.T @ projected)  # ascending
    if eigenvalues[1] < min_depth_motion * np.sum(velocities ** 2) or eigenvalues[0] > 0.25 * eigenvalues[1]:
        return camera_up
    up = eigenvectors[:, 0] @ basis
    up *= np.sign(up @ camera_up)
    if np.degrees(np.arccos(np.clip(up @ camera_up, -1.0, 1.0))) > max_refinement_deg:
        return camera_up
    return up


def heading_rotations(velocity: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R_world←agent (..., 3, 3) facing the horizontal part of ``velocity`` (..., 3), and its speed (...).

    Columns: forward (unit horizontal velocity), left = up × forward, up. NaN rotations
    where the horizontal speed is 0 or the velocity is NaN.
    """
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    horizontal = velocity - (velocity @ up)[..., None] * up
    speed = np.linalg.norm(horizontal, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        forward = horizontal / np.where(speed > 0, speed, np.nan)[..., None]
    left = np.cross(np.broadcast_to(up, forward.shape), forward)
    rotation = np.stack([forward, left, np.broadcast_to(up, forward.shape)], axis=-1)
    rotation[~(speed > 0)] = np.nan
    return rotation, speed


def metres_per_unit(extent: np.ndarray, visible: np.ndarray, people: np.ndarray) -> float | None:
    """Metres per world unit from the people's lifted heights, or None without any.

    extent: (K, T, 3) lifted extents (camera frame: axis 1 is image-down, about vertical for
    a camera that does not roll); visible: (K, T) bool; people: (K,) bool. The median vertical
    extent over every visible person-frame is taken to be :data:`PERSON_EXTENT_M`.
    """
    heights = np.asarray(extent, np.float64)[..., 1][np.asarray(people, bool)[:, None] & np.asarray(visible, bool)]
    heights = heights[np.isfinite(heights) & (heights > 0)]
    return float(PERSON_EXTENT_M / np.median(heights)) if heights.size else None


def speed_confidence(speed: np.ndarray, v_min: float, v_full: float) -> np.ndarray:
    """clip((speed − v_min) / (v_full − v_min), 0, 1); NaN speed gives NaN."""
    return np.clip((np.asarray(speed, np.float64) - v_min) / (v_full - v_min), 0.0, 1.0)


class MotionOrienter:
    """Weights-free orient backend: agents face where they go (module docstring)."""

    name = "motion"
    version = "1"

    def __init__(self, config: MotionOrienterConfig = MotionOrienterConfig()) -> None:
        self.config = config

    @classmethod
    def from_config(cls, options: dict, device: str = "cpu") -> "MotionOrienter":
        """Build from options named like :class:`MotionOrienterConfig` fields; ``device`` is unused."""
        return cls(config_from_options(MotionOrienterConfig, options, "motion orienter"))

    def orient(self, clip: Clip, tracks: Tracks2D, recon: Reconstruction, lifted: LiftResult,
               progress: ProgressFn | None = None) -> Orientations:
        """Orientation (K, T, 3) deg and conf (K, T) of every tracked object.

        lifted: :class:`recon4d.types.LiftResult` with ``center_world`` (K, T, 3) and
        ``visible`` (K, T) of the same objects and frames as ``tracks`` and ``recon``.
        """
        config = self.config
        center_world = np.asarray(lifted.center_world, np.float64) * self._metres_per_unit(recon, tracks, lifted)
        dims = check_shape("lifted.center_world", center_world, ("K", "T", 3))
        check_shape("lifted.visible", np.asarray(lifted.visible), ("K", "T"), dims)
        check_shape("tracks.is_agent", tracks.is_agent, ("K",), dims)
        check_shape("recon.cam_to_world", recon.cam_to_world, ("T", 4, 4), dims)
        check_shape("clip.timestamps_s", clip.timestamps_s, ("T",), dims)
        n_objects, n_frames = dims["K"], dims["T"]
        angles = np.full((n_objects, n_frames, 3), np.nan)
        conf = np.full((n_objects, n_frames), np.nan)
        agents = np.flatnonzero(tracks.is_agent)
        if len(agents):
            visible = np.asarray(lifted.visible, bool)[agents]
            velocity = smoothed_velocity(center_world[agents], visible, clip.timestamps_s, config.window_s)
            camera_up = estimate_up(recon.cam_to_world)
            _, speed_guess = heading_rotations(velocity, camera_up)
            up = estimate_up(recon.cam_to_world, velocity[speed_guess >= config.v_min],
                             config.max_up_refinement_deg)
            world_from_agent, speed = heading_rotations(velocity, up)
            camera_rotation = recon.cam_to_world[:, :3, :3]
            camera_from_agent = np.einsum("tji,ktjl->ktil", camera_rotation, world_from_agent)
            moving = speed >= config.v_min
            agent_angles = np.full(velocity.shape, np.nan)
            agent_angles[moving] = rotation_to_orientation(camera_from_agent[moving])
            agent_conf = np.where(moving, speed_confidence(speed, config.v_min, config.v_full), 0.0)
            agent_conf[~np.isfinite(speed)] = np.nan
            angles[agents], conf[agents] = agent_angles, agent_conf
        if progress is not None:
            progress(1, 1)
        return Orientations(angles_deg=angles.astype(np.float32), conf=conf.astype(np.float32))

    @staticmethod
    def _metres_per_unit(recon: Reconstruction, tracks: Tracks2D, lifted) -> float:
        """1 for metric geometry; else the people's scale (warned), else 1 with a warning."""
        unit = getattr(recon, "unit", "unknown")
        if unit == "metric" or not np.asarray(tracks.is_agent).any():
            return 1.0
        people = np.array([c.lower() in _PEOPLE for c in tracks.categories], bool) & np.asarray(tracks.is_agent)
        scale = metres_per_unit(lifted.extent, lifted.visible, people) if people.any() else None
        if scale is None:
            warnings.warn(f"the reconstruction's unit is {unit}, not metres, and no person was lifted to measure "
                          f"it: the speed thresholds (v_min, v_full) are applied in world units per second",
                          MotionOrientWarning, stacklevel=3)
            return 1.0
        warnings.warn(f"the reconstruction's unit is {unit}, not metres: speeds are scaled by {scale:.3g} m per unit, "
                      f"measured from the lifted heights of people ({PERSON_EXTENT_M:.2f} m each)",
                      MotionOrientWarning, stacklevel=3)
        return scale
