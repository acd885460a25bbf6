"""Lift 2D object masks to per-frame 3D centres (DESIGN §5).

An object's centre in frame t is a statistic of the valid camera-frame points under its
(optionally eroded) mask; valid means finite, in front of the camera, confident and not on a
depth edge, as in the π³ reference pipeline (DESIGN §4: sigmoid(conf) > 0.1, depth-edge
rtol 0.03). The DSR reference takes the plain mean; median and trimmed mean resist the
background pixels a loose mask lets in.

    valid_point_mask(local_points, conf, config)           -> (T, H, W) bool
    lift_objects(masks, local_points, conf, cam_to_world)  -> LiftResult (recon4d.types)

The work runs in numba kernels (``recon4d.lift.kernels``); ``_lift_numpy`` and
``_valid_point_mask_numpy`` are the vectorised numpy references the tests hold them to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from recon4d.checks import check_shape
from recon4d.types import FRAME_BATCH, LiftResult

_ESTIMATORS = ("mean", "median", "trimmed")


@dataclass(frozen=True)
class LiftConfig:
    """How valid points are chosen and summarised into one centre per object and frame."""

    conf_threshold: float = 0.1
    """Keep pixels whose confidence (already in [0, 1], post-sigmoid) is > this (π³: 0.1)."""
    depth_edge_rtol: float | None = 0.03
    """Drop pixels whose 3×3 depth range over their own depth exceeds this (π³: 0.03); None: off."""
    erode_px: int = 0
    """Erode each mask by a (2r+1)×(2r+1) square first; the frame border does not erode."""
    estimator: Literal["mean", "median", "trimmed"] = "mean"
    """Centre statistic: "mean" (the DSR reference), "median" or "trimmed" (both per axis)."""
    trim_fraction: float = 0.1
    """For "trimmed": int(trim_fraction · n) values dropped at each end of each axis."""
    conf_weighted: bool = False
    """For "mean": weight each point by its confidence (plain mean when conf is None)."""
    min_points: int = 1
    """An object with fewer valid points in a frame is not visible in that frame."""
    extent_quantiles: tuple[float, float] | None = (0.05, 0.95)
    """Extent = per-axis range between these quantiles of the points (camera frame); None: skip."""

    def __post_init__(self) -> None:
        if self.estimator not in _ESTIMATORS:
            raise ValueError(f"LiftConfig.estimator must be one of {_ESTIMATORS}, not {self.estimator!r}.")
        if not 0.0 <= self.trim_fraction < 0.5:
            raise ValueError(f"LiftConfig.trim_fraction must be in [0, 0.5), not {self.trim_fraction}.")
        if not np.isfinite(self.conf_threshold):
            raise ValueError(f"LiftConfig.conf_threshold must be finite, not {self.conf_threshold}.")
        if self.depth_edge_rtol is not None and not self.depth_edge_rtol >= 0.0:
            raise ValueError(f"LiftConfig.depth_edge_rtol must be >= 0 or None, not {self.depth_edge_rtol}.")
        if int(self.erode_px) != self.erode_px or self.erode_px < 0:
            raise ValueError(f"LiftConfig.erode_px must be a non-negative integer, not {self.erode_px}.")
        if int(self.min_points) != self.min_points or self.min_points < 1:
            raise ValueError(f"LiftConfig.min_points must be an integer >= 1, not {self.min_points}.")
        if self.extent_quantiles is not None:
            q_lo, q_hi = self.extent_quantiles
            if not 0.0 <= q_lo <= q_hi <= 1.0:
                raise ValueError(
                    "LiftConfig.extent_quantiles must satisfy 0 <= lo <= hi <= 1, "
                    f"not {self.extent_quantiles}."
                )


def _check_clip(masks, local_points, conf, cam_to_world, visible) -> dict[str, int]:
    """Shapes and dtypes of one clip's arrays; raises ShapeError naming the culprit. Masks may
    have another frame size than the point maps (they are resized)."""
    dims = check_shape("masks", masks, ("K", "T", "h", "w"), dtype_kind="b")
    dims = check_shape("local_points", local_points, ("T", "H", "W", 3), dims, dtype_kind="f")
    if conf is not None:
        dims = check_shape("conf", conf, ("T", "H", "W"), dims, dtype_kind="f")
    if visible is not None:
        dims = check_shape("visible", visible, ("K", "T"), dims, dtype_kind="b")
    return check_shape("cam_to_world", cam_to_world, ("T", 4, 4), dims, dtype_kind="f")


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of masks (..., h, w) bool to ``size`` = (height, width): each
    output pixel takes the mask pixel under its centre (exact, no interpolation)."""
    height, width = size
    src_h, src_w = masks.shape[-2:]
    if (src_h, src_w) == (height, width):
        return masks
    rows = np.minimum(((np.arange(height) + 0.5) * src_h / height).astype(np.intp), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * src_w / width).astype(np.intp), src_w - 1)
    return masks[..., rows[:, None], cols[None, :]]


