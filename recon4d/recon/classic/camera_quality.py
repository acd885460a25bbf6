"""How far the classic backend's camera can be trusted: still-camera test and per-frame measures.

- :func:`still_steps`: a frame shows the background where the previous frame (and frame 0)
  showed it — a still camera. The test asks for a *share* of still background tracks, not a
  median, so untracked movers (a shirt, pouring water, steam) that cover much of a frame do
  not make a tripod shot move.
- :func:`pose_inlier_ratio`: the share of background tracks followed from the previous frame
  that agree with the estimated relative pose (Sampson distance to its epipolar geometry, or
  the residual angle of a pure turn).
- :func:`reprojection_px`: median reprojection error of the map points each frame sees.
- :func:`height_drift`: how far each frame's camera height above the fitted ground is off the
  clip's median height (a handheld camera keeps its height; a drifting pose chain does not).
- :func:`path_kinks`: frames where the camera path turns or changes speed more abruptly than a
  carried camera can (a pose chain that broke and went on).
- :func:`build_camera_quality`: the :class:`~recon4d.types.CameraQuality` record.
"""

from __future__ import annotations

import numpy as np

from recon4d.quality import camera_score
from recon4d.types import CameraQuality

_MIN_COMMON = 8  # background tracks two frames must share to say anything about their motion


def still_steps(xy: np.ndarray, bg_seen: np.ndarray, focal: float, static_px: float,
                min_fraction: float = 0.4) -> np.ndarray:
    """(T,) bool: frame t is still with respect to frame t − 1 and to frame 0.

    xy: (N, T, 2) normalised coordinates; bg_seen: (N, T) background tracks seen; focal in
    pixels. Against each reference sharing at least 8 tracks, at least ``min_fraction`` of
    the shared tracks must have moved less than ``static_px``; a frame sharing fewer than 8
    tracks with t − 1 is not still (nothing shows it is). Frame 0 is still.
    """
    n_frames = xy.shape[1]
    still = np.ones(n_frames, bool)
    for t in range(1, n_frames):
        for reference in (t - 1, 0):
            common = bg_seen[:, reference] & bg_seen[:, t]
            if common.sum() < _MIN_COMMON:
                if reference == t - 1:
                    still[t] = False
                continue
            moved_px = np.linalg.norm(xy[common, t] - xy[common, reference], axis=-1) * focal
            if (moved_px < static_px).mean() < min_fraction:
                still[t] = False
    return still


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def pose_inlier_ratio(world_to_cam: np.ndarray, xy: np.ndarray, bg_seen: np.ndarray, focal: float,
                      threshold_px: float) -> np.ndarray:
    """(T,) float: share of the background tracks seen at t − 1 and t that the relative pose explains.

    world_to_cam: (T, 3, 4); xy: (N, T, 2) normalised; a track agrees when its Sampson
    distance to the pair's epipolar geometry (or, without translation, its residual after the
    relative rotation) is under ``threshold_px`` pixels. Frame 0 takes the value of frame 1;
    NaN where fewer than 8 tracks are shared.
    """
    n_frames = xy.shape[1]
    ratio = np.full(n_frames, np.nan)
    for t in range(1, n_frames):
        common = bg_seen[:, t - 1] & bg_seen[:, t]
        if common.sum() < _MIN_COMMON:
            continue
        rotation = world_to_cam[t, :, :3] @ world_to_cam[t - 1, :, :3].T
        translation = world_to_cam[t, :, 3] - rotation @ world_to_cam[t - 1, :, 3]
        a = np.concatenate([xy[common, t - 1], np.ones((common.sum(), 1))], axis=1)
        b = np.concatenate([xy[common, t], np.ones((common.sum(), 1))], axis=1)
        norm = np.linalg.norm(translation)
        if norm < 1e-9:
            turned = a @ rotation.T
            error = np.linalg.norm(turned[:, :2] / turned[:, 2:] - b[:, :2], axis=1) * focal
        else:
            essential = _skew(translation / norm) @ rotation
            eb, ea = a @ essential.T, b @ essential  # E a and Eᵀ b per track
            numerator = np.einsum("ni,ni->n", b, eb) ** 2
            denominator = eb[:, 0] ** 2 + eb[:, 1] ** 2 + ea[:, 0] ** 2 + ea[:, 1] ** 2
            error = np.sqrt(numerator / np.maximum(denominator, 1e-18)) * focal
        ratio[t] = float((error < threshold_px).mean())
    if n_frames > 1:
        ratio[0] = ratio[1]
    return ratio


PROJECTION_ROWS = 4096
"""Map points :func:`reprojection_px` projects into every frame at once (issue 12: all N × T at
once held several (N, T, 3) float64 arrays; N grows with T)."""


