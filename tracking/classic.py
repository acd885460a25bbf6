"""Weights-free tracker: moving-object discovery by camera-compensated motion segmentation.

The ``classic`` track backend (DESIGN §4). At a reduced working resolution (long side
``work_long_side``), for each pair of consecutive sampled frames:

1. Background motion: Shi–Tomasi corners tracked with pyramidal Lucas–Kanade (forward–
   backward checked) are fitted with a RANSAC homography, the dominant plane. When the
   camera moves, up to ``max_planes − 1`` further homographies are fitted to the corners
   left over, each kept only when its inliers are many and spread over the image (a
   second scene plane such as a wall, never a compact moving object).
2. Residual motion: dense DIS optical flow (full resolution, dense patches) minus the
   nearest plane's displacement field, in both directions. A frame's residual is the
   mean over its two neighbours of the directions whose flow passes the forward–backward
   test (background a mover covers is an occlusion, not motion); blank pixels, where
   flow is not observable, count as still.
3. Motion mask: residual above max(``residual_floor_px``, median + ``residual_sigma`` ·
   1.4826 · MAD over the frame's textured pixels), opened and closed with elliptic
   kernels, split into connected components; components under ``min_area_fraction`` of
   the frame are noise.
4. Tracks: each live track's mask is carried to the next frame by the median flow under
   it and matched to that frame's components (Hungarian on IoU, with centre proximity
   and, for movers that jump further than their size between sampled frames, colour
   histograms). A component holding two tracks' carried masks (movers that touch) is
   split between them. An unmatched track coasts on its median flow for up to
   ``max_coast`` frames while its colours stay put (an object that stops moving stays
   where it stopped; one that left is dropped), also backwards before its first
   detection; a lost track may be revived by a later component that looks like it, and
   fragments of one mover are joined afterwards. Tracks detected in too few frames
   (``min_frames``, ``min_frame_fraction``) or without moving corners to back their dense
   motion (``min_point_support``; dense flow errs on repetitive texture, sparse corner
   tracks rarely do) are dropped.
5. Masks at the clip frame size: the component with its holes filled, or its convex hull
   when that covers less than ``min_fill`` of its box (sparse motion); boxes are the
   masks' bounding boxes in source-video pixels.
6. Labels: a track is a "person" agent when person evidence covers at least
   ``person_min_fraction`` of its detected frames, else an "object" (non-agent).
   Evidence is OpenCV's HOG people detector overlapping its box where the installed
   OpenCV has one (``cv2.HOGDescriptor``, the 4.x wheels). OpenCV 5 no longer ships HOG
   in its main module; there the weights-free fallback is shape: a box at least
   ``person_min_aspect`` times taller than wide (upright people; a crouching person or a
   dog facing the camera fools it).

User boxes (``boxes`` option, ``--boxes file.json``) bypass discovery: each box is carried
forwards and backwards through the clip by LK tracks inside it (median translation, scale
from the median ratio of pairwise distances; points moving with the background are set
aside when enough others move differently), and its masks are the filled boxes.

Limits: movers that touch for the whole clip (a hand and the cup it holds) are one
object; a limb that moves apart from a still body can become a track of its own; a
person who barely moves is not found; with a moving camera, strong parallax
that no plane explains can make short-lived false movers (most are dropped as too brief).

    ClassicTracker.from_config({"min_frames": 3}, "cpu").track(clip) -> Tracks2D
    load_user_boxes("boxes.json") -> list[dict]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from recon4d.errors import Recon4dError
from recon4d.types import Clip, Tracks2D

__all__ = [
    "AGENT_CATEGORIES",
    "ClassicTracker",
    "ClassicTrackerConfig",
    "Detection",
    "MotionField",
    "PairMotion",
    "UserBoxesError",
    "appearance_changed",
    "associate",
    "background_homographies",
    "box_iou",
    "colour_histogram",
    "compute_motion",
    "consistent_flow",
    "corner_matches",
    "detect_moving_regions",
    "fill_mask",
    "fit_background_planes",
    "hog_available",
    "hog_people_detector",
    "homography_flow",
    "label_tracks",
    "load_user_boxes",
    "pair_motion",
    "person_evidence",
    "propagate_box",
    "residual_flow",
    "robust_threshold",
    "textured",
    "to_working",
    "track_points",
    "validate_user_boxes",
    "working_size",
]

ProgressFn = Callable[[int, int], None]

AGENT_CATEGORIES = frozenset({"person", "dog", "cat", "horse", "bird", "animal", "cow", "sheep"})
"""Categories whose user boxes default to ``is_agent=True``."""

_USER_BOX_KEYS = {"category", "is_agent", "box", "frame", "time_s"}
_PERSON_DETECTORS = ("auto", "hog", "shape", "none")


class UserBoxesError(Recon4dError, ValueError):
    """A user-box file or option is malformed; the message names the entry and the fix."""


@dataclass(frozen=True)
class ClassicTrackerConfig:
    """Settings of :class:`ClassicTracker`; pixel quantities are at the working resolution."""

    work_long_side: int = 384
    """Long side of the working resolution (frames are never enlarged)."""
    max_planes: int = 2
    """Background homographies per frame pair (1 = a single plane; more absorb parallax)."""
    plane_min_fraction: float = 0.15
    """An extra plane needs at least this fraction of the tracked corners as inliers..."""
    plane_min_spread: float = 0.2
    """...and their bounding box must cover at least this fraction of the frame."""
    ransac_px: float = 1.5
    """RANSAC inlier distance of the background homographies."""
    residual_sigma: float = 4.0
    """Motion threshold: median + residual_sigma · 1.4826 · MAD of the frame's residual flow..."""
    residual_floor_px: float = 1.0
    """...and never below this many pixels per sampled-frame step."""
    min_texture: float = 8.0
    """Pixels with less texture (mean Sobel magnitude over 5 × 5, grey levels) show no motion."""
    min_area_fraction: float = 0.001
    """Components (and tracks, by median area) smaller than this fraction of the frame are dropped."""
    close_fraction: float = 0.025
    """Diameter of the closing kernel as a fraction of the working long side."""
    min_frames: int = 3
    """Tracks detected (not coasted) in fewer frames than this..."""
    min_frame_fraction: float = 0.2
    """...or than this fraction of the clip's frames are dropped (flickering false movers)."""
    min_point_support: float = 0.3
    """...or whose masks hold moving corners in fewer than this fraction of detected frames."""
    max_coast: int = 4
    """Frames a track is carried on its median flow without a matching detection."""
    coast_max_changed: float = 0.2
    """A coasting track ends when more of its mask than this has changed colour since its
    nearest detection (see appearance_changed)."""
    colour_min_similarity: float = 0.7
    """Far-apart track and detection still match when their colour histograms are this alike..."""
    max_jump: float = 0.4
    """...and the jump is under this fraction of the image diagonal."""
    match_iou: float = 0.1
    """Least IoU of a predicted box and a component to match (centroid proximity also matches)."""
    min_fill: float = 0.35
    """Masks covering less of their box than this are replaced by their convex hull."""
    person_detector: str = "auto"
    """"hog" (needs cv2.HOGDescriptor), "shape", "auto" (hog or shape evidence; shape alone without hog) or "none"."""
    person_min_fraction: float = 0.3
    """Fraction of a track's detected frames with person evidence that makes it a person."""
    person_min_aspect: float = 1.8
    """Shape evidence: box height / width of an upright person."""
    hog_long_side: int = 640
    """Frames are resized to this long side for the HOG detector (its window is 64 × 128)."""
    hog_hit_threshold: float = -0.3
    """SVM score a HOG window needs; OpenCV's 0 misses most people in ordinary video (slim or
    side-on figures score -0.3..0), and per-frame false hits are outvoted by person_min_fraction."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise Recon4dError(f"ClassicTrackerConfig: {message}")

        if self.work_long_side < 32:
            fail(f"work_long_side must be at least 32 pixels, got {self.work_long_side}.")
        if self.max_planes < 1:
            fail(f"max_planes must be at least 1, got {self.max_planes}.")
        if self.min_frames < 1 or self.max_coast < 0:
            fail(f"min_frames must be ≥ 1 and max_coast ≥ 0, got {self.min_frames} and {self.max_coast}.")
        for name in ("plane_min_fraction", "plane_min_spread", "min_area_fraction", "min_frame_fraction",
                     "min_point_support", "coast_max_changed", "colour_min_similarity", "match_iou", "min_fill",
                     "person_min_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if self.person_detector not in _PERSON_DETECTORS:
            fail(f"person_detector must be one of {_PERSON_DETECTORS}, got {self.person_detector!r}.")
        if self.person_detector == "hog" and not hog_available():
            fail(f"person_detector='hog' needs cv2.HOGDescriptor, which OpenCV {cv2.__version__} lacks; "
                 "use 'shape' (or 'auto'), or install an OpenCV 4.x wheel.")


def hog_available() -> bool:
    """Whether this OpenCV build has the HOG people detector (4.x yes, 5.x main module no)."""
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")


# --- small pure helpers ----------------------------------------------------------------------


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


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of xyxy boxes (N, 4) and (M, 4); NaN boxes give 0."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_a + area_b - inter)
    return np.nan_to_num(iou, nan=0.0)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """(4,) float64 xyxy pixel-edge box of a non-empty (h, w) bool mask (x2 = last column + 1)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return np.array([x, y, x + w, y + h], np.float64)


