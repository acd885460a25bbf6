"""numba kernels behind :mod:`recon4d.lift.lifting` (DESIGN §5: parallel, no fastmath).

One worker per thread takes every n-th frame. For each frame it decodes depth (and
confidence) into float64 scratch, marks the valid pixels (finite, z > 0, confident, not on a
depth edge), then sweeps the rows once: within a row (in cache) each object scans its own
mask row, summing into locals. Robust statistics (median, trimmed mean, extent quantiles)
need the points themselves, so those are also gathered into a per-worker (K, 3, capacity)
buffer, reused across frames and doubled between rows when short. Order statistics, per
axis: for long inputs, thresholds from a small sample bracket the wanted ranks and one pass
copies the few values in the bracket, where the ranks are then selected; otherwise (and
for the trimmed mean) Floyd–Rivest selection in place (:mod:`recon4d.lift.order_statistics`).

Input arrays arrive as raw bytes (a uint8 view, see ``as_raw``) plus a dtype code and are
reinterpreted frame by frame: float16 (the store's dtype, which numba cannot compute with
on the CPU) is decoded through a 65,536-entry table, float32/float64 are widened. So the
clip is never copied to float64 as a whole, and one compiled kernel serves every dtype
(each signature of a parallel kernel costs several seconds of compilation).

Imported lazily by :mod:`recon4d.lift.lifting` so that importing it does not pay numba's import cost.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

from recon4d.lift.order_statistics import place_ranks, quantile_pair, rank_pair, sorted_ranks

MEAN, MEDIAN, TRIMMED = 0, 1, 2
FLOAT16, FLOAT32, FLOAT64 = 0, 1, 2

#: float16 bit pattern -> its exact float64 value.
F16_TO_F64 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)

_INITIAL_CAPACITY = 4096
_DTYPE_CODES = {np.dtype(np.float16): FLOAT16, np.dtype(np.float32): FLOAT32, np.dtype(np.float64): FLOAT64}


def as_raw(array: np.ndarray) -> tuple[np.ndarray, int]:
    """(uint8 view of a C-contiguous ``array``, dtype code) for the kernels.

    Only a non-contiguous ``array`` is copied (to C order); a float dtype other than
    float16/32/64 is converted to float64.
    """
    if array.dtype not in _DTYPE_CODES:
        array = array.astype(np.float64)
    array = np.ascontiguousarray(array)
    return array.view(np.uint8), _DTYPE_CODES[array.dtype]


def _to_f64(value, table):
    """Python twin of the overload below (float16 values travel as their uint16 bits)."""
    if isinstance(value, (int, np.integer)):
        return table[value]
    return float(value)


@overload(_to_f64)
def _to_f64_overload(value, table):
    if isinstance(value, types.Integer):
        return lambda value, table: table[value]
    return lambda value, table: np.float64(value)


@numba.njit(fastmath=False, cache=True)
def _decode_depth_typed(points: np.ndarray, table: np.ndarray, depth: np.ndarray) -> None:
    """depth (H, W) float64 = z of points (H, W, 3), or NaN where the point is not finite or
    z <= 0 (such a pixel is never valid)."""
    height, width = depth.shape
    for y in range(height):
        points_row = points[y]
        depth_row = depth[y]
        for x in range(width):
            px = _to_f64(points_row[x, 0], table)
            py = _to_f64(points_row[x, 1], table)
            pz = _to_f64(points_row[x, 2], table)
            finite = np.isfinite(px) and np.isfinite(py) and np.isfinite(pz)
            depth_row[x] = pz if finite and pz > 0.0 else np.nan


@numba.njit(fastmath=False, cache=True)
def _decode_depth(raw: np.ndarray, code: int, table: np.ndarray, depth: np.ndarray) -> None:
    """``_decode_depth_typed`` of one frame given as raw bytes (H, W, 3 · itemsize)."""
    if code == FLOAT16:
        _decode_depth_typed(raw.view(np.uint16), table, depth)
    elif code == FLOAT32:
        _decode_depth_typed(raw.view(np.float32), table, depth)
    else:
        _decode_depth_typed(raw.view(np.float64), table, depth)


@numba.njit(fastmath=False, cache=True)
def _decode_conf_typed(conf: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    height, width = out.shape
    for y in range(height):
        for x in range(width):
            out[y, x] = _to_f64(conf[y, x], table)


@numba.njit(fastmath=False, cache=True)
def _decode_conf(raw: np.ndarray, code: int, table: np.ndarray, out: np.ndarray) -> None:
    """out (H, W) float64 = one frame of confidence given as raw bytes (H, W · itemsize)."""
    if code == FLOAT16:
        _decode_conf_typed(raw.view(np.uint16), table, out)
    elif code == FLOAT32:
        _decode_conf_typed(raw.view(np.float32), table, out)
    else:
        _decode_conf_typed(raw.view(np.float64), table, out)


@numba.njit(fastmath=False, cache=True)
def _fill_valid(
    depth: np.ndarray,
    conf: np.ndarray,
    has_conf: bool,
    conf_threshold: float,
    use_edge: bool,
    edge_rtol: float,
    column_max: np.ndarray,
    column_min: np.ndarray,
    valid: np.ndarray,
) -> None:
    """valid (H, W) = depth is finite, conf > threshold and (max − min)/depth <= rtol over the
    3×3 neighbourhood (clipped to the frame, NaN neighbours ignored). The test is written
    max − min > rtol · depth (depth > 0): the scalar division was most of this function's time.

    Separable: per row, the 3-row max/min of each column goes to ``column_max``/``column_min``
    (length W + 2, sentinels at both ends stand for outside the frame), then a 3-wide pass.
    The comparisons are written as selects so that NaN drops out and the loops vectorise.
    """
    height, width = depth.shape
    column_max[0] = column_max[width + 1] = -np.inf
    column_min[0] = column_min[width + 1] = np.inf
    for y in range(height):
        row = depth[y]
        if use_edge:
            row_above = depth[max(y - 1, 0)]
            row_below = depth[min(y + 1, height - 1)]
            for x in range(width):
                a = row_above[x]
                b = row[x]
                c = row_below[x]
                hi = a if a > -np.inf else -np.inf
                hi = b if b > hi else hi
                hi = c if c > hi else hi
                lo = a if a < np.inf else np.inf
                lo = b if b < lo else lo
                lo = c if c < lo else lo
                column_max[x + 1] = hi
                column_min[x + 1] = lo
        conf_row = conf[y]
        valid_row = valid[y]
        for x in range(width):
            d = row[x]
            ok = d == d
            if has_conf:
                ok &= conf_row[x] > conf_threshold
            if use_edge:
                hi = column_max[x]
                hi = column_max[x + 1] if column_max[x + 1] > hi else hi
                hi = column_max[x + 2] if column_max[x + 2] > hi else hi
                lo = column_min[x]
                lo = column_min[x + 1] if column_min[x + 1] < lo else lo
                lo = column_min[x + 2] if column_min[x + 2] < lo else lo
                ok &= not (hi - lo > edge_rtol * d)
            valid_row[x] = ok


@numba.njit(fastmath=False, cache=True)
def _erode_square(mask: np.ndarray, radius: int, run: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out (H, W) = ``mask`` eroded by a (2r+1)×(2r+1) square; outside the frame counts as mask.

    Separable: a row pass into ``rows`` (H, W) scratch, then a column pass into ``out``.
    ``run`` counts pixels since the last hole, saturating at r+1, so "no hole within r" is
    ``run > r`` scanned from both sides; it is scratch of length >= max(H, W).
    """
    height, width = mask.shape
    cap = radius + 1
    for y in range(height):
        since = cap
        for x in range(width):
            since = min(since + 1, cap) if mask[y, x] else 0
            run[x] = since
        since = cap
        for x in range(width - 1, -1, -1):
            since = min(since + 1, cap) if mask[y, x] else 0
            rows[y, x] = run[x] > radius and since > radius
    for x in range(width):
        run[x] = cap
    for y in range(height):
        for x in range(width):
            run[x] = min(run[x] + 1, cap) if rows[y, x] else 0
            out[y, x] = run[x] > radius
    for x in range(width):
        run[x] = cap
    for y in range(height - 1, -1, -1):
        for x in range(width):
            run[x] = min(run[x] + 1, cap) if rows[y, x] else 0
            out[y, x] = out[y, x] and run[x] > radius


