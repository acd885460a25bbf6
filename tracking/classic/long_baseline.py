"""Longer-baseline motion evidence of the classic tracker (issue 11: moving-camera recall).

One frame step is a short baseline: under a moving camera a slow mover's residual against the
background (0.3–1.5 px per step) stays under the frame's threshold, which the flow's noise sets.
Over k steps a mover's camera-compensated motion adds up coherently (it keeps its direction),
while the flow's noise, whose direction changes from step to step, adds up much less. So each
frame's compensated motion, divided like the residual by 1 + ``flow_error_fraction`` ·
|background flow|, is summed along the flow with the earlier frames' (:class:`MotionMemory`: a
leaky sum carried from frame t − 1 to frame t on the stored backward flow, reset where that
flow fails the forward–backward test), and :func:`long_baseline_moving` thresholds the sum
robustly like the one-step residual. No new dense flow is taken: the sum reads the flows and
compensated motion the pair loop already made. Only frames with a translating camera (an epipolar
background model) use it, and only its movers apart from the one-step ones (:func:`apart`).

Off by default (``long_baseline_decay`` 0): it finds slow movers on hand-built scenes (tests), but on
the 18 moving-camera seeds (orbit, walk and follow of 103–130; ``benchmarks/detection_audit.py``)
at decay 0.75 it found 655 object-frames of 2124 instead of 605, with 3526 detections instead
of 3025 (about 9 false for each one found; sigma 6: 644 / 3359, sigma 8 and support 0.5: 627 /
3231; the motion across the epipolar lines only: 621 / 3269), and ``benchmarks/track_diagnose.py``
on dev 101–110 and those seeds went from recall 35 / 102, precision 35 / 63 to 32 / 102, 32 / 67
(all pixels it flags, not only those apart: 36 / 102, 36 / 77). What it adds is mostly the
background's persistent depth errors, not movers.

    memory = MotionMemory(decay=0.75)
    evidence = memory.update(motion, back, kept)  # (h, w) px per step, like the residual
    moving |= long_baseline_moving(evidence, residual, threshold, observable, config)
    ClipMemory(config, h, w).moving(t, residual, threshold, observable, flows, forward, backward)  # all of it
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.background import consistent_flow, sample_along_flow
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.segment import ellipse, moving_components

__all__ = ["ClipMemory", "MotionMemory", "apart", "long_baseline_moving"]


class MotionMemory:
    """Leaky sum of a clip's per-frame compensated motion along the flow, frame by frame in order.

    A(t, p) = m(t, p) + decay · A(t − 1, p + b(p)) where the flow t → t − 1, b, passes the
    forward–backward test, else m(t, p); the evidence is (1 − decay) · |A(t, p)|. A mover whose
    compensated motion m keeps its size and direction reaches |m| (the one-step residual); noise
    of spread σ that changes direction from frame to frame reaches about σ · √((1 − decay) /
    (1 + decay)) (0.38 σ at decay 0.75): the threshold, set by the noise, falls further than
    the mover's evidence. Holds one (h, w, 2) float32 sum (no memory that grows with T).
    """

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)
        self._sum: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        """Whether no frame has been added yet."""
        return self._sum is None

    def update(self, motion: np.ndarray, back: np.ndarray | None = None,
               kept: np.ndarray | None = None) -> np.ndarray:
        """(h, w) float32 evidence of frame t from its (h, w, 2) normalised compensated motion
        ``motion``, the flow t → t − 1 ``back`` (h, w, 2) and ``kept`` (h, w) bool where that flow
        is trusted (None: all); without ``back`` (the first frame) the sum starts again."""
        motion = np.asarray(motion, np.float32)
        if back is None or self._sum is None or self._sum.shape != motion.shape:
            total = motion.copy()
        else:
            earlier = sample_along_flow(self._sum, back)
            earlier *= np.float32(self.decay)
            if kept is not None:
                earlier[~kept] = 0.0
            total = earlier
            total += motion
        self._sum = total
        evidence = cv2.magnitude(total[..., 0], total[..., 1])
        evidence *= np.float32(1.0 - self.decay)
        return evidence


def long_baseline_moving(evidence: np.ndarray, residual: np.ndarray, threshold: float, observable: np.ndarray,
                         config: ClassicTrackerConfig = ClassicTrackerConfig()) -> np.ndarray:
    """(h, w) bool pixels the long-baseline ``evidence`` (h, w) finds moving.

    The evidence must exceed max(``long_baseline_floor_px``, median + ``long_baseline_sigma`` ·
    1.4826 · MAD) over the ``observable`` (h, w) bool pixels, and the one-step ``residual`` (h, w)
    must still reach ``long_baseline_support`` × the frame's ``threshold`` (the pixel moves now:
    the sum carried onto background a mover has just left fades without it).
    """
    values = evidence[observable] if observable.any() else evidence.ravel()
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    level = max(config.long_baseline_floor_px, median + config.long_baseline_sigma * 1.4826 * mad)
    return (evidence > level) & (residual >= config.long_baseline_support * threshold) & observable


class ClipMemory:
    """A :class:`MotionMemory` fed by motion.compute_motion, frame by frame in order (frame t after t − 1)."""

    def __init__(self, config: ClassicTrackerConfig, height: int, width: int) -> None:
        self.config = config
        self.memory = MotionMemory(config.long_baseline_decay)
        self._shape = (height, width)

    def forget(self) -> None:
        """Start the sum again at the next frame (a frame was left out)."""
        self.memory = MotionMemory(self.config.long_baseline_decay)

    def moving(self, t: int, residual: np.ndarray, threshold: float, observable: np.ndarray, flows: np.ndarray,
               forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
        """(h, w) bool pixels of frame t that the long baseline finds moving (:func:`long_baseline_moving`).

        residual: (h, w) frame t's one-step relative residual (0 where it shows no motion); threshold:
        its threshold; observable: (h, w) bool textured pixels; flows: (2, h·w, 2) frame t's image flow
        and compensated motion per step; forward, backward: (T − 1, h, w, 2) the clip's flows t → t + 1
        and t + 1 → t (only pair t − 1 is read)."""
        height, width = self._shape
        image, motion = (np.asarray(field, np.float32).reshape(height, width, 2) for field in flows)
        background = image - motion
        scale = cv2.magnitude(background[..., 0], background[..., 1])
        scale *= np.float32(self.config.flow_error_fraction)
        scale += np.float32(1.0)
        motion = motion / scale[..., None]
        motion[residual <= 0] = 0.0  # untextured, or at the border: no motion, as in the residual
        if t == 0 or self.memory.empty:
            evidence = self.memory.update(motion)
        else:
            back, forth = backward[t - 1], forward[t - 1]
            evidence = self.memory.update(motion, back, consistent_flow(back, forth))
        return apart(long_baseline_moving(evidence, residual, threshold, observable, self.config),
                     residual > threshold, self.config)


def apart(found: np.ndarray, moving: np.ndarray, config: ClassicTrackerConfig = ClassicTrackerConfig()) -> np.ndarray:
    """The connected parts of ``found`` (h, w) bool that keep clear of the one-step ``moving`` (h, w) bool mask's
    components (:func:`.segment.moving_components`) by more than twice the closing's reach.

    The longer baseline only adds movers the one step missed: pixels it adds around a mover the one
    step already found would join it with its neighbours or the background behind it (measured on the
    dev and moving-camera seeds: more merged detections, and tracks lost to them)."""
    components = moving_components(moving, config) if moving.any() else []
    if not components or not found.any():
        return found
    height, width = moving.shape
    taken = np.logical_or.reduce(components).astype(np.uint8)
    near = cv2.dilate(taken, ellipse(4 * round(config.close_fraction * max(height, width)) + 1)).astype(bool)
    _, labels = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[near & found])
    return found & ~np.isin(labels, touching)