def robust_threshold(residual: np.ndarray, sigma: float, floor: float) -> float:
    """max(floor, median + sigma · 1.4826 · MAD) of a residual-flow magnitude map."""
    median = float(np.median(residual))
    mad = float(np.median(np.abs(residual - median)))
    return max(float(floor), median + sigma * 1.4826 * mad)


# --- background motion -------------------------------------------------------------------------


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


def _reprojection_error(homography: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
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
    error = _reprojection_error(homography, points_a, points_b)
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
        candidate_error = _reprojection_error(candidate, points_a, points_b)
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
    point_residual = (np.min([_reprojection_error(plane, points_a, points_b) for plane in planes], axis=0)
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


# --- per-frame detections ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Detection:
    """A connected moving region of one frame at the working resolution."""

    box: np.ndarray  # (4,) float64 xyxy, pixel edges
    mask: np.ndarray  # (h, w) bool


def _ellipse(diameter: int) -> np.ndarray:
    diameter = max(1, int(diameter) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def detect_moving_regions(moving: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[Detection]:
    """Connected components of a cleaned (h, w) bool motion mask, largest first."""
    height, width = moving.shape
    cleaned = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, _ellipse(3))
    cleaned = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, _ellipse(round(config.close_fraction * max(height, width))))
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(cleaned, connectivity=8)
    min_area = config.min_area_fraction * height * width
    keep = [i for i in range(1, n_labels) if stats[i, cv2.CC_STAT_AREA] >= max(min_area, 4)]
    keep.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    detections = []
    for i in keep:
        x, y, w, h = stats[i, :4]
        detections.append(Detection(np.array([x, y, x + w, y + h], np.float64), labels == i))
    return detections


def fill_mask(mask: np.ndarray, min_fill: float) -> np.ndarray:
    """Fill the holes of an (h, w) bool mask; use its convex hull when it covers < ``min_fill`` of its box."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    if not contours:
        return filled.astype(bool)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    x, y, w, h = cv2.boundingRect(filled)
    if filled.sum() < min_fill * w * h:
        hull = cv2.convexHull(np.concatenate(contours))
        cv2.fillConvexPoly(filled, hull, 1)
    return filled.astype(bool)


# --- association --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Track:
    """A track under construction: per-frame boxes and masks (working resolution)."""

    boxes: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)
    detected: set = field(default_factory=set)
    misses: int = 0
    colours: np.ndarray | None = None  # hue–saturation histogram of the latest detection
    first_colours: np.ndarray | None = None  # ... and of the first one

    def add(self, t: int, box: np.ndarray, mask: np.ndarray, colours: np.ndarray | None = None) -> None:
        """Record frame t: a detection when ``colours`` is given, else a coasted box."""
        self.boxes[t], self.masks[t] = box, mask
        if colours is not None:
            self.detected.add(t)
            self.misses, self.colours = 0, colours
            if self.first_colours is None:
                self.first_colours = colours
        else:
            self.misses += 1


def carry(box: np.ndarray, mask: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move a box (4,) and mask (h, w) by the median of ``flow`` (h, w, 2) under the mask (or box).

    Returns the moved box, the moved mask and the (2,) shift.
    """
    height, width = mask.shape
    vectors = flow[mask]
    if len(vectors) == 0:
        x0, y0, x1, y1 = np.clip(np.round(box), 0, [width, height, width, height]).astype(int)
        vectors = flow[y0:y1, x0:x1].reshape(-1, 2)
    shift = np.median(vectors, axis=0) if len(vectors) else np.zeros(2)
    moved = cv2.warpAffine(mask.astype(np.uint8), np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                           (width, height), flags=cv2.INTER_NEAREST) > 0
    return box + np.tile(shift, 2), moved, shift


def appearance_changed(image_a: np.ndarray, image_b: np.ndarray, mask_a: np.ndarray, shift: np.ndarray,
                       min_change: float = 25.0) -> float:
    """Fraction of the pixels p of ``mask_a`` whose colour differs between image_a(p) and
    image_b(p + shift) by more than ``min_change`` in some channel (1.0 when the shifted mask
    leaves the image).

    image_a, image_b: (h, w, 3) uint8; mask_a: (h, w) bool; shift: (2,) pixels. Small when
    what the mask covered in frame a is still there in frame b: the test that keeps a
    coasting track on an object that stopped, not on the ground it left. A fraction, not a
    median, because motion masks include a margin of background that never changes.
    """
    height, width = mask_a.shape
    warp = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    moved_a = cv2.warpAffine(image_a, warp, (width, height), flags=cv2.INTER_LINEAR)
    moved_mask = cv2.warpAffine(mask_a.astype(np.uint8), warp, (width, height), flags=cv2.INTER_NEAREST) > 0
    if not moved_mask.any():
        return 1.0
    difference = np.abs(moved_a[moved_mask].astype(np.int16) - image_b[moved_mask]).max(axis=-1)
    return float(np.mean(difference > min_change))


def _coast(track: "_Track", source: int, target: int, flow: np.ndarray, images: np.ndarray,
           config: ClassicTrackerConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Box and mask of ``track`` carried from frame ``source`` to ``target``, or None when the
    carried box leaves the image or no longer shows what the track's nearest detection did."""
    box, mask, _ = carry(track.boxes[source], track.masks[source], flow)
    height, width = mask.shape
    if not mask.any() or _inside_fraction(box, (width, height)) <= 0.5:
        return None
    reference = min(track.detected, key=lambda t: abs(t - target))
    shift = box[:2] - track.boxes[reference][:2]
    if appearance_changed(images[reference], images[target], track.masks[reference], shift) > config.coast_max_changed:
        return None
    return box, mask


def _inside_fraction(box: np.ndarray, size: tuple[int, int]) -> float:
    width, height = size
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    inner_w = max(0.0, min(box[2], width) - max(box[0], 0))
    inner_h = max(0.0, min(box[3], height) - max(box[1], 0))
    return inner_w * inner_h / area


def colour_histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(16 · 8,) float32 hue–saturation histogram of the (h, w, 3) HSV pixels under ``mask``, summing to 1."""
    hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), [16, 8], [0, 180, 0, 256]).ravel()
    return hist / max(float(hist.sum()), 1.0)


def _match(predicted: np.ndarray, track_colours: list[np.ndarray], detections: list[Detection],
           detection_colours: list[np.ndarray], image_size: tuple[int, int],
           config: ClassicTrackerConfig) -> list[tuple[int, int]]:
    """Hungarian matching of predicted boxes (N, 4) to detections; returns (track, detection) pairs.

    A pair may match on overlap (IoU ≥ ``match_iou``), on proximity (centres closer than
    a quarter of the two box diagonals), or, for movers that jump further than their own
    size between sampled frames, on colour: hue–saturation histograms at least
    ``colour_min_similarity`` alike (1 − Bhattacharyya distance), box areas within a factor
    2, and a jump under ``max_jump`` of the image diagonal.
    """
    if len(predicted) == 0 or not detections:
        return []
    boxes = np.stack([d.box for d in detections])
    iou = box_iou(predicted, boxes)
    centres_p = (predicted[:, :2] + predicted[:, 2:]) / 2
    centres_d = (boxes[:, :2] + boxes[:, 2:]) / 2
    diag_p = np.linalg.norm(predicted[:, 2:] - predicted[:, :2], axis=1)
    diag_d = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)
    distance = np.linalg.norm(centres_p[:, None] - centres_d[None], axis=-1)
    close = distance < 0.25 * (diag_p[:, None] + diag_d[None])
    similarity = np.array([[1.0 - cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA) for b in detection_colours]
                           for a in track_colours]).reshape(iou.shape)
    area_ratio = (diag_p[:, None] / np.maximum(diag_d[None], 1e-6)) ** 2
    alike = ((similarity >= config.colour_min_similarity) & (area_ratio > 0.5) & (area_ratio < 2.0)
             & (distance < config.max_jump * math.hypot(*image_size)))
    rows, cols = linear_sum_assignment(-(iou + 0.5 * close + 0.5 * alike * similarity))
    return [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= config.match_iou or close[r, c] or alike[r, c]]


def _share_merged(predicted_masks: list[np.ndarray], detections: list[Detection], matches: dict[int, int],
                  min_area: float) -> tuple[list[Detection], dict[int, int], set[int]]:
    """Split detections that hold several tracks' objects (movers that touch and merge).

    An unmatched track whose carried mask lies at least half inside a detection shares it
    with that detection's owner: each pixel goes to the track whose carried mask is
    nearest. Returns the detections (parts appended), the updated track → detection
    matches, and the indices of the detections that were split (no longer usable whole).
    """
    claims: dict[int, list[int]] = {}
    for r, mask in enumerate(predicted_masks):
        if r in matches or not mask.any():
            continue
        inside = [np.count_nonzero(mask & d.mask) / np.count_nonzero(mask) for d in detections]
        if inside and max(inside) >= 0.5:
            claims.setdefault(int(np.argmax(inside)), []).append(r)
    owner_of = {c: r for r, c in matches.items()}
    detections, matches, shared = list(detections), dict(matches), set()
    for c, claimants in claims.items():
        owners = ([owner_of[c]] if c in owner_of else []) + claimants
        if len(owners) < 2:
            continue
        distance = np.stack([cv2.distanceTransform((~predicted_masks[r]).astype(np.uint8), cv2.DIST_L2, 3)
                             for r in owners])
        nearest = np.argmin(distance, axis=0)
        for i, r in enumerate(owners):
            part = detections[c].mask & (nearest == i)
            if np.count_nonzero(part) >= max(min_area, 4):
                matches[r] = len(detections)
                detections.append(Detection(mask_box(part), part))
            else:
                matches.pop(r, None)
        shared.add(c)
    return detections, matches, shared


def _assign(carried: list, track_colours: list, detections: list[Detection], hsv: np.ndarray,
            config: ClassicTrackerConfig) -> tuple[list[Detection], list[np.ndarray], dict[int, int], list[int]]:
    """One frame's data association for the live tracks.

    carried: per live track, (box, mask, shift) carried into this frame; hsv: the frame in
    HSV. Matches tracks to detections (:func:`_match`) and splits detections two tracks
    share (:func:`_share_merged`). Returns the frame's detections (split parts appended),
    their colour histograms, the track → detection matches and the detections left over.
    """
    height, width = hsv.shape[:2]
    predicted = np.array([box for box, _, _ in carried], np.float64).reshape(-1, 4)
    colours = [colour_histogram(hsv, d.mask) for d in detections]
    matches = dict(_match(predicted, track_colours, detections, colours, (width, height), config))
    detections, matches, split = _share_merged([mask for _, mask, _ in carried], detections, matches,
                                               config.min_area_fraction * height * width)
    colours += [colour_histogram(hsv, d.mask) for d in detections[len(colours):]]
    leftovers = sorted(set(range(len(detections))) - set(matches.values()) - split)
    return detections, colours, matches, leftovers


def _point_support(track: _Track, moving_points: list[np.ndarray]) -> float:
    """Fraction of a track's detected frames whose mask holds at least one moving corner."""
    backed = 0
    for t in track.detected:
        points = np.round(moving_points[t]).astype(int)
        height, width = track.masks[t].shape
        points = points[(points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)]
        backed += bool(track.masks[t][points[:, 1], points[:, 0]].any())
    return backed / max(len(track.detected), 1)


def _stitch(tracks: list[_Track], size: tuple[int, int], config: ClassicTrackerConfig) -> list[_Track]:
    """Join track fragments: B continues A when B's first detection comes after A's last,
    within 2 · ``max_coast`` + 1 frames, with colours at least ``colour_min_similarity``
    alike, areas within a factor 3 (unless one is cut by the image border) and a jump under
    ``max_jump`` of the image diagonal per frame of gap. Best-matching pairs first; A's
    coasted frames from B's start on give way."""
    width, height = size
    diagonal = math.hypot(width, height)

    def cut(box: np.ndarray) -> bool:
        return box[0] <= 1 or box[1] <= 1 or box[2] >= width - 1 or box[3] >= height - 1

    def first_detected(track: _Track) -> int:
        return min(track.detected)

    def last_detected(track: _Track) -> int:
        return max(track.detected)

    def centre(box: np.ndarray) -> np.ndarray:
        return (box[:2] + box[2:]) / 2

    while True:
        best = None
        for a, early in enumerate(tracks):
            for b, late in enumerate(tracks):
                gap = first_detected(late) - last_detected(early)
                if a == b or not 0 < gap <= 2 * config.max_coast + 1:
                    continue
                if min(late.boxes) <= last_detected(early):
                    continue
                end, start = last_detected(early), first_detected(late)
                ratio = np.count_nonzero(late.masks[start]) / max(np.count_nonzero(early.masks[end]), 1)
                jump = np.linalg.norm(centre(late.boxes[start]) - centre(early.boxes[end]))
                similarity = 1.0 - cv2.compareHist(early.colours, late.first_colours, cv2.HISTCMP_BHATTACHARYYA)
                sized = 1 / 3 <= ratio <= 3 or cut(late.boxes[start]) or cut(early.boxes[end])
                if (similarity >= config.colour_min_similarity and sized
                        and jump <= config.max_jump * diagonal * gap and (best is None or similarity > best[0])):
                    best = (similarity, a, b)
        if best is None:
            return tracks
        _, a, b = best
        early, late = tracks[a], tracks[b]
        for t in [t for t in early.boxes if t >= min(late.boxes)]:
            del early.boxes[t], early.masks[t]
        early.boxes.update(late.boxes)
        early.masks.update(late.masks)
        early.detected |= late.detected
        early.colours = late.colours
        del tracks[b]


def associate(detections: list[list[Detection]], motion: MotionField, images: np.ndarray,
              config: ClassicTrackerConfig = ClassicTrackerConfig()) -> list[_Track]:
    """Link per-frame detections into tracks; coast unmatched tracks on their median flow.

    detections: T lists of :class:`Detection`; images: (T, h, w, 3) uint8 RGB working
    frames. A live track's box is carried to the next frame on the forward flow and
    matched to that frame's detections (:func:`_match`). An unmatched track coasts for up
    to ``max_coast`` frames while :func:`appearance_changed` says its object is still
    there; otherwise it is lost, and a detection matching none of the live tracks may
    revive a track lost in the last ``max_coast`` frames (same matching rules; the frames
    in between stay unseen) before it starts a new one. Fragments one object left behind
    are joined afterwards (:func:`_stitch`), and each track coasts backwards from its
    first frame. Tracks detected in fewer than max(``min_frames``,
    ``min_frame_fraction`` · T) frames, with a median detected area under
    ``min_area_fraction``, or with moving corners (``MotionField.moving_points``) in fewer
    than ``min_point_support`` of their detected frames (dense-flow errors on repetitive
    texture, which sparse corner tracks do not share) are dropped. Returns the tracks in
    order of first appearance.
    """
    n_frames = len(detections)
    height, width = images.shape[1:3]
    live: list[_Track] = []
    finished: list[_Track] = []
    for t in range(n_frames):
        hsv = cv2.cvtColor(images[t], cv2.COLOR_RGB2HSV)
        carried = [carry(track.boxes[t - 1], track.masks[t - 1], motion.forward_flow[t - 1]) for track in live]
        frame_detections, colours, matches, unmatched = _assign(
            carried, [track.colours for track in live], detections[t], hsv, config)
        next_live = []
        for r, track in enumerate(live):
            if r in matches:
                detection = frame_detections[matches[r]]
                track.add(t, detection.box, detection.mask, colours[matches[r]])
                next_live.append(track)
                continue
            coasted = _coast(track, t - 1, t, motion.forward_flow[t - 1], images, config) \
                if track.misses < config.max_coast else None
            if coasted is None:
                finished.append(track)
            else:
                track.add(t, *coasted)
                next_live.append(track)
        lost = [track for track in finished if max(track.boxes) >= t - 1 - config.max_coast]
        revived = _match(np.array([track.boxes[max(track.boxes)] for track in lost]).reshape(-1, 4),
                         [track.colours for track in lost], [frame_detections[c] for c in unmatched],
                         [colours[c] for c in unmatched], (width, height), config)
        for r, c in revived:
            finished.remove(lost[r])
            lost[r].add(t, frame_detections[unmatched[c]].box, frame_detections[unmatched[c]].mask,
                        colours[unmatched[c]])
            next_live.append(lost[r])
        for c in sorted(set(range(len(unmatched))) - {c for _, c in revived}):
            track = _Track()
            track.add(t, frame_detections[unmatched[c]].box, frame_detections[unmatched[c]].mask,
                      colours[unmatched[c]])
            next_live.append(track)
        live = next_live
    tracks = _stitch(finished + live, (width, height), config)
    for track in tracks:
        first = min(track.boxes)
        for t in range(first - 1, max(first - 1 - config.max_coast, -1), -1):
            coasted = _coast(track, t + 1, t, motion.backward_flow[t], images, config)
            if coasted is None:
                break
            track.boxes[t], track.masks[t] = coasted
    min_area = config.min_area_fraction * height * width
    min_frames = max(config.min_frames, math.ceil(config.min_frame_fraction * n_frames - 1e-9))
    kept = [track for track in tracks
            if len(track.detected) >= min_frames
            and np.median([track.masks[t].sum() for t in track.detected]) >= min_area
            and _point_support(track, motion.moving_points) >= config.min_point_support]
    kept.sort(key=lambda track: (min(track.boxes), -len(track.detected)))
    return kept


# --- agent labels --------------------------------------------------------------------------------


def hog_people_detector(long_side: int = 640, hit_threshold: float = -0.3) -> Callable[[np.ndarray], np.ndarray]:
    """OpenCV's HOG people detector as ``detect(frame (H, W, 3) RGB) -> (N, 4) xyxy`` in frame pixels.

    Frames are resized to ``long_side`` first (the detector's window is 64 × 128 pixels).
    Needs :func:`hog_available`.
    """
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        size = working_size(width, height, long_side)
        image = frame if size == (width, height) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        rects, _ = hog.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), hitThreshold=hit_threshold,
                                        winStride=(8, 8), padding=(16, 16), scale=1.05)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1) * (width / size[0])

    return detect


