"""KLT feature tracks over a clip, labelled by the image region each track was born in.

Shi–Tomasi corners (``cv2.goodFeaturesToTrack``) followed from frame to frame by pyramidal
Lucas–Kanade (``cv2.calcOpticalFlowPyrLK``) with a forward–backward check, replenished every
frame where tracks are missing. A ``regions(t)`` callback gives an (H, W) int16 map per
frame: 0 background, k + 1 object k, −1 a no-feature zone (the ring a dilated object mask adds
around the object, the frame border). A track keeps the label of the region it was born in
and ends as soon as it lands in a pixel with another label, so background tracks never slide
onto a moving object and object tracks never leave their object.

    track_features(frames, regions, config) -> FeatureTracks

Pixel coordinates follow the synthetic-scene convention: pixel (row i, column j) covers
[j, j+1) × [i, i+1), so its centre is (j + 0.5, i + 0.5) (OpenCV puts it at (j, i)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from recon4d.checks import check_shape
from recon4d.workers import read_ahead, worker_threads

BACKGROUND = 0
NO_FEATURES = -1


@dataclass(frozen=True)
class TrackerConfig:
    """How corners are found and followed."""

    max_corners: int = 1200
    """Live tracks aimed for in every frame (background and objects together)."""
    quality_level: float = 0.005
    """Shi–Tomasi quality relative to the strongest corner of the frame."""
    min_distance_frac: float = 0.012
    """Minimum spacing of corners, as a fraction of the longer image side (≥ 4 px)."""
    block_size: int = 7
    """Side of the corner-response window, pixels."""
    win_size: int = 21
    """Side of the Lucas–Kanade window, pixels."""
    max_level: int = 3
    """Pyramid levels above the full image (3 follows motions of ~ 2³ · win_size px)."""
    fb_max_px: float = 1.0
    """Forward–backward error above which a tracked point is dropped, pixels."""
    min_eigen: float = 1e-4
    """Lucas–Kanade minimum eigenvalue threshold (textureless windows fail)."""


@dataclass(frozen=True, eq=False)
class FeatureTracks:
    """Feature tracks of a clip.

    xy:    (N, T, 2) float32 pixel coordinates (pixel centres at j + 0.5), NaN where the
           track is not seen. A track is seen over one contiguous span of frames.
    label: (N,) int16 region the track was born in: 0 background, k + 1 object k.
    """

    xy: np.ndarray
    label: np.ndarray

    @property
    def seen(self) -> np.ndarray:
        """(N, T) bool."""
        return np.isfinite(self.xy[..., 0])

    @property
    def n_tracks(self) -> int:
        return int(self.xy.shape[0])


def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) uint8 luma."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _free_mask(regions: np.ndarray, points: np.ndarray, spacing: float) -> np.ndarray:
    """uint8 detection mask: allowed regions minus a neighbourhood of every live point.

    Occupancy is marked on a grid of ``spacing``-sized cells, grown by one cell and scaled back
    to the image, which avoids drawing one circle per point.
    """
    height, width = regions.shape
    allowed = (regions >= 0).astype(np.uint8)
    if len(points):
        cell = max(1, int(spacing))
        grid = np.zeros(((height + cell - 1) // cell, (width + cell - 1) // cell), np.uint8)
        cols = np.clip((points[:, 0] // cell).astype(np.int64), 0, grid.shape[1] - 1)
        rows = np.clip((points[:, 1] // cell).astype(np.int64), 0, grid.shape[0] - 1)
        grid[rows, cols] = 1
        grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
        occupied = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)[:height, :width]
        allowed &= 1 - occupied
    return allowed


def _labels_at(regions: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Region label under (n, 2) OpenCV-convention points; −1 outside the image."""
    height, width = regions.shape
    cols = np.rint(points[:, 0]).astype(np.int64)
    rows = np.rint(points[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    labels = np.full(len(points), NO_FEATURES, np.int16)
    labels[inside] = regions[rows[inside], cols[inside]]
    return labels


def _detect(gray: np.ndarray, mask: np.ndarray, n_wanted: int, spacing: float, config: TrackerConfig) -> np.ndarray:
    """Up to ``n_wanted`` corners (n, 2) float32, OpenCV convention, where ``mask`` is set."""
    if n_wanted <= 0 or not mask.any():
        return np.zeros((0, 2), np.float32)
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=int(n_wanted), qualityLevel=config.quality_level,
                                      minDistance=spacing, mask=mask, blockSize=config.block_size)
    if corners is None:
        return np.zeros((0, 2), np.float32)
    return corners.reshape(-1, 2).astype(np.float32)


def _follow(prev: np.ndarray, cur: np.ndarray, points: np.ndarray,
            config: TrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Lucas–Kanade forward and back: new points (n, 2) and a (n,) bool of the kept ones."""
    if len(points) == 0:
        return points, np.zeros(0, bool)
    lk = dict(winSize=(config.win_size, config.win_size), maxLevel=config.max_level,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
              minEigThreshold=config.min_eigen)
    start = points.reshape(-1, 1, 2)
    ahead, ok_ahead, _ = cv2.calcOpticalFlowPyrLK(prev, cur, start, None, **lk)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(cur, prev, ahead, None, **lk)
    ahead, back = ahead.reshape(-1, 2), back.reshape(-1, 2)
    fb_error = np.linalg.norm(back - points, axis=1)
    kept = ok_ahead.ravel().astype(bool) & ok_back.ravel().astype(bool) & (fb_error < config.fb_max_px)
    return ahead, kept & np.isfinite(ahead).all(axis=1)


def track_features(
    frames: np.ndarray,
    regions: Callable[[int], np.ndarray],
    config: TrackerConfig = TrackerConfig(),
    progress: Callable[[int], None] | None = None,
) -> FeatureTracks:
    """Follow corners through ``frames``.

    frames: (T, H, W, 3) uint8 RGB. regions(t): (H, W) int16 label map of frame t (see the
    module docstring). ``progress(t)`` is called after frame t. Returns :class:`FeatureTracks`.
    Works frame to frame, so only a few grey frames are held at a time; the (N, T, 2) output is
    assembled at the end. Where two CPUs are usable the next frame is read (decoded, when the
    clip's frames are), turned grey and given its regions in a worker thread while this one
    follows the corners (:func:`recon4d.workers.read_ahead`; the same frames, in order).
    """
    dims = check_shape("frames", frames, ("T", "H", "W", 3), dtype_kind="u")
    n_frames, height, width = dims["T"], dims["H"], dims["W"]
    spacing = max(4.0, config.min_distance_frac * max(height, width))
    seen_ids, seen_xy = [], []  # per frame: live track ids (n,) and their points (n, 2)
    labels: list[np.ndarray] = []
    n_tracks = 0
    ids = np.zeros(0, np.int64)
    points = np.zeros((0, 2), np.float32)
    live_labels = np.zeros(0, np.int16)
    prev = None
    inputs = ((to_gray(frames[t]), np.asarray(regions(t), np.int16)) for t in range(n_frames))
    for t, (gray, region) in enumerate(read_ahead(inputs, 1 if worker_threads(0) > 1 else 0)):
        if prev is not None and len(points):
            points, kept = _follow(prev, gray, points, config)
            kept &= _labels_at(region, points) == live_labels
            ids, points, live_labels = ids[kept], points[kept], live_labels[kept]
        new = _detect(gray, _free_mask(region, points, spacing), config.max_corners - len(points), spacing, config)
        new_labels = _labels_at(region, new)
        new = new[new_labels >= 0]
        new_labels = new_labels[new_labels >= 0]
        ids = np.concatenate([ids, n_tracks + np.arange(len(new))])
        points = np.concatenate([points, new])
        live_labels = np.concatenate([live_labels, new_labels])
        labels.append(new_labels)
        n_tracks += len(new)
        seen_ids.append(ids)
        seen_xy.append(points)
        prev = gray
        if progress is not None:
            progress(t)
    xy = np.full((n_tracks, n_frames, 2), np.nan, np.float32)
    for t in range(n_frames):
        xy[seen_ids[t], t] = seen_xy[t] + 0.5
    label = np.concatenate(labels) if labels else np.zeros(0, np.int16)
    return FeatureTracks(xy, label.astype(np.int16))
