"""Camera tilt from the world's vertical lines (step 3 of :mod:`recon4d.recon.classic.reconstructor`, no parallax).

A camera without parallax gives no ground plane to fit, so its tilt was guessed from the boxes
of the objects on the ground (people 1.7 m tall, objects keeping one size), which a tracker's
boxes bend: a shadow under a dog, a ball called a person, a box that takes in a neighbour (on
the still and panning dev scenes 101–130 those guesses missed the true tilt by 3–11°). Straight
vertical edges — wall corners, door frames, posts, the sides of boxes, buildings — do not need
the objects at all: in a camera tilted down by θ they all point at one vanishing point,
f · cot θ below the image centre, so how much they lean towards each other across the image
says θ (Hartley & Zisserman 2004, §8.6; Criminisi, Reid & Zisserman 2000).

Each straight segment (OpenCV's line segment detector, on ``N_FRAMES`` frames spread over the
clip) longer than ``MIN_SEGMENT_FRACTION`` of the longer image side and within
``MAX_LEAN_DEG`` of the image vertical spans a plane through the camera centre; its normal,
turned into the world frame (camera 0) by the frame's rotation (a turning camera adds frames'
evidence in one frame), is perpendicular to the vertical direction when the segment is
vertical in the world. The direction most segments agree with (RANSAC over pairs of segments,
weighted by length, within ``INLIER_DEG``; then the least-squares direction of the agreeing
segments) is the world's down. It is believed when at least ``MIN_INLIERS`` segments agree,
they span directions (not all one post: ``MIN_NORMAL_SPREAD``), it leans sideways by at most
``MAX_ROLL_DEG`` and it lies within ``MAX_TILT_DEG`` of the camera's down axis — lines on the ground running away from the camera
meet at the horizon, which lies within the image or near it, not far below, so they cannot pass
for verticals there. Footage without such edges (a lawn, a beach) gives None and the object
cues are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

N_FRAMES = 6
"""Frames, spread over the clip, whose segments are pooled."""
MIN_SEGMENT_FRACTION = 0.06
"""Shortest segment used, as a fraction of the longer image side (short ones point anywhere)."""
MAX_LEAN_DEG = 30.0
"""Segments leaning further than this from the image vertical are not candidates."""
INLIER_DEG = 0.5
"""A segment agrees with a direction when the direction lies within this angle of its plane."""
MAX_TILT_DEG = 40.0
"""The vertical must lie within this angle of camera 0's down axis (tilts and rolls up to 40°)."""
MAX_ROLL_DEG = 5.0
"""A vertical that leans sideways by more than this (camera 0 rolled, as the ground prior, which
has no roll, cannot follow) is not believed: slanted edges (the tapered sides of cups on a
table, 02_cups.mp4: 6.6°) agree on no true vertical, and the still and panning dev scenes' true
verticals came out within 0.8° of level."""
MIN_INLIERS = 5
"""Distinct lines that must agree before the direction is believed: a still camera sees the same
line in every frame, and the detector may cut one line into pieces, so agreeing segments whose
planes lie within ``DISTINCT_RAD`` of each other count once."""
DISTINCT_RAD = 0.01
"""Agreeing segments whose plane normals round to the same multiple of this (radians) are one line."""
MIN_NORMAL_SPREAD = 0.05
"""Least spread (second singular value of the agreeing planes' unit normals / √n, ~sin of
their angular spread) that fixes the direction: segments all on one edge fix only a plane."""
N_HYPOTHESES = 2000
"""Pairs of segments tried as the vertical direction."""


@dataclass(frozen=True)
class VerticalTilt:
    """The world's vertical seen by a camera without parallax.

    tilt_rad: downward tilt of camera 0 (the world frame), radians (positive: looking down).
    roll_rad: roll of camera 0 about its optical axis, radians (positive: the image turned clockwise).
    down:     (3,) unit world down direction in camera 0's OpenCV frame (y down, z forward).
    inliers:  segments that agree with it.
    segments: candidate segments found.
    """

    tilt_rad: float
    roll_rad: float
    down: np.ndarray
    inliers: int
    segments: int


def line_segments(gray: np.ndarray, min_length: float) -> np.ndarray:
    """(n, 4) float64 straight segments (x1, y1, x2, y2) of a (H, W) uint8 image, at least ``min_length`` px long."""
    found = cv2.createLineSegmentDetector().detect(gray)[0]
    if found is None:
        return np.zeros((0, 4))
    lines = found.reshape(-1, 4).astype(np.float64)
    return lines[np.hypot(lines[:, 2] - lines[:, 0], lines[:, 3] - lines[:, 1]) >= min_length]