def person_evidence(boxes: np.ndarray, visible: np.ndarray, frames: np.ndarray | None,
                    config: ClassicTrackerConfig = ClassicTrackerConfig(),
                    people: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """(K, T) bool: does frame t support "track k is a person"?

    boxes: (K, T, 4) xyxy in ``frames`` pixels; visible: (K, T). With a people detector
    (``people(frame) -> (N, 4)`` boxes, HOG by default) a frame supports a track when a
    detection has IoU ≥ 0.3 with its box or lies ≥ 70 % inside it; with the "shape"
    detector when its box is at least ``person_min_aspect`` times taller than wide; "auto"
    takes either.
    """
    kind = config.person_detector
    evidence = np.zeros(visible.shape, bool)
    if kind == "none" or not visible.any():
        return evidence
    aspect = (boxes[..., 3] - boxes[..., 1]) / np.maximum(boxes[..., 2] - boxes[..., 0], 1e-6)
    shape = visible & (np.nan_to_num(aspect) >= config.person_min_aspect)
    if kind == "shape" or (kind == "auto" and not hog_available() and people is None):
        return shape
    if kind == "auto":
        evidence |= shape
    detect = people or hog_people_detector(config.hog_long_side, config.hog_hit_threshold)
    for t in np.flatnonzero(visible.any(axis=0)):
        found = np.asarray(detect(frames[t]), np.float64).reshape(-1, 4)
        if len(found) == 0:
            continue
        rows = np.flatnonzero(visible[:, t])
        iou = box_iou(boxes[rows, t], found)
        inner_w = np.clip(np.minimum(boxes[rows, t, None, 2], found[None, :, 2])
                          - np.maximum(boxes[rows, t, None, 0], found[None, :, 0]), 0, None)
        inner_h = np.clip(np.minimum(boxes[rows, t, None, 3], found[None, :, 3])
                          - np.maximum(boxes[rows, t, None, 1], found[None, :, 1]), 0, None)
        found_area = np.maximum((found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]), 1e-6)
        inside = inner_w * inner_h / found_area[None]
        evidence[rows, t] |= ((iou >= 0.3) | (inside >= 0.7)).any(axis=1)
    return evidence


