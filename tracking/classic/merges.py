"""Frames where a track's box lies over two movers (used by :mod:`recon4d.tracking.classic.tracker`).

Movers that touch, cross or walk together share one motion mask; the track on it then holds a box
over both, which names neither in a question and which the identity measures flip between
(``benchmarks/switch_diagnose.py``: "over_both"). Where association could not split them, such a
frame is no observation of one object: the tracker reports it as not observed
(``Tracks2D.observed``), so the QA compiler names nothing by it. Two signs, both on the final
boxes (:func:`merged_frames`):

- the box's area steps up against the track's own detected boxes before and after and comes back
  down (:func:`stepped_up`): a second mover joined it and left again (one object changes size
  slowly: it approaches, recedes, enters or leaves the view from one side only);
- another track that was not detected there (coasted, carried back) has its box mostly inside this
  one (:func:`holds_coasted`): its object is there, inside this detection.

Both are off by default (``merge_step_ratio``, ``merge_inside``: figures in their docstrings): the
area step finds boxes that mostly miss their object (seeds 101-130: 31 % of the flagged boxes lie on
it, 52 % of all), but questions named by the rest answered no better on seeds 131-150.
"""

from __future__ import annotations

import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig

__all__ = ["holds_coasted", "merged_frames", "stepped_up"]


def _areas(boxes: np.ndarray) -> np.ndarray:
    """(K, T) box areas in px² of (K, T, 4) xyxy boxes, NaN where a box is not finite."""
    size = np.clip(boxes[..., 2:] - boxes[..., :2], 0.0, None)
    return size[..., 0] * size[..., 1]


def stepped_up(boxes: np.ndarray, detected: np.ndarray, ratio: float, window: int) -> np.ndarray:
    """(K, T) bool: detected boxes whose area exceeds ``ratio`` times the lower quartile of the areas of
    the track's ``window`` detected boxes just before it and ``ratio`` times that of the ``window`` just
    after it (only the side there is, at the ends of a track; neither side: False).

    boxes: (K, T, 4) xyxy px, NaN where not visible; detected: (K, T) bool. The lower quartile, not the
    median, so that a run of up to three quarters of a window of merged boxes still compares with the
    boxes of one mover around it.
    """
    area = _areas(np.asarray(boxes, np.float64))
    merged = np.zeros(detected.shape, bool)
    for k in range(detected.shape[0]):
        frames = np.flatnonzero(detected[k] & np.isfinite(area[k]) & (np.nan_to_num(area[k]) > 0))
        values = area[k, frames]
        for i, t in enumerate(frames):
            sides = [values[max(0, i - window):i], values[i + 1:i + 1 + window]]
            levels = [np.quantile(side, 0.25) for side in sides if len(side)]
            merged[k, t] = bool(levels) and all(values[i] > ratio * level for level in levels)
    return merged


def holds_coasted(boxes: np.ndarray, visible: np.ndarray, detected: np.ndarray, inside: float) -> np.ndarray:
    """(K, T) bool: detected boxes that hold at least ``inside`` of the box of another track visible but
    not detected in that frame.

    boxes: (K, T, 4) xyxy px; visible, detected: (K, T) bool.
    """
    boxes = np.asarray(boxes, np.float64)
    n_tracks = boxes.shape[0]
    merged = np.zeros(detected.shape, bool)
    if n_tracks < 2:
        return merged
    lo = np.maximum(boxes[:, None, :, :2], boxes[None, :, :, :2])  # (K, J, T, 2)
    hi = np.minimum(boxes[:, None, :, 2:], boxes[None, :, :, 2:])
    overlap = np.prod(np.clip(np.nan_to_num(hi - lo), 0.0, None), axis=-1)  # (K, J, T)
    share = overlap / np.maximum(np.nan_to_num(_areas(boxes)), 1e-9)[None]  # of track j's box
    coasted = visible & ~detected
    holds = detected[:, None] & coasted[None] & (share >= inside)
    holds[np.arange(n_tracks), np.arange(n_tracks)] = False
    return holds.any(axis=1)


def merged_frames(boxes: np.ndarray, visible: np.ndarray, detected: np.ndarray,
                  config: ClassicTrackerConfig = ClassicTrackerConfig()) -> np.ndarray:
    """(K, T) bool: detected frames whose box lies over two movers (:func:`stepped_up` with
    ``merge_step_ratio`` and ``merge_window``, or :func:`holds_coasted` with ``merge_inside``; either
    off at 0). boxes: (K, T, 4) xyxy px, NaN where not visible; visible, detected: (K, T) bool."""
    merged = np.zeros(detected.shape, bool)
    if config.merge_step_ratio > 0:
        merged |= stepped_up(boxes, detected & visible, config.merge_step_ratio, config.merge_window)
    if config.merge_inside > 0:
        merged |= holds_coasted(boxes, visible, detected & visible, config.merge_inside)
    return merged