def reprojection_px(world_to_cam: np.ndarray, points: np.ndarray, xy: np.ndarray, bg_seen: np.ndarray,
                    focal: float) -> np.ndarray:
    """(T,) median reprojection error (pixels) of the finite map points (N, 3) each frame sees; NaN if none."""
    out = np.full(xy.shape[1], np.nan)
    have = np.flatnonzero(np.isfinite(points).all(axis=1))
    if not len(have):
        return out
    error = np.empty((len(have), xy.shape[1]))
    for start in range(0, len(have), PROJECTION_ROWS):
        rows = have[start:start + PROJECTION_ROWS]
        camera = np.einsum("tij,nj->nti", world_to_cam[:, :, :3], points[rows]) + world_to_cam[None, :, :, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            block = np.linalg.norm(camera[..., :2] / camera[..., 2:] - xy[rows], axis=-1) * focal
        error[start:start + len(rows)] = np.where(bg_seen[rows], block, np.nan)
    for t in np.flatnonzero(np.isfinite(error).any(axis=0)):
        out[t] = float(np.nanmedian(error[:, t]))
    return out


def height_drift(world_to_cam: np.ndarray, plane: tuple[np.ndarray, float] | None) -> np.ndarray:
    """(T,) |h_t / median(h) − 1| of each camera's height h_t above the ground plane; NaN without a plane.

    world_to_cam: (T, 3, 4); plane: (unit normal (3,), offset), n · X + offset = 0 in the world,
    the side the cameras are on positive. A camera carried by a walking person keeps its height
    to a few centimetres, and a right pose chain says so (dev walk and follow cameras that
    pipeline_fidelity gets right: within 4 % of their median); a chain that drifts in scale or
    bends its rotation climbs out of the ground or sinks into it (follow seeds 110, 115, 120
    and 130: 23–80 % off in places, where the truth stays within 2 %).
    """
    if plane is None:
        return np.full(len(world_to_cam), np.nan)
    normal, offset = plane
    centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
    heights = centres @ np.asarray(normal, np.float64) + float(offset)
    median = float(np.median(heights))
    if not (np.isfinite(median) and median > 0):
        return np.full(len(world_to_cam), np.nan)
    return np.abs(heights / median - 1.0)


def path_kinks(world_to_cam: np.ndarray, times_s: np.ndarray, max_turn_deg: float, max_speed_ratio: float,
               min_speed: float = 0.0, min_speed_frac: float = 0.25) -> np.ndarray:
    """(T,) bool frames at an implausible kink of the camera path.

    world_to_cam: (T, 3, 4); times_s: (T,). A frame is flagged when the path's direction of
    travel turns by more than ``max_turn_deg`` there (both neighbouring steps at least
    ``min_speed_frac`` of the clip's median speed and ``min_speed``, world units per second:
    a camera standing still only shakes), or when a step it ends or starts is more than
    ``max_speed_ratio`` times faster or slower than the median of the (up to four) steps
    around it (that median as fast as the same floor). Sampled frames 1/6 s apart, a walking
    camera's true path turns by at most 28° a step on the pipeline_fidelity dev scenes and
    keeps its speed within a factor 2 of its neighbours'; a chain that broke walks backwards
    for a few steps (follow seed 140: 150–168°) or jumps (4.9 m/s amid 1 m/s).
    """
    n_frames = len(world_to_cam)
    kinks = np.zeros(n_frames, bool)
    if n_frames < 3:
        return kinks
    centres = -np.einsum("tji,tj->ti", world_to_cam[:, :, :3], world_to_cam[:, :, 3])
    steps = np.diff(centres, axis=0)  # (T − 1, 3)
    dt = np.diff(np.asarray(times_s, np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.linalg.norm(steps, axis=1) / dt
    typical = float(np.nanmedian(speed)) if np.isfinite(speed).any() else 0.0
    floor = max(min_speed_frac * typical, min_speed)
    if not floor > 0:
        return kinks
    moving = speed >= floor
    cos = np.einsum("ti,ti->t", steps[:-1], steps[1:]) / np.maximum(
        np.linalg.norm(steps[:-1], axis=1) * np.linalg.norm(steps[1:], axis=1), 1e-300)
    turned = (cos < np.cos(np.radians(max_turn_deg))) & moving[:-1] & moving[1:]
    kinks[1:-1] |= turned
    for step in range(len(speed)):
        around = np.concatenate([speed[max(0, step - 2):step], speed[step + 1:step + 3]])
        reference = float(np.median(around)) if len(around) else np.nan
        if not reference >= floor:
            continue
        if speed[step] > max_speed_ratio * reference or speed[step] < reference / max_speed_ratio:
            kinks[[step, step + 1]] = True
    return kinks


def build_camera_quality(world_to_cam: np.ndarray, points: np.ndarray, xy: np.ndarray, bg_seen: np.ndarray,
                         focal: float, motion: str, frozen: np.ndarray, restarted: np.ndarray, scale_source: str,
                         threshold_px: float, max_reprojection_px: float, min_inlier_ratio: float,
                         height_drift_rel: np.ndarray | None = None,
                         max_height_drift: float | None = None,
                         kinks: np.ndarray | None = None) -> CameraQuality:
    """The camera's quality record.

    A frame is ok when its pose was measured (not ``frozen``), it does not start a restarted
    map (``restarted``: its scale is a guess, so no question may span it), at least
    ``min_inlier_ratio`` of its tracks agree with the pose (where measured), its map
    points reproject within ``max_reprojection_px`` (where it sees any) and, with
    ``max_height_drift`` set, its camera height is within that fraction of the clip's median
    (``height_drift_rel`` (T,), :func:`height_drift`; NaN: not measured, kept) and it is not
    at a kink of the path (``kinks`` (T,) bool, :func:`path_kinks`, or a turn the step's two-view
    geometry contradicts; None: not checked).
    """
    inliers = pose_inlier_ratio(world_to_cam, xy, bg_seen, focal, threshold_px)
    errors = reprojection_px(world_to_cam, points, xy, bg_seen, focal)
    with np.errstate(invalid="ignore"):
        frame_ok = ~frozen & ~restarted & ~(inliers < min_inlier_ratio) & ~(errors > max_reprojection_px)
        if max_height_drift is not None and height_drift_rel is not None:
            frame_ok &= ~(np.asarray(height_drift_rel, np.float64) > max_height_drift)
    if kinks is not None:
        frame_ok &= ~np.asarray(kinks, bool)
    return CameraQuality(inlier_ratio=inliers, reprojection_px=errors, frozen=frozen, frame_ok=frame_ok,
                         motion=motion, scale_source=scale_source, score=camera_score(frame_ok, scale_source))
