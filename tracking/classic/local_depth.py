"""Robust local inverse depth of the static background (the epipolar model's depth map).

Under a translating camera each pixel's flow along its epipolar line gives an inverse depth ρ̂
(:func:`.background.inverse_depth`); a static scene's is piecewise smooth (planes: affine in
the pixel), a mover's is not. :func:`background_inverse_depth` fits it robustly from block
medians (:func:`block_medians`) by windowed affine fits; :func:`depth_fit` keeps what a refit
over fewer pixels needs (the second pass of :func:`.background.background_flow` leaves out the
movers' pixels and refits only what they reach).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "DepthFit",
    "background_inverse_depth",
    "block_medians",
    "depth_fit",
    "nan_median",
]


def nan_median(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Median along ``axis`` ignoring NaN (NaN where all are NaN); a sort, not numpy's masked-array path."""
    ordered = np.sort(np.moveaxis(values, axis, -1), axis=-1)  # NaN sorts last
    count = np.sum(np.isfinite(ordered), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def block_medians(rho: np.ndarray, usable: np.ndarray, block: int, previous: np.ndarray | None = None,
                  changed: np.ndarray | None = None) -> np.ndarray:
    """(h // block, w // block) medians of ``rho`` (h, w) over the ``usable`` pixels of each block (NaN where none).

    ``previous``, ``changed``: the medians of the same ``rho`` over another pixel set and the (h, w)
    bool pixels where that set differs from ``usable``; only the blocks holding such a pixel are
    computed again (the same values: a block's median depends on its own pixels only). The second
    pass of :func:`.background.background_flow` leaves out a few movers' pixels, so most blocks are unchanged.
    """
    height, width = rho.shape
    rows, cols = max(1, height // block), max(1, width // block)
    if previous is None:
        cropped = np.where(usable, rho, np.nan)[:rows * block, :cols * block]
        return nan_median(cropped.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(rows, cols, -1))
    touched = changed[:rows * block, :cols * block].reshape(rows, block, cols, block).any(axis=(1, 3))
    row, col = np.nonzero(touched)
    blocks = previous.copy()
    if len(row):
        # (k, block, block) pixels of the touched blocks: rows r·block + i, columns c·block + j
        ys = row[:, None, None] * block + np.arange(block)[None, :, None]
        xs = col[:, None, None] * block + np.arange(block)[None, None, :]
        blocks[row, col] = nan_median(np.where(usable[ys, xs], rho[ys, xs], np.nan).reshape(len(row), -1))
    return blocks


def background_inverse_depth(rho: np.ndarray, usable: np.ndarray, block: int = 8, window: int = 9,
                             choose_from: np.ndarray | None = None, blocks: np.ndarray | None = None) -> np.ndarray:
    """(h, w) float32 robust local background inverse depth of ``rho`` (h, w) over ``usable`` pixels.

    The inverse depth of a plane is an affine function of the pixel (1/Z = n·K⁻¹p / d), so
    the background is fitted locally by affine functions: medians of ``block`` × ``block``
    pixel blocks, then, around each block, an affine fit to the block medians of a
    ``window`` × ``window`` window by iteratively reweighted least squares (Cauchy weights
    at 2.4 robust standard deviations, three rounds from the median), so a mover covering
    less than half a window does not move it, and ground that recedes towards the horizon
    or the frame's edge is followed without the bias a plain median has there. The fits'
    values at the block centres are bilinearly resampled to (h, w); windows with fewer than
    4 usable blocks take the frame's median. Where two surfaces meet (a wall and the
    ground, two walls in a corner) one fit cannot follow both sides of the crease: with
    ``choose_from`` (h, w) each pixel takes, among the fit of its own window and the 8
    fits centred about a quarter of a window away, the one nearest ``choose_from`` there (a
    smoothed ρ̂: a static pixel finds the surface it is on; a mover's ρ̂ matches none of
    the surfaces around it, unless it covers most of a window). ``blocks``: :func:`block_medians`
    of ``rho`` over ``usable``, when already computed. :func:`depth_fit` gives the same with
    what a refit over fewer pixels needs.
    """
    return depth_fit(rho, usable, block, window, choose_from, blocks).depth


@dataclass(frozen=True, eq=False)
class DepthFit:
    """A :func:`background_inverse_depth` result with what :func:`depth_fit` needs to refit it.

    blocks:       (rows, cols) :func:`block_medians` it was fitted to.
    coefficients: (⌈rows/2⌉, ⌈cols/2⌉, 3) float64 affine fit (value, d/dx, d/dy per block) of the
                  window around every other block.
    depth:        (h, w) float32 background inverse depth (refits copy it; do not change it in place).
    """

    blocks: np.ndarray
    coefficients: np.ndarray
    depth: np.ndarray


def _window_design(window: int) -> tuple[np.ndarray, np.ndarray]:
    """(window², 3) design rows (1, dx, dy in blocks) of a window and their (window², 9) outer products."""
    half = window // 2
    offsets = np.arange(-half, window - half, dtype=np.float64)
    design = np.stack(np.broadcast_arrays(np.ones((window, window)), offsets[None, :], offsets[:, None]),
                      -1).reshape(-1, 3)
    return design, (design[:, :, None] * design[:, None, :]).reshape(-1, 9)


def _window_fits(values: np.ndarray, window: int, overall: float) -> np.ndarray:
    """(n, 3) robust affine fits of n windows' (n, window²) block medians (NaN where none), by IRLS."""
    design, outer = _window_design(window)
    present = np.isfinite(values)
    samples = np.where(present, values, 0.0)
    coefficients = np.zeros((len(values), 3))
    coefficients[:, 0] = np.nan_to_num(nan_median(values), nan=overall)
    absent = ~present
    # nan_median of the spreads, whose finite entries are the present samples' (same count each round)
    count = present.sum(axis=1)
    windows = np.arange(len(values))
    middle = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    regularise = 1e-6 * np.eye(3)
    for _ in range(3):
        residual = samples - coefficients @ design.T
        spread = np.abs(residual)
        spread[absent] = np.nan
        spread.sort(axis=1)  # NaN last
        median = np.where(count > 0, (spread[windows, middle[0]] + spread[windows, middle[1]]) / 2, np.nan)
        scale = np.maximum(np.nan_to_num(1.4826 * median, nan=1.0), 1e-6)[:, None]
        residual /= 2.4 * scale
        residual *= residual
        residual += 1.0
        weight = np.divide(present, residual)  # Cauchy weights, 0 where no sample
        normal = (weight @ outer).reshape(-1, 3, 3) + regularise
        coefficients = np.linalg.solve(normal, ((weight * samples) @ design)[..., None])[..., 0]
    coefficients[count < 4] = [overall, 0.0, 0.0]
    return coefficients


def _block_values(coefficients: np.ndarray, rows: int, cols: int, window: int, several: bool) -> np.ndarray:
    """(S, rows + 2, cols + 2) float32 values of the fits at each block and a ring around the frame:
    S = 1, the nearest fit's, or S = 9 with ``several``, the fits a quarter of a window away too."""
    fit_rows, fit_cols = coefficients.shape[:2]
    row, col = np.arange(-1, rows + 1), np.arange(-1, cols + 1)
    fit_row, fit_col = np.clip((row + 1) // 2, 0, fit_rows - 1), np.clip((col + 1) // 2, 0, fit_cols - 1)
    reach = max(1, window // 8)  # neighbouring fits a quarter of a window away, in fit steps of 2 blocks
    shifts = np.array([(dr, dc) for dr in (-reach, 0, reach) for dc in (-reach, 0, reach)] if several else [(0, 0)])
    source_row = np.clip(fit_row[None] + shifts[:, :1], 0, fit_rows - 1)
    source_col = np.clip(fit_col[None] + shifts[:, 1:], 0, fit_cols - 1)
    nearest = coefficients[source_row[:, :, None], source_col[:, None, :]]
    return (nearest[..., 0] + nearest[..., 1] * (col - 2 * source_col)[:, None, :]
            + nearest[..., 2] * (row - 2 * source_row)[:, :, None]).astype(np.float32)


def _resample(values: np.ndarray, block: int, crop: tuple[slice, slice], choose_from: np.ndarray | None) -> np.ndarray:
    """Bilinear (S, R, C) → (S, R·block, C·block) block values at pixels, cut to ``crop``: the one
    nearest ``choose_from`` (that crop's shape) at each pixel (the first on ties), or the only one."""
    size = (values.shape[2] * block, values.shape[1] * block)
    best, best_error = None, None
    for candidate in values:
        candidate = cv2.resize(candidate, size, interpolation=cv2.INTER_LINEAR)[crop]
        if choose_from is None:
            return candidate
        error = cv2.absdiff(candidate, choose_from)
        if best is None:
            best, best_error = candidate.copy(), error
        else:  # OpenCV's compare and masked copy: numpy's where= copy was slower
            cv2.copyTo(candidate, cv2.compare(error, best_error, cv2.CMP_LT), best)
            np.minimum(error, best_error, out=best_error)
    return best


def depth_fit(rho: np.ndarray, usable: np.ndarray, block: int = 8, window: int = 9,
              choose_from: np.ndarray | None = None, blocks: np.ndarray | None = None,
              previous: DepthFit | None = None, changed: np.ndarray | None = None) -> DepthFit:
    """:func:`background_inverse_depth` of ``rho`` (h, w) over ``usable`` as a :class:`DepthFit`.

    With ``previous`` (the fit of the same ``rho``, ``block``, ``window`` and ``choose_from``
    over other pixels) and ``changed`` ((h, w) bool, the pixels where those and ``usable``
    differ) only what those pixels reach is fitted again: the blocks holding one, the windows
    holding a block whose median moved, and the pixels whose resampling reads a fit that moved.
    The second pass of :func:`.background.background_flow` leaves out ~1% of the blocks, which reach ~12%
    of the windows (dev 103–105). The result is a fit from scratch up to rounding: BLAS
    products over a subset of the windows may round the last bit differently.
    """
    height, width = rho.shape
    if previous is not None:
        blocks = block_medians(rho, usable, block, previous.blocks, changed)
    elif blocks is None:
        blocks = block_medians(rho, usable, block)
    rows, cols = blocks.shape
    overall = float(nan_median(blocks.ravel())) if np.isfinite(blocks).any() else 0.0
    half = window // 2
    several = choose_from is not None
    # Fits every other block in each direction (a quarter of the work; neighbouring windows
    # share most of their samples), each evaluated at its own block and the next ones.
    windows = sliding_window_view(np.pad(blocks, half, constant_values=np.nan), (window, window))[::2, ::2]
    if previous is None:
        coefficients = _window_fits(windows.reshape(-1, window * window), window, overall)
        coefficients = coefficients.reshape(*windows.shape[:2], 3)
        # Each block (and a ring of blocks around the frame, so bilinear resampling is exact up
        # to the border) takes the affine fit of the nearest fitted block, or with ``choose_from``
        # the fit among it and its 8 neighbours whose value is nearest at each pixel.
        values = _block_values(coefficients, rows, cols, window, several)
        crop = (slice(block, block + height), slice(block, block + width))
        return DepthFit(blocks, coefficients, _resample(values, block, crop, choose_from))
    moved = (blocks != previous.blocks) & ~(np.isnan(blocks) & np.isnan(previous.blocks))
    refit = sliding_window_view(np.pad(moved, half), (window, window))[::2, ::2].any(axis=(2, 3))
    if previous.blocks is not blocks and np.isfinite(previous.blocks).any():
        if overall != float(nan_median(previous.blocks.ravel())):  # windows under 4 samples take it
            refit |= np.isfinite(windows).sum(axis=(2, 3)) < 4
    if not refit.any():
        return DepthFit(blocks, previous.coefficients, previous.depth)
    coefficients = previous.coefficients.copy()
    coefficients[refit] = _window_fits(windows[refit].reshape(-1, window * window), window, overall)
    values = _block_values(coefficients, rows, cols, window, several)
    cells = (values != _block_values(previous.coefficients, rows, cols, window, several)).any(axis=0)
    cells = cv2.dilate(cells.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # bilinear taps reach a block
    if not cells.any():
        return DepthFit(blocks, coefficients, previous.depth)
    row, col = np.nonzero(cells)
    top, bottom, left, right = row.min(), row.max() + 1, col.min(), col.max() + 1
    # the changed canvas blocks' bounding box, resampled with a block of margin (or up to the canvas
    # edge, where the full resampling clamps alike) so that its inside reads the taps a full one reads
    top_m, bottom_m = max(top - 1, 0), min(bottom + 1, rows + 2)
    left_m, right_m = max(left - 1, 0), min(right + 1, cols + 2)
    # its part inside the frame, in frame pixels (the canvas starts a block before the frame)
    y0, y1 = max(top * block, block) - block, min(bottom * block, block + height) - block
    x0, x1 = max(left * block, block) - block, min(right * block, block + width) - block
    depth = previous.depth.copy()
    if y1 > y0 and x1 > x0:
        crop = (slice(y0 + block - top_m * block, y1 + block - top_m * block),
                slice(x0 + block - left_m * block, x1 + block - left_m * block))
        guide = None if choose_from is None else choose_from[y0:y1, x0:x1]
        depth[y0:y1, x0:x1] = _resample(np.ascontiguousarray(values[:, top_m:bottom_m, left_m:right_m]), block,
                                        crop, guide)
    return DepthFit(blocks, coefficients, depth)
