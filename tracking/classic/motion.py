"""Camera-compensated motion of the classic tracker (steps 1–3 of :mod:`recon4d.tracking.classic.tracker`).

Owns the working resolution (:func:`working_size`, :func:`to_working`), LK corner
matches, the background planes (RANSAC homographies) and their displacement fields,
dense DIS flow with its forward–backward test, the residual motion and its robust
threshold: :func:`pair_motion` for one frame pair, :func:`compute_motion` (a
:class:`MotionField`) for a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.types import ProgressFn

__all__ = [
    "MotionField",
    "PairMotion",
    "compute_motion",
    "consistent_flow",
    "corner_matches",
    "fit_background_planes",
    "homography_flow",
    "pair_motion",
    "residual_flow",
    "robust_threshold",
    "textured",
    "to_working",
    "track_points",
    "working_size",
]


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most ``long_side`` (never enlarged)."""
    scale = min(1.0, long_side / max(width, height))
    return max(8, round(width * scale)), max(8, round(height * scale))


def to_working(frames: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) uint8 RGB → RGB (T, h, w, 3) and grey (T, h, w) uint8 at ``size`` = (w, h)."""
    images = np.empty((len(frames), size[1], size[0], 3), np.uint8)
    gray = np.empty((len(frames), size[1], size[0]), np.uint8)
    for t, frame in enumerate(frames):
        images[t] = frame if frame.shape[1::-1] == size else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        gray[t] = cv2.cvtColor(images[t], cv2.COLOR_RGB2GRAY)
    return images, gray


def robust_threshold(residual: np.ndarray, sigma: float, floor: float) -> float:
    """max(floor, median + sigma · 1.4826 · MAD) of a residual-flow magnitude map."""
    median = float(np.median(residual))
    mad = float(np.median(np.abs(residual - median)))
    return max(float(floor), median + sigma * 1.4826 * mad)


_LK = dict(winSize=(21, 21), maxLevel=3,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))


def track_points(gray_a: np.ndarray, gray_b: np.ndarray, points_a: np.ndarray,
                 fb_max_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """LK-track (N, 2) float32 points from ``gray_a`` to ``gray_b``; keep forward–backward consistent ones.

    Returns the kept points in both frames, (M, 2) float32 each.
    """
    if len(points_a) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    start = np.ascontiguousarray(points_a, np.float32).reshape(-1, 1, 2)
    forward, ok_f, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, start, None, **_LK)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, forward, None, **_LK)
    error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    keep = (ok_f.ravel() == 1) & (ok_b.ravel() == 1) & (error < fb_max_px)
    return start.reshape(-1, 2)[keep], forward.reshape(-1, 2)[keep]


def corner_matches(gray_a: np.ndarray, gray_b: np.ndarray, max_corners: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """Shi–Tomasi corners of ``gray_a`` LK-tracked into ``gray_b``: two (M, 2) float32 arrays."""
    min_distance = max(3, round(max(gray_a.shape) / 80))
    corners = cv2.goodFeaturesToTrack(gray_a, max_corners, 0.005, min_distance, blockSize=7)
    if corners is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    return track_points(gray_a, gray_b, corners.reshape(-1, 2))


def reprojection_error(homography: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    mapped = cv2.perspectiveTransform(points_a.reshape(-1, 1, 2).astype(np.float64), homography)
    return np.linalg.norm(mapped.reshape(-1, 2) - points_b, axis=1)


def fit_background_planes(points_a: np.ndarray, points_b: np.ndarray, image_size: tuple[int, int],
                          config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[np.ndarray]:
    """Homographies (3, 3) mapping frame a to frame b for the background, dominant first.

    points_a, points_b: (N, 2) matched pixels. With fewer than 8 matches the background is
    taken as still (identity). Extra planes are fitted only when the dominant one moves
    (median displacement over 0.5 px: a still camera has no parallax) and are kept only
    when their inliers are ≥ ``plane_min_fraction`` of the matches and spread over ≥
    ``plane_min_spread`` of the image, so a compact moving object never becomes background.
    """
    if len(points_a) < 8:
        return [np.eye(3)]
    homography, _ = cv2.findHomography(points_a, points_b, cv2.RANSAC, config.ransac_px,
                                       maxIters=2000, confidence=0.995)
    if homography is None:
        return [np.eye(3)]
    planes = [homography]
    error = reprojection_error(homography, points_a, points_b)
    inliers = error < config.ransac_px
    if not inliers.any() or np.median(np.linalg.norm(points_b[inliers] - points_a[inliers], axis=1)) < 0.5:
        return planes
    width, height = image_size
    need = max(12, int(np.ceil(config.plane_min_fraction * len(points_a))))
    while len(planes) < config.max_planes:
        rest = np.flatnonzero(error >= config.ransac_px)
        if len(rest) < need:
            break
        candidate, _ = cv2.findHomography(points_a[rest], points_b[rest], cv2.RANSAC, config.ransac_px,
                                          maxIters=2000, confidence=0.995)
        if candidate is None:
            break
        candidate_error = reprojection_error(candidate, points_a, points_b)
        fits = rest[candidate_error[rest] < config.ransac_px]
        if len(fits) < need:
            break
        spread = np.prod(points_a[fits].max(axis=0) - points_a[fits].min(axis=0)) / (width * height)
        if spread < config.plane_min_spread:
            break
        planes.append(candidate)
        error = np.minimum(error, candidate_error)
    return planes


def homography_flow(homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 displacement H·p − p of every pixel p = (x, y) for ``size`` = (w, h)."""
    width, height = size
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), -1)
    mapped = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography.astype(np.float64))
    return mapped.reshape(height, width, 2) - grid


