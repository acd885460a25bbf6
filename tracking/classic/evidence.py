"""How strongly each track's detections move against the background (the tracker's detection scores).

The classic tracker finds movers where the dense flow departs from the background's predicted
flow (:mod:`~recon4d.tracking.classic.motion`). A real mover departs by far more than the frame's
motion threshold over most of its mask; a flow error of the background (repetitive texture, a
depth the background model got wrong) barely clears it, over a few pixels. Each detected frame of a
track gets

- ``share``: the fraction of its mask whose residual passed the frame's threshold, and
- ``strength``: the mean relative residual over its mask (|velocity| / (1 + ``flow_error_fraction`` ·
  |background flow|), as the motion test measures it) over the frame's threshold;

and its detection score is ``strength`` / ``full_strength`` clipped to [0, 1]
(:func:`detection_scores`). Frames where the track was carried or coasted (no detection) have no
score (NaN): nothing was measured there.

    frame_evidence(mask, moving, image_flow, velocity, threshold, flow_error_fraction) -> (share, strength)
    detection_scores(strength, full_strength) -> scores in [0, 1] / NaN

A mover's motion also crosses its edges: at its outline and its texture the compensated motion has a
component along the image gradient. A flow error on a long straight edge (the aperture problem: the
flow along the edge is free, so the background's predicted flow and the measured one part along it)
moves only along the edge, across the gradient (:func:`normal_motion`).

    normal_motion(masks, frames, images, velocity) -> median |cos| of motion and gradient
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.boxes import mask_window

__all__ = ["detection_scores", "frame_evidence", "normal_motion", "track_evidence"]


def frame_evidence(mask: np.ndarray, moving: np.ndarray, image_flow: np.ndarray, velocity: np.ndarray,
                   threshold: float, flow_error_fraction: float) -> tuple[float, float]:
    """(share, strength) of one detection: mask (h, w) bool; moving (h, w) bool, the pixels that passed
    the motion test; image_flow and velocity (h, w, 2) px per step, the image motion and its part the
    background does not explain (0 off the frame's moving components, which count as still);
    threshold: the frame's motion threshold (relative residual, > 0). NaN, NaN for an empty mask."""
    if not mask.any():
        return np.nan, np.nan
    own = velocity[mask].astype(np.float64)
    background = image_flow[mask].astype(np.float64) - own
    residual = np.hypot(own[:, 0], own[:, 1]) / (1.0 + flow_error_fraction * np.hypot(background[:, 0],
                                                                                       background[:, 1]))
    return float(moving[mask].mean()), float(residual.mean() / max(float(threshold), 1e-6))


def track_evidence(tracks, motion, flow_error_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(share, strength), each (K, T) float64, of the detected frames of ``tracks`` (K
    :class:`~recon4d.tracking.classic.association.Track`, masks at the working resolution of
    ``motion``, a :class:`~recon4d.tracking.classic.motion.MotionField`); NaN on frames a track was
    not detected in. Frame-major: each frame's motion is unpacked once."""
    n_frames = len(motion.moving)
    share = np.full((len(tracks), n_frames), np.nan)
    strength = np.full((len(tracks), n_frames), np.nan)
    present = sorted((t, k) for k, track in enumerate(tracks) for t in track.detected)
    frame = None
    for t, k in present:
        if frame != t:
            frame, moving, image_flow, velocity = t, motion.moving[t], motion.image_flow[t], motion.velocity[t]
        share[k, t], strength[k, t] = frame_evidence(tracks[k].masks[t], moving, image_flow, velocity,
                                                     float(motion.thresholds[t]), flow_error_fraction)
    return share, strength


def detection_scores(strength: np.ndarray, full_strength: float) -> np.ndarray:
    """Detection scores, float32 in [0, 1] (NaN kept), of mean residuals over the motion threshold
    ``strength`` (any shape): ``strength`` / ``full_strength`` clipped, so a detection whose pixels
    move ``full_strength`` times the threshold or more on average scores 1."""
    with np.errstate(invalid="ignore"):
        return np.clip(np.asarray(strength, np.float64) / full_strength, 0.0, 1.0).astype(np.float32)


def normal_motion(masks, frames: list[int], images: np.ndarray, velocity) -> float:
    """How much a track's compensated motion crosses its image edges: the median over ``frames`` of the
    median |cos| of the angle between the compensated velocity and the image gradient at the pixels of
    the mask holding the stronger half of its gradients (Sobel of the grey image); NaN when no frame
    has 4 such pixels that move.

    masks: frame → (h, w) bool; images: (T, h, w, 3) uint8 RGB; velocity: frame → (h, w, 2) compensated
    flow px. Random directions give 2/π ≈ 0.64; a mover crosses its outline and texture (0.3 and up on
    the dev scenes), a flow error along a long straight edge of static scene stays near 0 (0.1).
    """
    values = []
    for t in frames:
        mask = masks[t]
        if not mask.any():
            continue
        window = mask_window(mask, 1)
        gray = cv2.cvtColor(np.ascontiguousarray(images[t][window]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        inner = mask[window]
        gradient = np.stack([cv2.Sobel(gray, cv2.CV_32F, 1, 0)[inner], cv2.Sobel(gray, cv2.CV_32F, 0, 1)[inner]], -1)
        motion = np.asarray(velocity[t], np.float32)[window][inner]
        strength, speed = np.linalg.norm(gradient, axis=-1), np.linalg.norm(motion, axis=-1)
        strong = (strength >= np.median(strength)) & (strength > 0) & (speed > 0)
        if np.count_nonzero(strong) < 4:
            continue
        cosine = np.abs(np.sum(gradient[strong] * motion[strong], axis=-1)) / (strength[strong] * speed[strong])
        values.append(float(np.median(cosine)))
    return float(np.median(values)) if values else float("nan")