def segment_normals(segments: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(n, 3) unit normals of the planes through the camera centre and each segment (n, 4), camera frame."""
    inverse = np.linalg.inv(intrinsics)
    ones = np.ones((len(segments), 1))
    start = np.hstack([segments[:, :2], ones]) @ inverse.T
    end = np.hstack([segments[:, 2:], ones]) @ inverse.T
    normals = np.cross(start, end)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def common_direction(normals: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """The direction (3,) (y ≥ 0) that most planes (unit ``normals`` (n, 3), ``weights`` (n,)) contain,
    within ``MAX_TILT_DEG`` of +y, and the (n,) bool planes that contain it; None when not believed
    (see the module docstring)."""
    if len(normals) < max(2, MIN_INLIERS):
        return None
    first, second = rng.integers(0, len(normals), (2, N_HYPOTHESES))
    candidates = np.cross(normals[first], normals[second])
    length = np.linalg.norm(candidates, axis=1)
    candidates = candidates[length > 1e-6] / length[length > 1e-6, None]
    candidates *= np.where(candidates[:, 1] < 0, -1.0, 1.0)[:, None]
    candidates = candidates[candidates[:, 1] >= math.cos(math.radians(MAX_TILT_DEG))]
    if not len(candidates):
        return None
    tolerance = math.sin(math.radians(INLIER_DEG))
    support = (np.abs(candidates @ normals.T) < tolerance) @ weights
    agree = np.abs(normals @ candidates[int(np.argmax(support))]) < tolerance
    if agree.sum() < MIN_INLIERS:
        return None
    direction = np.linalg.svd(normals[agree] * weights[agree, None])[2][-1]
    direction *= 1.0 if direction[1] >= 0 else -1.0
    agree = np.abs(normals @ direction) < tolerance
    if distinct_lines(normals[agree]) < MIN_INLIERS or direction[1] < math.cos(math.radians(MAX_TILT_DEG)):
        return None
    spread = np.linalg.svd(normals[agree], compute_uv=False)
    if len(spread) < 2 or spread[1] / math.sqrt(agree.sum()) < MIN_NORMAL_SPREAD:
        return None
    return direction, agree


def distinct_lines(normals: np.ndarray) -> int:
    """How many different lines the planes (unit ``normals`` (n, 3), signs free) are (``DISTINCT_RAD``)."""
    signed = normals * np.where(normals[:, 0] < 0, -1.0, 1.0)[:, None]
    return len(np.unique(np.round(signed / DISTINCT_RAD), axis=0))


def vertical_tilt(frames: np.ndarray, intrinsics: np.ndarray, world_to_cam: np.ndarray,
                  rng: np.random.Generator) -> VerticalTilt | None:
    """Tilt and roll of camera 0 from the vertical lines of a clip, or None (see the module docstring).

    frames: (T, H, W, 3) uint8 RGB; intrinsics: (3, 3) in the frames' pixels; world_to_cam:
    (T, 3, 4) the camera rotations (world = camera 0; translations unused).
    """
    n_frames, height, width = frames.shape[:3]
    chosen = np.unique(np.linspace(0, n_frames - 1, min(N_FRAMES, n_frames)).round().astype(int))
    normals, weights = [], []
    for t in chosen:
        segments = line_segments(cv2.cvtColor(np.ascontiguousarray(frames[t]), cv2.COLOR_RGB2GRAY),
                                 MIN_SEGMENT_FRACTION * max(width, height))
        dx, dy = segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]
        upright = np.degrees(np.arctan2(np.abs(dx), np.abs(dy))) < MAX_LEAN_DEG
        normals.append(segment_normals(segments[upright], intrinsics) @ world_to_cam[t, :, :3])  # Rᵀ n: world frame
        weights.append(np.hypot(dx[upright], dy[upright]))
    normals_all, weights_all = np.concatenate(normals), np.concatenate(weights)
    found = common_direction(normals_all, weights_all, rng)
    if found is None:
        return None
    down, agree = found
    roll = math.atan2(-float(down[0]), float(down[1]))
    if abs(math.degrees(roll)) > MAX_ROLL_DEG:
        return None
    return VerticalTilt(tilt_rad=math.asin(float(np.clip(down[2], -1.0, 1.0))),
                        roll_rad=roll, down=down,
                        inliers=int(agree.sum()), segments=len(normals_all))