@numba.njit(fastmath=False, cache=True)
def _reserve(buffer: np.ndarray, need: int) -> np.ndarray:
    """The (K, 3, capacity) gather buffer, doubled until it holds ``need`` points per object."""
    capacity = max(buffer.shape[2], _INITIAL_CAPACITY)
    while capacity < need:
        capacity *= 2
    if capacity == buffer.shape[2]:
        return buffer
    bigger = np.empty((buffer.shape[0], 3, capacity))
    for k in range(buffer.shape[0]):
        for a in range(3):
            for i in range(buffer.shape[2]):
                bigger[k, a, i] = buffer[k, a, i]
    return bigger


@numba.njit(fastmath=False, cache=True)
def _accumulate(
    masks: np.ndarray,
    t: int,
    valid: np.ndarray,
    points: np.ndarray,
    table: np.ndarray,
    conf: np.ndarray,
    weighted: bool,
    gather: bool,
    sums: np.ndarray,
    weight_sums: np.ndarray,
    counts: np.ndarray,
    buffer: np.ndarray,
) -> np.ndarray:
    """One sweep over a frame's rows adding each valid point to the objects whose masks cover
    it; within a row (in cache) each object walks its own mask row, summing into locals.

    masks[:, t] (K, H, W) bool are the frame's masks (a 4-D C array and a frame index keep
    the rows contiguous for numba, so that scanning them vectorises); points (H, W, 3) of any
    dtype ``_to_f64`` reads; sums (K, 3), weight_sums (K,), counts (K,) are added to. With
    ``gather`` the points also go to ``buffer`` (K, 3, capacity), which is returned, grown
    if needed between rows (reassigning an array inside the pixel loop would make numba
    update its reference count on every pixel).
    """
    n_obj = masks.shape[0]
    height, width = valid.shape
    for y in range(height):
        if gather:
            most = 0
            for k in range(n_obj):
                most = max(most, counts[k])
            buffer = _reserve(buffer, most + width)
        valid_row = valid[y]
        points_row = points[y]
        conf_row = conf[y]
        for k in range(n_obj):
            mask_row = masks[k, t, y]
            # Most rows miss a given object, and a covered one is mostly empty: find the
            # covered span with a vectorised OR, then scans from both ends.
            covered = False
            for x in range(width):
                covered |= mask_row[x]
            if not covered:
                continue
            first = 0
            while not mask_row[first]:
                first += 1
            last = width - 1
            while not mask_row[last]:
                last -= 1
            sx = 0.0
            sy = 0.0
            sz = 0.0
            sw = 0.0
            n = counts[k]
            for x in range(first, last + 1):
                if mask_row[x] and valid_row[x]:
                    px = _to_f64(points_row[x, 0], table)
                    py = _to_f64(points_row[x, 1], table)
                    pz = _to_f64(points_row[x, 2], table)
                    if weighted:
                        w = conf_row[x]
                        sx += w * px
                        sy += w * py
                        sz += w * pz
                        sw += w
                    else:
                        sx += px
                        sy += py
                        sz += pz
                        sw += 1.0
                    if gather:
                        buffer[k, 0, n] = px
                        buffer[k, 1, n] = py
                        buffer[k, 2, n] = pz
                    n += 1
            sums[k, 0] += sx
            sums[k, 1] += sy
            sums[k, 2] += sz
            weight_sums[k] += sw
            counts[k] = n
    return buffer


