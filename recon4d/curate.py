"""Video curation: keep clips with camera or object motion (weights-free motion filter).

DSR-style corpora keep only videos with something to reason about; the DSR paper asks an
LLM whether a clip shows motion. This is the weights-free counterpart: measure motion
directly on a few frame pairs and keep a video when its camera moves or its objects do.

For ``n_frames`` // 2 pairs spread evenly over the video, each pair being a frame and
the one ``pair_gap_s`` seconds later, decoded at long side ``long_side``:

- camera motion: median over the pixels of the displacement of the fitted background
  homography (:func:`recon4d.tracking.classic.background.fit_background_planes`, dominant plane),
  over the image diagonal and the pair's time gap (diagonals per second); the median
  over pairs;
- object motion: fraction of the pixels whose residual flow against the tracker's background
  model (:func:`recon4d.tracking.classic.motion.pair_motion`) exceeds its robust threshold (median + sigma · MAD over textured pixels,
  never below ``residual_floor_px``; blank pixels never count); the 90th percentile
  over pairs, so a mover seen in a few pairs is enough;
- mean residual: mean residual flow over textured pixels, diagonals per second, averaged
  over pairs (reported, not used for the decision).

A video is kept when camera motion ≥ ``min_camera_motion`` or object motion ≥
``min_object_motion``. Unreadable videos are reported as not kept, with the
:class:`~recon4d.errors.VideoError` message as the reason.

    curate(["a.mp4", "b.mp4"]) -> [CurationResult(path, kept, reason, stats), ...]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from recon4d.errors import Recon4dError, VideoError
from recon4d.types import ProgressFn

__all__ = ["CurateConfig", "CurationResult", "MotionStats", "curate", "motion_statistics"]


@dataclass(frozen=True)
class CurateConfig:
    """Thresholds and sampling of :func:`curate`."""

    n_frames: int = 16
    """Frames decoded per video (n_frames // 2 pairs)."""
    long_side: int = 320
    """Frames are decoded at this long side (never enlarged)."""
    pair_gap_s: float = 0.2
    """Time between the two frames of a pair, seconds (one frame apart at least)."""
    min_camera_motion: float = 0.02
    """Keep when the camera moves at least this many image diagonals per second..."""
    min_object_motion: float = 0.005
    """...or when at least this fraction of the pixels moves against the background."""
    residual_sigma: float = 4.0
    """Moving-pixel threshold: median + residual_sigma · 1.4826 · MAD of the residual..."""
    residual_floor_px: float = 1.0
    """...and at least this many pixels (at ``long_side``) over the pair gap."""
    min_texture: float = 8.0
    """Pixels with less texture (mean Sobel magnitude over 5 × 5) never count as moving."""

    def __post_init__(self) -> None:
        if self.n_frames < 2:
            raise Recon4dError(f"CurateConfig: n_frames must be at least 2 (one pair), got {self.n_frames}.")
        if self.long_side < 32:
            raise Recon4dError(f"CurateConfig: long_side must be at least 32 pixels, got {self.long_side}.")
        if not self.pair_gap_s > 0:
            raise Recon4dError(f"CurateConfig: pair_gap_s must be positive, got {self.pair_gap_s}.")
        if self.min_camera_motion < 0 or not 0 <= self.min_object_motion <= 1:
            raise Recon4dError("CurateConfig: min_camera_motion must be ≥ 0 and min_object_motion in [0, 1], "
                               f"got {self.min_camera_motion} and {self.min_object_motion}.")


@dataclass(frozen=True)
class MotionStats:
    """Motion measured on one video (see the module docstring for definitions)."""

    path: str
    n_pairs: int
    """Frame pairs measured."""
    camera_motion: float
    """Median background displacement, image diagonals per second (median over pairs)."""
    object_motion: float
    """Fraction of pixels moving against the background (90th percentile over pairs)."""
    mean_residual: float
    """Mean residual flow over textured pixels, image diagonals per second."""

    def to_json(self) -> dict:
        return {"path": self.path, "n_pairs": self.n_pairs, "camera_motion": self.camera_motion,
                "object_motion": self.object_motion, "mean_residual": self.mean_residual}


class CurationResult(NamedTuple):
    """One video's verdict; unpacks as ``(path, kept, reason, stats)``. stats is None when unreadable."""

    path: str
    kept: bool
    reason: str
    stats: MotionStats | None


def _pair_indices(n_video_frames: int, fps: float, n_pairs: int, gap_s: float) -> list[tuple[int, int]]:
    """Up to ``n_pairs`` (first, second) frame indices spread over the video, ``gap_s`` apart."""
    gap = max(1, round(gap_s * fps))
    if n_video_frames <= gap:
        gap = n_video_frames - 1
    if gap < 1:
        return []
    firsts = np.unique(np.rint(np.linspace(0, n_video_frames - 1 - gap, n_pairs)).astype(np.int64))
    return [(int(first), int(first) + gap) for first in firsts]


def motion_statistics(path, n_frames: int = 16, long_side: int = 320,
                      config: CurateConfig | None = None) -> MotionStats:
    """Camera motion, object motion and mean residual of the video at ``path``.

    ``n_frames`` and ``long_side`` override the config's. Raises
    :class:`~recon4d.errors.VideoError` when the video cannot be read; a video of a single
    frame has no pairs and zero motion.
    """
    import cv2

    from recon4d.tracking.classic.config import ClassicTrackerConfig
    from recon4d.tracking.classic.background import homography_flow
    from recon4d.tracking.classic.motion import pair_motion, robust_threshold, textured, working_size
    from recon4d.video import iter_frames, probe

    base = config or CurateConfig()
    info = probe(path)
    pairs = _pair_indices(info.n_frames, info.fps, max(1, n_frames // 2), base.pair_gap_s)
    size = working_size(info.width, info.height, long_side)
    diagonal = math.hypot(*size)
    indices = sorted({i for pair in pairs for i in pair})
    gray = {}
    for index, _, rgb in iter_frames(path, np.asarray(indices, np.int64), size):
        gray[index] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    tracker_config = ClassicTrackerConfig(work_long_side=long_side, residual_sigma=base.residual_sigma,
                                          residual_floor_px=base.residual_floor_px, min_texture=base.min_texture)
    camera, moving, residual_mean = [], [], []
    for first, second in pairs:
        gap_s = (second - first) / info.fps
        motion = pair_motion(gray[first], gray[second], tracker_config)
        camera.append(np.median(np.linalg.norm(homography_flow(motion.planes[0], size), axis=-1)) / diagonal / gap_s)
        seen = textured(gray[first], base.min_texture)
        residual = np.where(seen, motion.residual[0], 0.0)
        threshold = robust_threshold(residual[seen] if seen.any() else residual, base.residual_sigma,
                                     base.residual_floor_px)
        moving.append(float(np.mean(residual > threshold)))
        residual_mean.append(float(residual[seen].mean()) / diagonal / gap_s if seen.any() else 0.0)
    if not pairs:
        return MotionStats(str(path), 0, 0.0, 0.0, 0.0)
    return MotionStats(path=str(path), n_pairs=len(pairs), camera_motion=float(np.median(camera)),
                       object_motion=float(np.percentile(moving, 90)), mean_residual=float(np.mean(residual_mean)))


def _verdict(stats: MotionStats, config: CurateConfig) -> tuple[bool, str]:
    camera_ok = stats.camera_motion >= config.min_camera_motion
    objects_ok = stats.object_motion >= config.min_object_motion
    camera = f"camera motion {stats.camera_motion:.4f} diag/s"
    objects = f"moving pixels {100 * stats.object_motion:.2f}%"
    if camera_ok or objects_ok:
        parts = ([f"{camera} ≥ {config.min_camera_motion}"] if camera_ok else []) + \
                ([f"{objects} ≥ {100 * config.min_object_motion:.2f}%"] if objects_ok else [])
        return True, "kept: " + " and ".join(parts)
    return False, (f"static: {camera} < {config.min_camera_motion} and "
                   f"{objects} < {100 * config.min_object_motion:.2f}%")


def curate(paths: Iterable, config: CurateConfig = CurateConfig(),
           progress: ProgressFn | None = None) -> list[CurationResult]:
    """Decide for every video whether it moves enough to keep; one result per path, in order.

    Unreadable videos come back as not kept with the VideoError message as the reason.
    ``progress(done, total)`` is called after each video.
    """
    paths = [str(Path(p)) for p in paths]
    results = []
    for done, path in enumerate(paths, start=1):
        try:
            stats = motion_statistics(path, config.n_frames, config.long_side, config)
        except VideoError as exc:
            results.append(CurationResult(path, False, f"unreadable: {exc}", None))
        else:
            kept, reason = _verdict(stats, config)
            results.append(CurationResult(path, kept, reason, stats))
        if progress is not None:
            progress(done, len(paths))
    return results
