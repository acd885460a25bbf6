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

:func:`long_step_moving` (``long_step_frames``, off by default) tests frame t against frame t − k
directly: the one-step flows composed over k steps (:func:`chained_flow`), a background model of
their own, a residual thresholded like the one-step one. It flags more of the movers of orbiting
and walking cameras, but the tracks built on them are worse, and it does not find the subjects of the
follow scenes whose one-step flow is wrong (figures in the config and in long_step_moving).

    memory = MotionMemory(decay=0.75)
    evidence = memory.update(motion, back, kept)  # (h, w) px per step, like the residual
    moving |= long_baseline_moving(evidence, residual, threshold, observable, config)
    ClipMemory(config, h, w).moving(t, residual, threshold, observable, flows, forward, backward)  # all of it
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.background import (
    background_flow,
    consistent_flow,
    fit_background,
    inside,
    relative_residual,
    robust_threshold,
    sample_along_flow,
)
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


def chained_flow(backward, forward, t: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 2) float32 flow of frame t to frame t − ``steps`` composed from the one-step flows, and (h, w) bool
    where every step passed the forward–backward test and stayed inside the frame.

    backward, forward: (T − 1, h, w, 2) the clip's flows t + 1 → t and t → t + 1 (float16 or float32; only pairs
    t − steps … t − 1 are read). Composition: F(p) = b_{t−1}(p) + b_{t−2}(p + b_{t−1}(p)) + …, each step read
    where the earlier ones took p (bilinear)."""
    total, ok = None, None
    for pair in range(t - 1, t - 1 - steps, -1):
        back = np.asarray(backward[pair], np.float32)
        trusted = consistent_flow(back, np.asarray(forward[pair], np.float32)).astype(np.float32)
        if total is None:
            total, ok = back.copy(), trusted > 0.5
            continue
        ok &= sample_along_flow(trusted, total) > 0.5
        total += sample_along_flow(back, total)
    return total, ok & inside(total, 0.0)


def grid_matches(flow: np.ndarray, ok: np.ndarray, step_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float32 pixels every ``step_px`` where ``ok`` (h, w) bool and where ``flow`` (h, w, 2) takes them."""
    ys, xs = np.mgrid[step_px // 2:flow.shape[0]:step_px, step_px // 2:flow.shape[1]:step_px]
    keep = ok[ys, xs]
    points = np.stack([xs[keep], ys[keep]], -1).astype(np.float32)
    return points, points + flow[ys[keep], xs[keep]].astype(np.float32)


def long_step_moving(observable: np.ndarray, backward, forward, t: int,
                     config: ClassicTrackerConfig = ClassicTrackerConfig()) -> tuple[np.ndarray, float] | None:
    """(h, w) bool pixels of frame t that move against the background between frame t and frame t − k
    (k = ``long_step_frames``), and the threshold of their relative residual; None where there are fewer than k
    earlier frames, fewer than 100 usable pixels, or the k-step background is not epipolar.

    observable: (h, w) bool textured pixels of frame t; backward, forward: as :func:`chained_flow`. The k-step flow
    (:func:`chained_flow`) gets a background model of its own (:func:`.background.fit_background` on its pixels
    every ``long_step_grid_px``, where every step passed the forward–backward test, then
    :func:`.background.background_flow`, plane bound included) and the relative residual against it, zero off
    the chain's trusted pixels, on blank ones and where the background leaves the frame (``border_fraction``),
    thresholded like the one-step residual: max(``residual_floor_px``, median + ``long_step_sigma`` · 1.4826 ·
    MAD over the textured trusted pixels). A baseline k times as long separates the two-view pose from the
    rotation–translation valley a short one leaves it in (see :mod:`.pose`), and a mover's departure from
    its epipolar line adds up over the steps while the flow's error does not grow as fast.

    What it does not do (measured): find the subjects of follow scenes 115 and 120. It composes the one-step
    flows, and there those are wrong: the camera turns 10–15° a step and the background moves 70–125 px a step
    (672 px frames), while DIS flow finds 16–30 px (it and the phase correlation lock onto the subject, which
    stays put in the image), so the flow misses the scene's true flow (projected from the true depth and
    poses) by a median of 88 px on the two-frame steps (0.7–12 px on the one-frame steps); LK corners are as
    wrong (0–35 % within 3 px). On 110 the error is 4.5 px, on 105 1 px."""
    steps = config.long_step_frames
    if steps < 2 or t < steps:
        return None
    flow, ok = chained_flow(backward, forward, t, steps)
    height, width = flow.shape[:2]
    points_a, points_b = grid_matches(flow, ok, config.long_step_grid_px)
    model = fit_background(points_a, points_b, (width, height), config)
    if model.kind != "epipolar":
        return None
    predicted = background_flow(flow, model, ok, config)
    residual = relative_residual(flow, predicted, config.flow_error_fraction)
    residual[~inside(predicted, config.border_fraction * max(height, width))] = 0.0  # as the one-step residual
    residual[~ok] = 0.0
    residual[~observable] = 0.0
    values = residual[observable & ok]
    if values.size < 100:
        return None
    threshold = robust_threshold(values, config.long_step_sigma, config.residual_floor_px)
    return residual > threshold, threshold