def label_tracks(evidence: np.ndarray, detected: np.ndarray, min_fraction: float) -> tuple[tuple[str, ...], np.ndarray]:
    """Categories and is_agent (K,) from person evidence (K, T) over detected frames (K, T)."""
    support = (evidence & detected).sum(axis=1) / np.maximum(detected.sum(axis=1), 1)
    is_person = (support >= min_fraction) & detected.any(axis=1)
    return tuple("person" if p else "object" for p in is_person), is_person


# --- user boxes ----------------------------------------------------------------------------------


def validate_user_boxes(entries, where: str = "boxes") -> list[dict]:
    """Check user-box entries and return normalised copies.

    Each entry is ``{"category": str, "box": [x1, y1, x2, y2] (source px), "frame": int
    (index into the clip's sampled frames) or "time_s": float, "is_agent": bool
    (optional; default: category in AGENT_CATEGORIES)}``. A top-level ``{"boxes": [...]}``
    is accepted too. Raises :class:`UserBoxesError` naming the entry and what to fix.
    """
    if isinstance(entries, dict) and set(entries) == {"boxes"}:
        entries = entries["boxes"]
    if not isinstance(entries, list):
        raise UserBoxesError(f"{where}: expected a JSON list of box objects (or {{\"boxes\": [...]}}), "
                             f"got {type(entries).__name__}.")
    normalised = []
    for i, entry in enumerate(entries):
        name = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise UserBoxesError(f"{name}: expected an object like {{\"category\": \"person\", "
                                 f"\"box\": [x1, y1, x2, y2], \"frame\": 0}}, got {type(entry).__name__}.")
        unknown = set(entry) - _USER_BOX_KEYS
        if unknown:
            raise UserBoxesError(f"{name}: unknown key(s) {sorted(unknown)}; allowed keys are {sorted(_USER_BOX_KEYS)}.")
        category = entry.get("category")
        if not isinstance(category, str) or not category.strip():
            raise UserBoxesError(f"{name}: \"category\" must be a non-empty string such as \"person\".")
        box = entry.get("box")
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            raise UserBoxesError(f"{name}: \"box\" must be four finite numbers [x1, y1, x2, y2] in source-video "
                                 f"pixels, got {box!r}.")
        if not (box[2] > box[0] and box[3] > box[1]):
            raise UserBoxesError(f"{name}: \"box\" {list(box)} is empty; it needs x2 > x1 and y2 > y1.")
        has_frame, has_time = "frame" in entry, "time_s" in entry
        if has_frame == has_time:
            raise UserBoxesError(f"{name}: give exactly one of \"frame\" (index of a sampled clip frame) and "
                                 f"\"time_s\" (seconds in the video).")
        if has_frame:
            frame = entry["frame"]
            if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
                raise UserBoxesError(f"{name}: \"frame\" must be a non-negative integer, got {frame!r}.")
        else:
            time_s = entry["time_s"]
            if isinstance(time_s, bool) or not isinstance(time_s, (int, float)) or not math.isfinite(time_s) or time_s < 0:
                raise UserBoxesError(f"{name}: \"time_s\" must be a non-negative number of seconds, got {time_s!r}.")
        is_agent = entry.get("is_agent", category.strip() in AGENT_CATEGORIES)
        if not isinstance(is_agent, bool):
            raise UserBoxesError(f"{name}: \"is_agent\" must be true or false, got {is_agent!r}.")
        item = {"category": category.strip(), "is_agent": is_agent, "box": [float(v) for v in box]}
        item.update({"frame": int(entry["frame"])} if has_frame else {"time_s": float(entry["time_s"])})
        normalised.append(item)
    return normalised


