"""Settings of the weights-free ``classic`` tracker (:mod:`recon4d.tracking.classic.tracker`).

Owns :class:`ClassicTrackerConfig`, whose defaults the motion, association and
user-box modules take, and :func:`hog_available`, which its validation needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from recon4d.errors import Recon4dError

__all__ = [
    "ClassicTrackerConfig",
    "hog_available",
]

_PERSON_DETECTORS = ("auto", "hog", "shape", "none")


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