def _run_kernel(masks, local_points, conf, config: LiftConfig, valid_out: np.ndarray | None = None):
    """Call the numba kernel; returns center (K, T, 3), extent (K, T, 3) float64 and counts
    (K, T) int64, with NaN where fewer than ``min_points``; fills ``valid_out`` if given."""
    import numba

    from recon4d.lift.kernels import F16_TO_F64, FLOAT32, MEAN, MEDIAN, TRIMMED, as_raw, lift_kernel

    n_obj, n_frames = masks.shape[:2]
    center = np.full((n_obj, n_frames, 3), np.nan)
    extent = np.full((n_obj, n_frames, 3), np.nan)
    counts = np.zeros((n_obj, n_frames), np.int64)
    if n_frames == 0 or (n_obj == 0 and valid_out is None):
        return center, extent, counts
    points_raw, points_code = as_raw(local_points)
    conf_raw, conf_code = (np.zeros((1, 1, 4), np.uint8), FLOAT32) if conf is None else as_raw(conf)
    rtol = config.depth_edge_rtol
    q_lo, q_hi = config.extent_quantiles or (0.0, 1.0)
    lift_kernel(
        np.ascontiguousarray(masks), points_raw, points_code, conf_raw, conf_code, conf is not None,
        F16_TO_F64, float(config.conf_threshold), rtol is not None, float(rtol or 0.0),
        int(config.erode_px), {"mean": MEAN, "median": MEDIAN, "trimmed": TRIMMED}[config.estimator],
        float(config.trim_fraction), bool(config.conf_weighted), config.extent_quantiles is not None,
        float(q_lo), float(q_hi), int(config.min_points), min(numba.get_num_threads(), n_frames),
        center, extent, counts, np.empty((0, 0, 0), dtype=bool) if valid_out is None else valid_out,
    )
    return center, extent, counts


def valid_point_mask(
    local_points: np.ndarray, conf: np.ndarray | None, config: LiftConfig = LiftConfig()
) -> np.ndarray:
    """Pixels whose point may be used: (T, H, W) bool.

    local_points: (T, H, W, 3) float16/32/64, camera frame; a point must be finite with z > 0.
    conf: (T, H, W) float in [0, 1] or None; a point needs conf > ``config.conf_threshold``.
    Depth edge (``config.depth_edge_rtol``): (max − min)/z over the 3×3 neighbourhood (clipped
    at the frame border, neighbours with non-finite or z <= 0 points ignored) must not exceed
    the tolerance; low-confidence neighbours still count, as in the π³ pipeline.
    """
    local_points = np.asarray(local_points)
    dims = check_shape("local_points", local_points, ("T", "H", "W", 3), dtype_kind="f")
    if conf is not None:
        conf = np.asarray(conf)
        check_shape("conf", conf, ("T", "H", "W"), dims, dtype_kind="f")
    n_frames, height, width = local_points.shape[:3]
    out = np.empty((n_frames, height, width), dtype=bool)
    no_objects = np.zeros((0, n_frames, height, width), dtype=bool)
    _run_kernel(no_objects, local_points, conf, config, valid_out=out)
    return out


def lift_objects(
    masks,
    local_points,
    conf,
    cam_to_world: np.ndarray,
    config: LiftConfig = LiftConfig(),
    visible: np.ndarray | None = None,
    batch_frames: int = FRAME_BATCH,
) -> LiftResult:
    """Per-frame 3D centre of every object from its masks and the reconstruction.

    masks: (K, T, h, w) bool, resized (nearest) when (h, w) differs from the point maps;
    local_points: (T, H, W, 3) float16/32/64, camera frame (OpenCV); conf: (T, H, W) float in
    [0, 1] or None; cam_to_world: (T, 4, 4); visible: (K, T) bool or None, frames where an
    object's mask counts at all (a tracker's visibility). Masks, points and confidences may be
    lazy (:class:`recon4d.types.FrameSequence`, packed masks, Zarr arrays): they are read
    ``batch_frames`` frames at a time, so memory does not grow with the clip (STYLE §9).
    Points are chosen by :func:`valid_point_mask` under each mask (eroded by
    ``config.erode_px``) and summarised by ``config.estimator``.
    """
    cam_to_world = np.asarray(cam_to_world)
    visible = None if visible is None else np.asarray(visible, bool)
    dims = _check_clip(masks, local_points, conf, cam_to_world, visible)
    n_objects, n_frames, height, width = dims["K"], dims["T"], dims["H"], dims["W"]
    center = np.full((n_objects, n_frames, 3), np.nan)
    extent = np.full((n_objects, n_frames, 3), np.nan)
    counts = np.zeros((n_objects, n_frames), np.int64)
    step = max(1, int(batch_frames))
    for start in range(0, n_frames if n_objects else 0, step):
        stop = min(start + step, n_frames)
        batch = resize_masks(np.asarray(masks[:, start:stop], dtype=bool), (height, width))
        if visible is not None:  # a new array of one batch, never the caller's masks
            batch = batch & visible[:, start:stop, None, None]
        points = np.asarray(local_points[start:stop])
        batch_conf = None if conf is None else np.asarray(conf[start:stop])
        center[:, start:stop], extent[:, start:stop], counts[:, start:stop] = _run_kernel(
            batch, points, batch_conf, config)
    return _assemble(center, extent, counts, cam_to_world, config)