def load_user_boxes(path) -> list[dict]:
    """Read and validate a ``--boxes`` JSON file (see :func:`validate_user_boxes` for the format)."""
    path = Path(path)
    if not path.is_file():
        raise UserBoxesError(f"box file '{path}' does not exist (or is not a file); check the --boxes path.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserBoxesError(f"box file '{path}' is not UTF-8 text ({exc}); save it as UTF-8 JSON.") from exc
    except json.JSONDecodeError as exc:
        raise UserBoxesError(f"box file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}.") from exc
    return validate_user_boxes(data, where=str(path))


def anchor_frame(entry: dict, clip: Clip) -> int:
    """The sampled clip frame a user box belongs to."""
    if "frame" in entry:
        if entry["frame"] >= clip.n_frames:
            raise UserBoxesError(f"a user box is given at frame {entry['frame']} but the clip has "
                                 f"{clip.n_frames} sampled frames (0..{clip.n_frames - 1}).")
        return entry["frame"]
    times = clip.timestamps_s
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / clip.fps
    if not times[0] - step <= entry["time_s"] <= times[-1] + step:
        raise UserBoxesError(f"a user box is given at time_s={entry['time_s']:.3f} but the clip covers "
                             f"{times[0]:.3f}–{times[-1]:.3f} s.")
    return int(np.argmin(np.abs(times - entry["time_s"])))


def _box_step(gray_a: np.ndarray, gray_b: np.ndarray, box: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """Carry a box from frame a to b with LK tracks inside it; None when nothing could be tracked.

    Points whose motion fits the background homography ``background`` within 1 px are set
    aside when at least 5 others move differently (the object moves against the background).
    """
    height, width = gray_a.shape
    x0, y0, x1, y1 = np.clip(np.round(box), 0, [width, height, width, height]).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = np.zeros_like(gray_a)
    region[y0:y1, x0:x1] = 255
    spacing = max(2, min(x1 - x0, y1 - y0) // 12)
    corners = cv2.goodFeaturesToTrack(gray_a, 150, 0.005, spacing, mask=region, blockSize=5)
    points = corners.reshape(-1, 2) if corners is not None else np.zeros((0, 2), np.float32)
    if len(points) < 8:
        xs, ys = np.meshgrid(np.linspace(x0, x1 - 1, 6), np.linspace(y0, y1 - 1, 6))
        points = np.concatenate([points, np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)])
    points_a, points_b = track_points(gray_a, gray_b, points)
    if len(points_a) < 3:
        return None
    own = _reprojection_error(background, points_a, points_b) >= 1.0
    if own.sum() >= 5:
        points_a, points_b = points_a[own], points_b[own]
    shift = np.median(points_b - points_a, axis=0)
    pick = np.linspace(0, len(points_a) - 1, min(len(points_a), 40)).astype(int)
    ia, ib = np.triu_indices(len(pick), k=1)
    dist_a = np.linalg.norm(points_a[pick][ia] - points_a[pick][ib], axis=1)
    dist_b = np.linalg.norm(points_b[pick][ia] - points_b[pick][ib], axis=1)
    usable = dist_a > 3.0
    scale = float(np.clip(np.median(dist_b[usable] / dist_a[usable]), 0.8, 1.25)) if usable.any() else 1.0
    centre = (box[:2] + box[2:]) / 2 + shift
    half = (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])


def propagate_box(gray: np.ndarray, anchor: int, box: np.ndarray,
                  background: Callable[[int, int], np.ndarray] | None = None) -> np.ndarray:
    """Carry ``box`` (4,) given at frame ``anchor`` through (T, h, w) grey frames, both ways.

    ``background(a, b)`` gives the (3, 3) background homography from frame a to b (fitted
    here when not given; pass a cached one when carrying several boxes). Returns (T, 4)
    float64 boxes, NaN from the frame where the box has left the image (less than 30 % of
    it inside). A step without trackable points keeps the box (the object is taken as still).
    """
    n_frames, height, width = gray.shape
    if background is None:
        background = background_homographies(gray)
    boxes = np.full((n_frames, 4), np.nan)
    boxes[anchor] = box
    for direction in (1, -1):
        current = np.asarray(box, np.float64)
        t = anchor
        while 0 <= t + direction < n_frames:
            moved = _box_step(gray[t], gray[t + direction], current, background(t, t + direction))
            current = current if moved is None else moved
            if _inside_fraction(current, (width, height)) < 0.3:
                break
            t += direction
            boxes[t] = current
    return boxes


def background_homographies(gray: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """``background(a, b)``: the dominant-plane homography between frames a and b of (T, h, w)
    grey frames, fitted on first use and remembered (b → a is the inverse of a → b)."""
    height, width = gray.shape[1:]
    cache: dict[tuple[int, int], np.ndarray] = {}
    single_plane = ClassicTrackerConfig(max_planes=1)

    def background(a: int, b: int) -> np.ndarray:
        if (a, b) not in cache:
            if (b, a) in cache:
                cache[a, b] = np.linalg.inv(cache[b, a])
            else:
                cache[a, b] = fit_background_planes(*corner_matches(gray[a], gray[b]), (width, height),
                                                    single_plane)[0]
        return cache[a, b]

    return background


# --- the backend ---------------------------------------------------------------------------------


def _to_source(boxes: np.ndarray, work_size: tuple[int, int], source_size: tuple[int, int]) -> np.ndarray:
    scale = np.array([source_size[0] / work_size[0], source_size[1] / work_size[1]] * 2)
    return boxes * scale


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[::-1] == size:
        return mask
    return cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR) > 127


def _box_masks(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, T, H, W) bool filled boxes from (K, T, 4) xyxy boxes in pixels of ``size`` = (W, H)."""
    width, height = size
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    with np.errstate(invalid="ignore"):
        inside_x = (xs >= boxes[..., 0, None]) & (xs < boxes[..., 2, None])
        inside_y = (ys >= boxes[..., 1, None]) & (ys < boxes[..., 3, None])
    return inside_y[..., :, None] & inside_x[..., None, :]


class ClassicTracker:
    """Weights-free tracker: camera-compensated motion segmentation, or user boxes (module docstring)."""

    name = "classic"
    version = "1"

    def __init__(self, config: ClassicTrackerConfig = ClassicTrackerConfig(), boxes: list[dict] | None = None,
                 people: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.config = config
        self.user_boxes = validate_user_boxes(boxes) if boxes else []
        self.people = people
        """Optional people detector ``frame (H, W, 3) → (N, 4) xyxy``; overrides HOG/shape."""

    @classmethod
    def from_config(cls, options: dict, device: str = "cpu") -> "ClassicTracker":
        """Build from CLI/config options: ClassicTrackerConfig fields plus ``boxes`` (user
        boxes: a list as :func:`validate_user_boxes` takes, or the path of a JSON file).

        ``device`` is ignored: everything runs on the CPU with OpenCV.
        """
        options = dict(options or {})
        boxes = options.pop("boxes", None)
        if isinstance(boxes, (str, Path)):
            boxes = load_user_boxes(boxes)
        names = {f.name for f in fields(ClassicTrackerConfig)}
        unknown = set(options) - names
        if unknown:
            raise Recon4dError(f"unknown option(s) {sorted(unknown)} for the classic tracker; "
                               f"valid options are {sorted(names | {'boxes'})}.")
        return cls(ClassicTrackerConfig(**options), boxes)

    def track(self, clip: Clip, progress: ProgressFn | None = None) -> Tracks2D:
        """Find and follow moving objects (or the user's boxes) in ``clip``.

        Returns Tracks2D with boxes (K, T, 4) in source-video pixels (NaN where not
        visible) and masks (K, T, H, W) bool at the clip frame size; K may be 0.
        """
        size = working_size(*clip.image_size, self.config.work_long_side)
        images, gray = to_working(clip.frames, size)
        if self.user_boxes:
            return self._track_user_boxes(clip, gray, size, progress)
        return self._discover(clip, images, gray, size, progress)

    def _discover(self, clip: Clip, images: np.ndarray, gray: np.ndarray, size: tuple[int, int], progress) -> Tracks2D:
        config, n_frames = self.config, clip.n_frames
        motion = compute_motion(gray, config, progress)
        detections = [detect_moving_regions(motion.moving[t], config) if motion.moving[t].any() else []
                      for t in range(n_frames)]
        tracks = associate(detections, motion, images, config)
        n_tracks = len(tracks)
        boxes = np.full((n_tracks, n_frames, 4), np.nan)
        visible = np.zeros((n_tracks, n_frames), bool)
        detected = np.zeros((n_tracks, n_frames), bool)
        masks = np.zeros((n_tracks, n_frames, clip.frames.shape[1], clip.frames.shape[2]), bool)
        for k, track in enumerate(tracks):
            for t in track.boxes:
                mask = fill_mask(track.masks[t], config.min_fill)
                if not mask.any():
                    continue
                boxes[k, t] = mask_box(mask)
                visible[k, t] = True
                masks[k, t] = _resize_mask(mask, clip.image_size)
            detected[k, sorted(track.detected)] = True
        work_scale = np.array([clip.image_size[0] / size[0], clip.image_size[1] / size[1]] * 2)
        evidence = person_evidence(boxes * work_scale, visible, clip.frames, config, self.people)
        categories, is_agent = label_tracks(evidence, detected & visible, config.person_min_fraction)
        return Tracks2D(ids=np.arange(n_tracks), categories=categories, is_agent=is_agent,
                        boxes_xyxy=_to_source(boxes, size, clip.source_size).astype(np.float32),
                        visible=visible, masks=masks)

    def _track_user_boxes(self, clip: Clip, gray: np.ndarray, size: tuple[int, int], progress) -> Tracks2D:
        n_boxes = len(self.user_boxes)
        to_work = np.array([size[0] / clip.source_size[0], size[1] / clip.source_size[1]] * 2)
        boxes = np.full((n_boxes, clip.n_frames, 4), np.nan)
        anchors = [anchor_frame(entry, clip) for entry in self.user_boxes]
        background = background_homographies(gray)
        for k, (entry, anchor) in enumerate(zip(self.user_boxes, anchors)):
            boxes[k] = propagate_box(gray, anchor, np.asarray(entry["box"]) * to_work, background)
            if progress is not None:
                progress(k + 1, n_boxes)
        boxes = np.where(np.isfinite(boxes), np.clip(boxes, 0, [size[0], size[1]] * 2), np.nan)
        visible = np.isfinite(boxes).all(axis=-1)
        clip_scale = np.array([clip.image_size[0] / size[0], clip.image_size[1] / size[1]] * 2)
        return Tracks2D(ids=np.arange(n_boxes), categories=tuple(e["category"] for e in self.user_boxes),
                        is_agent=np.array([e["is_agent"] for e in self.user_boxes], bool),
                        boxes_xyxy=_to_source(boxes, size, clip.source_size).astype(np.float32),
                        visible=visible, masks=_box_masks(boxes * clip_scale, clip.image_size))
