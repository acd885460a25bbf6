"""KLT feature tracks over a clip, labelled by the image region each track was born in.

Shi–Tomasi corners (``cv2.goodFeaturesToTrack``) followed from frame to frame by pyramidal
Lucas–Kanade (``cv2.calcOpticalFlowPyrLK``) with a forward–backward check, replenished every
frame where tracks are missing. A ``regions(t)`` callback gives an (H, W) int16 map per
frame: 0 background, k + 1 object k, −1 a no-feature zone (the ring a dilated object mask adds
around the object, the frame border). A track keeps the label of the region it was born in
and ends as soon as it lands in a pixel with another label, so background tracks never slide
onto a moving object and object tracks never leave their object. When the frame moves by more
than ``shift_guess_px`` (a camera that turns fast), Lucas–Kanade starts from the frame's global
shift (a count of the background pixels each shift explains, or phase correlation), then from the last step's, and only then from where the point was.

    track_features(frames, regions, config) -> FeatureTracks

Pixel coordinates follow the synthetic-scene convention: pixel (row i, column j) covers
[j, j+1) × [i, i+1), so its centre is (j + 0.5, i + 0.5) (OpenCV puts it at (j, i)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from recon4d.checks import check_shape
from recon4d.shift_search import refined_shift
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
    shift_guess_px: float | None = None
    """Start Lucas–Kanade at the frame's global shift (phase correlation at 1/``guess_scale``
    size) when that shift is at least this many pixels, the points lost so at the last step's
    median shift, and the points still lost from where they were; None: always start where the
    point was. A camera that
    turns 5–12° between sampled frames (the follow scenes of ``pipeline_fidelity``) moves the
    image by 45–120 px, where the pyramid alone lost 50–80 % of the tracks at every frame or slid
    them onto a neighbouring brick of a repeated texture."""
    guess_scale: int = 4
    """Down-sampling of the frames the global shift is measured on (it is only a start for
    Lucas–Kanade, and a repeated fine texture blurs away there)."""
    min_shift_response: float = 0.05
    """Phase-correlation peak below which the global shift is not trusted (no start is given)."""
    count_shift: bool = False
    """Measure the global shift by counting the background's textured pixels each shift explains
    (:func:`recon4d.shift_search.refined_shift`, objects' pixels left out) instead of by phase
    correlation, when its best shift explains ``count_margin`` more of them than shift 0 does. A
    follow camera turns 10–15° a step while its subject stays put in the image: on follow seeds
    110, 115, 120 (GT masks) phase correlation answered within 16 px of the true shift on 3–26 %
    of the steps, the count on 71–97 %."""
    count_tolerance: float = 6.0
    """Grey levels within which a pixel counts as explained (12 let shift 0 explain most of a blurred
    frame: 10–48 % of the steps right)."""
    count_margin: float = 0.01
    """Share of the background's textured pixels by which the best shift must beat shift 0 (a still
    camera keeps its old start; right shifts of 100–150 px beat 0 by only 0.01–0.03)."""


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


def _phase_shift(a: np.ndarray, b: np.ndarray, min_response: float) -> np.ndarray | None:
    """(2,) shift (dx, dy) of float32 image ``b`` against ``a`` (both (h, w)) by Hanning-windowed
    phase correlation, or None when its peak is under ``min_response``."""
    height, width = a.shape
    (dx, dy), response = cv2.phaseCorrelate(a, b, cv2.createHanningWindow((width, height), cv2.CV_32F))
    return np.array([dx, dy]) if response >= min_response and math.isfinite(dx + dy) else None


def global_shift(prev: np.ndarray, cur: np.ndarray, config: TrackerConfig,
                 background: np.ndarray | None = None) -> np.ndarray | None:
    """(2,) float32 pixel shift (dx, dy) that moves most of ``prev`` onto ``cur`` (both (H, W)
    uint8), or None when it is off, not measured or under ``shift_guess_px`` (Lucas–Kanade needs
    no start there). ``background``: (H, W) bool pixels of ``prev`` the count may use (None: all).

    With ``count_shift``, the best shift of :func:`recon4d.shift_search.refined_shift` on the
    background when it beats shift 0 by ``count_margin``. Otherwise (or when it does not), phase
    correlation at 1/``guess_scale`` size of the whole frames and of their left and right
    halves, the median of those measured: a window weighs the centre of the image most, where
    a followed subject that stays put in the image stands, and the halves' windows weigh it
    least (a 24 px still patch at the centre of a 320 px frame held the whole frame's shift at 0).
    """
    if config.shift_guess_px is None:
        return None
    if config.count_shift:
        best, score, still = refined_shift(prev, cur, tolerance=config.count_tolerance, counted=background)
        if score >= still + config.count_margin:
            shift = np.array(best, np.float32)
            return shift if np.linalg.norm(shift) >= config.shift_guess_px else None
    return phase_shift(prev, cur, config)


def phase_shift(prev: np.ndarray, cur: np.ndarray, config: TrackerConfig) -> np.ndarray | None:
    """:func:`global_shift` by phase correlation alone (see there), or None."""
    if config.shift_guess_px is None:
        return None
    height, width = prev.shape
    size = (max(16, width // config.guess_scale), max(8, height // config.guess_scale))
    a, b = (cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32) for image in (prev, cur))
    half = size[0] // 2
    parts = [(a, b), (a[:, :half].copy(), b[:, :half].copy()), (a[:, half:2 * half].copy(), b[:, half:2 * half].copy())]
    shifts = [shift for shift in (_phase_shift(x, y, config.min_shift_response) for x, y in parts) if shift is not None]
    if not shifts:
        return None
    shift = np.median(shifts, axis=0) * np.array([width / size[0], height / size[1]])
    return shift.astype(np.float32) if np.linalg.norm(shift) >= config.shift_guess_px else None


def _lucas_kanade(prev, cur, points, guess, config: TrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Lucas–Kanade forward (from ``guess`` (n, 2), or from the points where None) and back:
    new points (n, 2) and a (n,) bool of those that came back within ``fb_max_px``."""
    lk = dict(winSize=(config.win_size, config.win_size), maxLevel=config.max_level,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
              minEigThreshold=config.min_eigen)
    start = points.reshape(-1, 1, 2)
    if guess is None:
        ahead, ok_ahead, _ = cv2.calcOpticalFlowPyrLK(prev, cur, start, None, **lk)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(cur, prev, ahead, None, **lk)
    else:
        ahead = np.ascontiguousarray(guess.reshape(-1, 1, 2), np.float32)
        ahead, ok_ahead, _ = cv2.calcOpticalFlowPyrLK(prev, cur, start, ahead, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
                                                      **lk)
        back = ahead - (guess - points).reshape(-1, 1, 2)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(cur, prev, ahead, back.astype(np.float32),
                                                    flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
    ahead, back = ahead.reshape(-1, 2), back.reshape(-1, 2)
    fb_error = np.linalg.norm(back - points, axis=1)
    kept = ok_ahead.ravel().astype(bool) & ok_back.ravel().astype(bool) & (fb_error < config.fb_max_px)
    return ahead, kept & np.isfinite(ahead).all(axis=1)


def _follow(prev: np.ndarray, cur: np.ndarray, points: np.ndarray, config: TrackerConfig,
            starts: list[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Lucas–Kanade forward and back: new points (n, 2) and a (n,) bool of the kept ones.

    The points start shifted by each of ``starts`` ((2,) shifts: :func:`global_shift`, the last
    step's) in turn, those still lost, and finally where they were (things that do not move with
    most of the frame: a followed subject, the near ground). With ``count_shift``, the starts are
    first tried on all the points and taken in the order of how many points each keeps (a wrong
    start keeps few past the forward–backward check: the check the count's shift gets).
    """
    if len(points) == 0:
        return points, np.zeros(0, bool)
    ahead, kept = points.copy(), np.zeros(len(points), bool)
    if config.count_shift and len(starts) > 1:
        tried = [_lucas_kanade(prev, cur, points, points + shift, config) for shift in starts]
        for index in np.argsort([-found.sum() for _, found in tried], kind="stable"):
            lost = ~kept
            ahead[lost], kept[lost] = tried[index][0][lost], tried[index][1][lost]
        starts = []
    for shift in [*starts, None]:
        lost = np.flatnonzero(~kept)
        if len(lost) == 0:
            break
        guess = None if shift is None else points[lost] + shift
        ahead[lost], kept[lost] = _lucas_kanade(prev, cur, points[lost], guess, config)
    return ahead, kept


def _step_shift(before: np.ndarray, after: np.ndarray, config: TrackerConfig) -> np.ndarray | None:
    """Median displacement (2,) of tracks followed from ``before`` to ``after`` (n, 2): the next
    step's second start (a camera turns smoothly), or None when off or under ``shift_guess_px``."""
    if config.shift_guess_px is None or len(before) < 8:
        return None
    shift = np.median(after - before, axis=0)
    return shift.astype(np.float32) if np.linalg.norm(shift) >= config.shift_guess_px else None


def _prepared(frames, regions: Callable[[int], np.ndarray], config: TrackerConfig):
    """Frame t's grey image, (H, W) int16 regions and the (2,) starts from frame t − 1
    (:func:`global_shift`, and with ``count_shift`` :func:`phase_shift` too; none for frame 0), in order: what :func:`track_features` needs of a frame before its corners, none of
    it depending on the tracks, so it is made on the reader thread."""
    prev, prev_region = None, None
    for t in range(len(frames)):
        gray, region = to_gray(frames[t]), np.asarray(regions(t), np.int16)
        starts = [] if prev is None else [global_shift(prev, gray, config, prev_region == BACKGROUND)]
        if starts and starts[0] is not None and config.count_shift:  # phase correlation's too, ranked in _follow
            starts.append(phase_shift(prev, gray, config))
        yield gray, region, [shift for shift in starts if shift is not None]
        prev, prev_region = gray, region


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
    clip's frames are), turned grey and given its regions and global shift (:func:`global_shift`)
    in a worker thread while this one follows the corners (:func:`recon4d.workers.read_ahead`; the
    same frames, in order).
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
    prev, last_shift = None, None
    for t, (gray, region, frame_starts) in enumerate(read_ahead(_prepared(frames, regions, config),
                                                                1 if worker_threads(0) > 1 else 0)):
        if prev is not None and len(points):
            starts = [*frame_starts, *([] if last_shift is None else [last_shift])]
            before = points
            points, kept = _follow(prev, gray, points, config, starts)
            kept &= _labels_at(region, points) == live_labels
            last_shift = _step_shift(before[kept], points[kept], config)
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