@numba.njit(fastmath=False, cache=True)
def _accumulate_raw(
    masks: np.ndarray,
    t: int,
    valid: np.ndarray,
    raw: np.ndarray,
    code: int,
    table: np.ndarray,
    conf: np.ndarray,
    weighted: bool,
    gather: bool,
    sums: np.ndarray,
    weight_sums: np.ndarray,
    counts: np.ndarray,
    buffer: np.ndarray,
) -> np.ndarray:
    """``_accumulate`` of one frame of points given as raw bytes (H, W, 3 · itemsize)."""
    if code == FLOAT16:
        return _accumulate(masks, t, valid, raw.view(np.uint16), table, conf, weighted, gather, sums,
                           weight_sums, counts, buffer)
    if code == FLOAT32:
        return _accumulate(masks, t, valid, raw.view(np.float32), table, conf, weighted, gather, sums,
                           weight_sums, counts, buffer)
    return _accumulate(masks, t, valid, raw.view(np.float64), table, conf, weighted, gather, sums,
                       weight_sums, counts, buffer)


@numba.njit(fastmath=False, cache=True)
def _finalize(
    k: int,
    n: int,
    sums: np.ndarray,
    weight_sums: np.ndarray,
    buffer: np.ndarray,
    estimator: int,
    trim_fraction: float,
    use_extent: bool,
    q_lo: float,
    q_hi: float,
    center: np.ndarray,
    extent: np.ndarray,
) -> None:
    """Write object k's centre (3,) and extent (3,) from its n >= 1 accumulated points
    (reorders its part of ``buffer``)."""
    if estimator == MEAN:
        for a in range(3):
            center[a] = sums[k, a] / weight_sums[k]
    if estimator == MEAN and not use_extent:
        return
    # Same cut as scipy.stats.trim_mean: int(proportion * n) values off each end.
    trim_count = int(trim_fraction * n)
    trim_ranks = sorted_ranks(trim_count, n - trim_count - 1, 0, 0, 2)
    for a in range(3):
        part = buffer[k, a, :n]
        if use_extent:
            low, high = quantile_pair(part, q_lo, q_hi)
            extent[a] = high - low
        if estimator == MEDIAN:
            below, above = rank_pair(part, (n - 1) // 2, n // 2)
            center[a] = (below + above) / 2.0
        elif estimator == TRIMMED:
            place_ranks(part, trim_ranks)
            total = 0.0
            for i in range(trim_count, n - trim_count):
                total += part[i]
            center[a] = total / (n - 2 * trim_count)


@numba.njit(fastmath=False, cache=True)
def _lift_frames(
    worker: int,
    n_workers: int,
    masks: np.ndarray,
    points: np.ndarray,
    points_code: int,
    conf: np.ndarray,
    conf_code: int,
    has_conf: bool,
    table: np.ndarray,
    conf_threshold: float,
    use_edge: bool,
    edge_rtol: float,
    erode_px: int,
    estimator: int,
    trim_fraction: float,
    conf_weighted: bool,
    use_extent: bool,
    q_lo: float,
    q_hi: float,
    min_points: int,
    center: np.ndarray,
    extent: np.ndarray,
    counts: np.ndarray,
    valid_out: np.ndarray,
) -> None:
    """Frames worker, worker + n_workers, ... of ``lift_kernel``, with this worker's scratch."""
    n_obj, n_frames, height, width = masks.shape
    gather = estimator != MEAN or use_extent
    weighted = conf_weighted and has_conf
    depth = np.empty((height, width))
    conf_frame = np.empty((height, width))
    valid = np.empty((height, width), np.bool_)
    column_max = np.empty(width + 2)
    column_min = np.empty(width + 2)
    # (K, 1, H, W): the same numba type as masks, so one compiled _accumulate serves both.
    eroded = np.empty((n_obj if erode_px > 0 else 0, 1, height, width), np.bool_)
    rows = np.empty((height if erode_px > 0 else 0, width), np.bool_)
    run = np.empty(max(height, width), np.int64)
    buffer = np.empty((n_obj, 3, _INITIAL_CAPACITY if gather else 0))
    sums = np.empty((n_obj, 3))
    weight_sums = np.empty(n_obj)
    frame_counts = np.empty(n_obj, np.int64)
    for t in range(worker, n_frames, n_workers):
        _decode_depth(points[t], points_code, table, depth)
        if has_conf:
            _decode_conf(conf[t], conf_code, table, conf_frame)
        frame_valid = valid_out[t] if valid_out.shape[0] else valid
        _fill_valid(depth, conf_frame, has_conf, conf_threshold, use_edge, edge_rtol,
                    column_max, column_min, frame_valid)
        if n_obj == 0:
            continue
        sums[:] = 0.0
        weight_sums[:] = 0.0
        frame_counts[:] = 0
        if erode_px > 0:
            for k in range(n_obj):
                _erode_square(masks[k, t], erode_px, run, rows, eroded[k, 0])
            buffer = _accumulate_raw(eroded, 0, frame_valid, points[t], points_code, table,
                                     conf_frame, weighted, gather, sums, weight_sums,
                                     frame_counts, buffer)
        else:
            buffer = _accumulate_raw(masks, t, frame_valid, points[t], points_code, table,
                                     conf_frame, weighted, gather, sums, weight_sums,
                                     frame_counts, buffer)
        for k in range(n_obj):
            n = frame_counts[k]
            counts[k, t] = n
            if n >= min_points and n > 0:
                _finalize(k, n, sums, weight_sums, buffer, estimator, trim_fraction,
                          use_extent, q_lo, q_hi, center[k, t], extent[k, t])


@numba.njit(parallel=True, fastmath=False, cache=True)
def lift_kernel(
    masks: np.ndarray,
    points: np.ndarray,
    points_code: int,
    conf: np.ndarray,
    conf_code: int,
    has_conf: bool,
    table: np.ndarray,
    conf_threshold: float,
    use_edge: bool,
    edge_rtol: float,
    erode_px: int,
    estimator: int,
    trim_fraction: float,
    conf_weighted: bool,
    use_extent: bool,
    q_lo: float,
    q_hi: float,
    min_points: int,
    n_workers: int,
    center: np.ndarray,
    extent: np.ndarray,
    counts: np.ndarray,
    valid_out: np.ndarray,
) -> None:
    """Fill center (K, T, 3) float64, extent (K, T, 3) float64 and counts (K, T) int64, and
    valid_out (T, H, W) bool with the valid pixels unless it is (0, 0, 0).

    masks: (K, T, H, W) bool, C order (K may be 0 to compute only ``valid_out``);
    points: raw bytes (T, H, W, 3 · itemsize) of the camera-frame points, ``points_code``
    their dtype; conf: raw bytes (T, H, W · itemsize), ignored unless ``has_conf``; table:
    F16_TO_F64. Entries with counts < min_points are left untouched (the caller fills them
    with NaN). ``estimator`` is MEAN, MEDIAN or TRIMMED. The parallel loop only hands out
    workers; the frame work lives in ``_lift_frames``. One kernel serves both public
    functions because each parallel kernel costs seconds of compilation.
    """
    for worker in numba.prange(n_workers):
        _lift_frames(worker, n_workers, masks, points, points_code, conf, conf_code, has_conf,
                     table, conf_threshold, use_edge, edge_rtol, erode_px, estimator,
                     trim_fraction, conf_weighted, use_extent, q_lo, q_hi, min_points, center,
                     extent, counts, valid_out)