def _assemble(center, extent, counts, cam_to_world, config: LiftConfig) -> LiftResult:
    """Blank what is not visible and move centres to the world frame."""
    visible = counts >= config.min_points
    center = np.where(visible[..., None], center, np.nan)
    extent = np.where(visible[..., None], extent, np.nan).astype(np.float32)
    cam_to_world = cam_to_world.astype(np.float64, copy=False)
    rotation, translation = cam_to_world[:, :3, :3], cam_to_world[:, :3, 3]
    center_world = np.einsum("tij,ktj->kti", rotation, center) + translation[None]
    return LiftResult(center, center_world, visible, extent, counts)


def _erode_numpy(mask: np.ndarray, radius: int) -> np.ndarray:
    """Reference square erosion of one (H, W) mask: a pixel survives when the holes counted by
    cumulative sums over its (2r+1)-window are zero, rows then columns (outside = mask)."""
    out = mask
    for axis in (0, 1):
        size = out.shape[axis]
        holes = np.cumsum(~out, axis=axis, dtype=np.int32)
        holes = np.concatenate([np.zeros_like(np.take(holes, [0], axis=axis)), holes], axis=axis)
        index = np.arange(size)
        upper = np.minimum(index + radius, size - 1) + 1
        lower = np.maximum(index - radius, 0)
        out = np.take(holes, upper, axis=axis) - np.take(holes, lower, axis=axis) == 0
    return out


def _valid_point_mask_numpy(local_points, conf, config: LiftConfig = LiftConfig()) -> np.ndarray:
    """Vectorised numpy reference of :func:`valid_point_mask`, one frame at a time."""
    n_frames, height, width = local_points.shape[:3]
    out = np.empty((n_frames, height, width), dtype=bool)
    for t in range(n_frames):
        points = local_points[t].astype(np.float64)
        depth = points[..., 2]
        ok = np.isfinite(points).all(axis=-1) & (depth > 0)
        depth = np.where(ok, depth, np.nan)
        if conf is not None:
            ok &= conf[t].astype(np.float64) > config.conf_threshold
        if config.depth_edge_rtol is not None:
            padded = np.pad(depth, 1, constant_values=np.nan)
            hi, lo = depth.copy(), depth.copy()
            for dy in range(3):
                for dx in range(3):
                    window = padded[dy : dy + height, dx : dx + width]
                    hi, lo = np.fmax(hi, window), np.fmin(lo, window)
            # (max − min)/z > rtol as the kernel evaluates it, multiplied out (z > 0 here).
            with np.errstate(invalid="ignore"):
                ok &= ~(hi - lo > config.depth_edge_rtol * depth)
        out[t] = ok
    return out


def _estimate_numpy(points: np.ndarray, weights: np.ndarray | None, config: LiftConfig) -> np.ndarray:
    """Centre (3,) of points (n, 3) float64 by the configured estimator."""
    if config.estimator == "median":
        return np.median(points, axis=0)
    if config.estimator == "trimmed":
        n = len(points)
        cut = int(config.trim_fraction * n)
        return np.sort(points, axis=0)[cut : n - cut].mean(axis=0)
    if weights is not None:
        return (weights[:, None] * points).sum(axis=0) / weights.sum()
    return points.mean(axis=0)


def _lift_numpy(masks, local_points, conf, cam_to_world, config: LiftConfig = LiftConfig()) -> LiftResult:
    """Vectorised numpy reference of :func:`lift_objects`: one boolean gather per (k, t)."""
    n_obj, n_frames = masks.shape[:2]
    valid = _valid_point_mask_numpy(local_points, conf, config)
    center = np.full((n_obj, n_frames, 3), np.nan)
    extent = np.full((n_obj, n_frames, 3), np.nan)
    counts = np.zeros((n_obj, n_frames), np.int64)
    weighted = config.conf_weighted and conf is not None
    for t in range(n_frames):
        for k in range(n_obj):
            mask = masks[k, t] if config.erode_px == 0 else _erode_numpy(masks[k, t], config.erode_px)
            chosen = mask & valid[t]
            points = local_points[t][chosen].astype(np.float64)
            counts[k, t] = len(points)
            if len(points) < config.min_points:
                continue
            weights = conf[t][chosen].astype(np.float64) if weighted else None
            center[k, t] = _estimate_numpy(points, weights, config)
            if config.extent_quantiles is not None:
                q_lo, q_hi = np.quantile(points, config.extent_quantiles, axis=0)
                extent[k, t] = q_hi - q_lo
    return _assemble(center, extent, counts, cam_to_world, config)