def residual_flow(flow: np.ndarray, planes: list[np.ndarray]) -> np.ndarray:
    """(h, w) float32 magnitude of ``flow`` (h, w, 2) minus the nearest plane's displacement.

    Pixels the dominant plane maps outside the frame have no counterpart to compare with
    and get residual 0.
    """
    height, width = flow.shape[:2]
    residual = None
    for index, plane in enumerate(planes):
        field = homography_flow(plane, (width, height))
        magnitude = np.linalg.norm(flow - field, axis=-1)
        residual = magnitude if residual is None else np.minimum(residual, magnitude)
        if index == 0:
            xs = np.arange(width, dtype=np.float32)[None] + field[..., 0]
            ys = np.arange(height, dtype=np.float32)[:, None] + field[..., 1]
            outside = (xs < 0) | (xs > width - 1) | (ys < 0) | (ys > height - 1)
    residual[outside] = 0.0
    return residual.astype(np.float32)


@dataclass(frozen=True, eq=False)
class MotionField:
    """Camera-compensated motion of a clip at the working resolution.

    forward_flow:  (T−1, h, w, 2) float32 dense flow t → t+1.
    backward_flow: (T−1, h, w, 2) float32 dense flow t+1 → t.
    planes:        T−1 lists of (3, 3) background homographies t → t+1, dominant first.
    residual:      (T, h, w) float32 residual flow magnitude, px per sampled-frame step
                   (0 where the frame has no texture).
    moving:        (T, h, w) bool residual above the frame's robust threshold.
    thresholds:    (T,) float32 the thresholds used.
    moving_points: T arrays (N_t, 2) float32: tracked corners of frame t that no background
                   plane explains (sparse evidence backing the dense residual).
    """

    forward_flow: np.ndarray
    backward_flow: np.ndarray
    planes: list
    residual: np.ndarray
    moving: np.ndarray
    thresholds: np.ndarray
    moving_points: list


