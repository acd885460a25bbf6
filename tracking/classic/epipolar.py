"""How far motion leaves the epipolar lines (used by :mod:`~recon4d.tracking.classic.cleanup`).

Under a camera that translates over a 3D scene (the ``epipolar`` background model of
:mod:`~recon4d.tracking.classic.background`) every static pixel p moves along its epipolar
line, by an amount set by its depth. The depth is what the background model has to guess
(a local fit of the inverse depth), and where it guesses wrong (the edge of a pillar in
front of a far wall, a crease between the ground and a wall) the residual flow points along
the line: a false mover. Its distance from the line does not depend on depth at all, so a
track whose pixels stay on their epipolar lines in most frames is indistinguishable from
background (or a mover walking exactly along the lines, which is not found either way).

:func:`epipolar_distance` gives the distance per pixel of one frame pair;
:func:`epipolar_offset` a track's median offset and the background's beside it.
"""

from __future__ import annotations

import numpy as np

from recon4d.tracking.classic.background import BackgroundMotion

__all__ = [
    "epipolar_distance",
    "epipolar_offset",
    "fundamental_matrix",
]


def fundamental_matrix(model: BackgroundMotion) -> np.ndarray:
    """(3, 3) F = K⁻ᵀ [t]ₓ R K⁻¹ of an epipolar model: x_bᵀ F x_a = 0 for every static pixel."""
    inverse = np.linalg.inv(model.intrinsics)
    tx, ty, tz = model.translation
    skew = np.array([[0.0, -tz, ty], [tz, 0.0, -tx], [-ty, tx, 0.0]])
    return inverse.T @ skew @ model.rotation @ inverse


def epipolar_distance(flow: np.ndarray, model: BackgroundMotion, where: np.ndarray | None = None) -> np.ndarray:
    """Distance (pixels) of p + flow(p) from the epipolar line of p in frame b.

    flow: (h, w, 2) a → b; model: an ``epipolar`` :class:`BackgroundMotion` a → b; where:
    optional (h, w) bool selecting pixels. Returns (h, w) float64, or (N,) for the N
    selected pixels in row-major order.
    """
    height, width = flow.shape[:2]
    if where is None:
        ys, xs = np.mgrid[0:height, 0:width]
        ys, xs, moved = ys.ravel(), xs.ravel(), flow.reshape(-1, 2)
    else:
        ys, xs = np.nonzero(where)
        moved = flow[ys, xs]
    points = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float64)
    lines = points @ fundamental_matrix(model).T  # epipolar line of each p in frame b
    targets = points[:, :2] + moved
    distance = (np.abs(targets[:, 0] * lines[:, 0] + targets[:, 1] * lines[:, 1] + lines[:, 2])
                / np.maximum(np.hypot(lines[:, 0], lines[:, 1]), 1e-12))
    return distance.reshape(height, width) if where is None else distance


def epipolar_offset(masks: dict, frames: list[int], forward_flow: np.ndarray, backgrounds: list,
                    moving: np.ndarray, noise_cache: dict | None = None) -> tuple[float, float, int]:
    """A track's median distance from the epipolar lines, the background's, and the frames used.

    masks: frame → (h, w) bool track mask; frames: the track's detected frames; forward_flow:
    (T−1, h, w, 2) flow t → t+1; backgrounds: T−1 :class:`BackgroundMotion` t → t+1; moving:
    (T, h, w) bool moving pixels; noise_cache: frame → background level, filled and reused
    across the tracks of a clip. Over the frames t whose pair t → t+1 has an epipolar model,
    the track's value is the median distance of its moving pixels (all its pixels when none
    move) and the background's that of the frame's pixels that do not move (every fourth row
    and column: a sample is enough for its level); returns the medians of both over those
    frames (NaN when there are none) and their number.
    """
    noise_cache = {} if noise_cache is None else noise_cache
    offsets, noise = [], []
    for t in frames:
        if t >= len(backgrounds) or backgrounds[t].kind != "epipolar" or not masks[t].any():
            continue
        inner = masks[t] & moving[t]
        offsets.append(float(np.median(epipolar_distance(forward_flow[t], backgrounds[t],
                                                         inner if inner.any() else masks[t]))))
        if t not in noise_cache:
            still = np.zeros(moving[t].shape, bool)
            still[::4, ::4] = ~moving[t][::4, ::4]
            noise_cache[t] = (float(np.median(epipolar_distance(forward_flow[t], backgrounds[t], still)))
                              if still.any() else 0.0)
        noise.append(noise_cache[t])
    if not offsets:
        return float("nan"), float("nan"), 0
    return float(np.median(offsets)), float(np.median(noise)), len(offsets)