def _dis() -> cv2.DISOpticalFlow:
    """DIS flow at full working resolution with patches every 2 px: the preset's
    half-resolution finest scale and sparser patches blur small movers into their neighbours."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    dis.setPatchStride(2)
    return dis


def consistent_flow(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose flow a → b is undone by the flow b → a (not occluded in b).

    The usual forward–backward test: |f(p) + b(p + f(p))|² < 0.01 (|f|² + |b|²) + 0.5 px².
    Background that a mover covers in b fails it, so its residual is not counted as motion.
    """
    height, width = flow_ab.shape[:2]
    map_x = (np.arange(width, dtype=np.float32)[None] + flow_ab[..., 0]).astype(np.float32)
    map_y = (np.arange(height, dtype=np.float32)[:, None] + flow_ab[..., 1]).astype(np.float32)
    back = cv2.remap(flow_ba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mismatch = np.sum((flow_ab + back) ** 2, axis=-1)
    return mismatch < 0.01 * (np.sum(flow_ab ** 2, axis=-1) + np.sum(back ** 2, axis=-1)) + 0.5


def textured(gray: np.ndarray, min_texture: float) -> np.ndarray:
    """(h, w) bool: pixels whose 5 × 5 mean Sobel gradient magnitude reaches ``min_texture``.

    Flow is not observable on blank surfaces (a white table, a clear sky): dense flow
    fills them in from their surroundings, so a hand moving over a table would paint the
    whole table as moving. Their residual is not trusted; a mover's blank interior is
    recovered by the closing and hole filling of its mask.
    """
    gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return cv2.blur(gradient, (5, 5)) >= min_texture


@dataclass(frozen=True, eq=False)
class PairMotion:
    """Motion between frames a and b (working resolution).

    flow_ab, flow_ba: (h, w, 2) float32 dense flows.
    planes:           background homographies a → b, dominant first.
    residual:         (2, h, w) float32 residual motion of frame a (against b) and of b (against a).
    consistent:       (2, h, w) bool whether those flows pass :func:`consistent_flow`.
    points_a, points_b: (N, 2) float32 LK-tracked corners in a and b.
    point_residual:   (N,) distance of each corner's motion from the nearest plane's, pixels.
    """

    flow_ab: np.ndarray
    flow_ba: np.ndarray
    planes: list
    residual: np.ndarray
    consistent: np.ndarray
    points_a: np.ndarray
    points_b: np.ndarray
    point_residual: np.ndarray


def pair_motion(gray_a: np.ndarray, gray_b: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                dis: cv2.DISOpticalFlow | None = None) -> PairMotion:
    """Background planes, dense flows and residual motion between two (h, w) uint8 grey frames."""
    dis = dis or _dis()
    height, width = gray_a.shape
    points_a, points_b = corner_matches(gray_a, gray_b)
    planes = fit_background_planes(points_a, points_b, (width, height), config)
    point_residual = (np.min([reprojection_error(plane, points_a, points_b) for plane in planes], axis=0)
                      if len(points_a) else np.zeros(0))
    flow_ab = dis.calc(gray_a, gray_b, None)
    flow_ba = dis.calc(gray_b, gray_a, None)
    residual = np.stack([residual_flow(flow_ab, planes),
                         residual_flow(flow_ba, [np.linalg.inv(plane) for plane in planes])])
    consistent = np.stack([consistent_flow(flow_ab, flow_ba), consistent_flow(flow_ba, flow_ab)])
    return PairMotion(flow_ab, flow_ba, planes, residual, consistent, points_a, points_b, point_residual)


def compute_motion(gray: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig(),
                   progress: ProgressFn | None = None) -> MotionField:
    """Background planes, dense flow and residual-motion masks of (T, h, w) uint8 grey frames.

    The residual of frame t combines its residuals against frames t − 1 and t + 1: the mean
    over the directions whose flow is forward–backward consistent, so background a mover
    covers in one neighbour (an occlusion) takes the other neighbour's word; where neither
    is consistent (a fast mover the flow loses, or an occlusion on both sides) the plain
    mean. Pixels without texture (:func:`textured`) have residual 0, and each frame's
    threshold (:func:`robust_threshold`) uses the statistics of its textured pixels.
    Corners whose LK motion misses every background plane by more than that threshold are
    the frame's ``moving_points``. ``progress(done, T − 1)`` is called after each frame
    pair; a single frame has no motion.
    """
    n_frames, height, width = gray.shape
    n_pairs = max(n_frames - 1, 0)
    forward = np.zeros((n_pairs, height, width, 2), np.float32)
    backward = np.zeros((n_pairs, height, width, 2), np.float32)
    plain = np.zeros((n_frames, height, width), np.float32)
    trusted = np.zeros((n_frames, height, width), np.float32)
    n_trusted = np.zeros((n_frames, height, width), np.float32)
    n_sides = np.zeros(n_frames, np.float32)
    pairs = []  # only the sparse parts: the dense ones are accumulated as we go
    dis = _dis()
    for t in range(n_pairs):
        pair = pair_motion(gray[t], gray[t + 1], config, dis)
        pairs.append((pair.planes, pair.points_a, pair.points_b, pair.point_residual))
        forward[t], backward[t] = pair.flow_ab, pair.flow_ba
        for side, frame in enumerate((t, t + 1)):
            plain[frame] += pair.residual[side]
            trusted[frame] += np.where(pair.consistent[side], pair.residual[side], 0.0)
            n_trusted[frame] += pair.consistent[side]
            n_sides[frame] += 1
        if progress is not None:
            progress(t + 1, n_pairs)
    residual = np.where(n_trusted > 0, trusted / np.maximum(n_trusted, 1),
                        plain / np.maximum(n_sides, 1)[:, None, None]).astype(np.float32)
    observable = np.stack([textured(frame, config.min_texture) for frame in gray]) if n_frames else residual > 0
    residual[~observable] = 0.0
    thresholds = np.array([robust_threshold(r[seen] if seen.any() else r, config.residual_sigma,
                                            config.residual_floor_px) for r, seen in zip(residual, observable)],
                          np.float32).reshape(n_frames)
    moving = residual > thresholds[:, None, None] if n_pairs else np.zeros(residual.shape, bool)
    moving_points = [[] for _ in range(n_frames)]
    for t, (_, points_a, points_b, point_residual) in enumerate(pairs):
        moving_points[t].append(points_a[point_residual > thresholds[t]])
        moving_points[t + 1].append(points_b[point_residual > thresholds[t + 1]])
    moving_points = [np.concatenate(points) if points else np.zeros((0, 2), np.float32) for points in moving_points]
    return MotionField(forward, backward, [planes for planes, *_ in pairs], residual, moving, thresholds,
                       moving_points)
