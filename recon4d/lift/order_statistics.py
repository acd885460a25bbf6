"""numba order statistics for :mod:`recon4d.lift.kernels`: Floyd–Rivest selection in place,
several ranks at once, and numpy-compatible ("linear") quantile pairs.

For long inputs a small sample brackets the wanted ranks and one pass copies the few values
in the bracket, where the ranks are then selected (``quantile_pair``, ``rank_pair``).
Results equal ``np.quantile`` / ``np.partition`` (tests/lift/test_lifting.py).
"""

from __future__ import annotations

import numba
import numpy as np

#: quantile_pair brackets ranks with a strided sample of this many values, from this length on.
_SAMPLE = 256
_BRACKET_MIN = 4096


@numba.njit(fastmath=False, cache=True)
def _linear_quantile(below: float, above: float, n: int, q: float) -> float:
    """numpy's default ("linear") q-quantile of n values whose order statistics of rank
    floor((n−1)q) and the next one are ``below`` and ``above``; same arithmetic as np.quantile."""
    virtual = (n - 1) * q
    gamma = virtual - np.floor(virtual)
    diff = above - below
    if gamma >= 0.5:
        return above - diff * (1.0 - gamma)
    return below + diff * gamma


@numba.njit(fastmath=False, cache=True)
def _swap(values: np.ndarray, i: int, j: int) -> None:
    values[i], values[j] = values[j], values[i]


@numba.njit(fastmath=False, cache=True)
def select_in_place(values: np.ndarray, k: int, low: int, high: int) -> None:
    """Reorder values[low:high+1] so that index k holds its k-th smallest value, with nothing
    larger before it and nothing smaller after it (values finite).

    Floyd–Rivest selection: on long ranges, first select within a sample of about n^(2/3)
    values gathered (by strided swaps, since gathered points arrive in raster order, far
    from random) around the expected position, so that the pivot lands close to rank k;
    then a Hoare partition that stops on equal keys (constant runs, e.g. the depths of a
    flat plane, stay linear). The end ranks of a range are a plain min/max scan.
    """
    if k == low or k == high:
        best = k
        for i in range(low, high + 1):
            if (values[i] < values[best]) if k == low else (values[i] > values[best]):
                best = i
        _swap(values, best, k)
        return
    while high > low:
        if high - low > 600:
            n = high - low + 1
            i = k - low + 1
            z = np.log(n)
            s = 0.5 * np.exp(2.0 * z / 3.0)
            sd = 0.5 * np.sqrt(z * s * (n - s) / n)
            if i < n / 2:
                sd = -sd
            sample_low = max(low, int(k - i * s / n + sd))
            sample_high = min(high, int(k + (n - i) * s / n + sd))
            step = n // (sample_high - sample_low + 1)
            for j in range(sample_high - sample_low + 1):
                _swap(values, low + j * step, sample_low + j)
            select_in_place(values, k, sample_low, sample_high)
        pivot = values[k]
        i = low
        j = high
        _swap(values, low, k)
        if values[high] > pivot:
            _swap(values, low, high)
        while i < j:
            _swap(values, i, j)
            i += 1
            j -= 1
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
        if values[low] == pivot:
            _swap(values, low, j)
        else:
            j += 1
            _swap(values, j, high)
        if j <= k:
            low = j + 1
        if k <= j:
            high = j - 1


@numba.njit(fastmath=False, cache=True)
def place_ranks(values: np.ndarray, ranks: np.ndarray) -> None:
    """Put every rank of ``ranks`` (sorted, distinct) in place in ``values``, as np.partition.

    Each rank is selected only within the gap its already placed neighbours leave; the rank
    nearest the middle goes first so that the others search the short outer gaps.
    """
    n = values.shape[0]
    placed = np.zeros(ranks.shape[0], np.bool_)
    for _ in range(ranks.shape[0]):
        best = -1
        for j in range(ranks.shape[0]):
            if not placed[j] and (best < 0 or abs(2 * ranks[j] - (n - 1)) < abs(2 * ranks[best] - (n - 1))):
                best = j
        low = 0
        high = n - 1
        for j in range(ranks.shape[0]):
            if placed[j]:
                if ranks[j] < ranks[best]:
                    low = max(low, ranks[j] + 1)
                else:
                    high = min(high, ranks[j] - 1)
        select_in_place(values, ranks[best], low, high)
        placed[best] = True


@numba.njit(fastmath=False, cache=True)
def sorted_ranks(r0: int, r1: int, r2: int, r3: int, m: int) -> np.ndarray:
    """The distinct values among the first m of r0..r3, sorted (what place_ranks takes)."""
    given = (r0, r1, r2, r3)
    ranks = np.empty(4, np.int64)
    distinct = 0
    for j in range(m):
        value = given[j]
        slot = distinct
        while slot > 0 and ranks[slot - 1] > value:
            slot -= 1
        if slot > 0 and ranks[slot - 1] == value:
            continue
        for i in range(distinct, slot, -1):
            ranks[i] = ranks[i - 1]
        ranks[slot] = value
        distinct += 1
    return ranks[:distinct]


@numba.njit(fastmath=False, cache=True)
def quantile_pair(values: np.ndarray, q_lo: float, q_hi: float) -> tuple[float, float]:
    """np.quantile(values, [q_lo, q_hi]) (linear method) for finite values, q_lo <= q_hi.

    Long inputs are not reordered: thresholds a <= b taken from a strided sample (with a
    three-sigma margin) bracket the wanted ranks; one pass copies the values below a and
    above b, and the ranks are selected in those short copies (the values < a are exactly
    the smallest ones, so ranks carry over). Short inputs, or a bracket that misses, fall
    back to selecting all four ranks in ``values`` itself (which reorders it).
    """
    n = values.shape[0]
    lo_rank = int(np.floor((n - 1) * q_lo))
    hi_rank = int(np.floor((n - 1) * q_hi))
    lo_next = min(lo_rank + 1, n - 1)
    hi_next = min(hi_rank + 1, n - 1)
    if n >= _BRACKET_MIN:
        sample = np.empty(_SAMPLE)
        step = n // _SAMPLE
        for j in range(_SAMPLE):
            sample[j] = values[j * step]
        p = (lo_next + 1) / n
        rank_a = int(np.ceil(_SAMPLE * p + 3.0 * np.sqrt(_SAMPLE * p * (1.0 - p)) + 1.0))
        p = hi_rank / n
        rank_b = int(np.floor(_SAMPLE * p - 3.0 * np.sqrt(_SAMPLE * p * (1.0 - p)) - 1.0))
        if 0 <= rank_b and rank_a < rank_b < _SAMPLE:
            place_ranks(sample, sorted_ranks(rank_a, rank_b, 0, 0, 2))
            a = sample[rank_a]
            b = sample[rank_b]
            low = np.empty(n)
            high = np.empty(n)
            n_low = 0
            n_high = 0
            for i in range(n):
                v = values[i]
                if v < a:
                    low[n_low] = v
                    n_low += 1
                elif v > b:
                    high[n_high] = v
                    n_high += 1
            skipped = n - n_high
            if lo_next < n_low and skipped <= hi_rank:
                low = low[:n_low]
                high = high[:n_high]
                place_ranks(low, sorted_ranks(lo_rank, lo_next, 0, 0, 2))
                place_ranks(high, sorted_ranks(hi_rank - skipped, hi_next - skipped, 0, 0, 2))
                return (
                    _linear_quantile(low[lo_rank], low[lo_next], n, q_lo),
                    _linear_quantile(high[hi_rank - skipped], high[hi_next - skipped], n, q_hi),
                )
    place_ranks(values, sorted_ranks(lo_rank, lo_next, hi_rank, hi_next, 4))
    return (
        _linear_quantile(values[lo_rank], values[lo_next], n, q_lo),
        _linear_quantile(values[hi_rank], values[hi_next], n, q_hi),
    )


@numba.njit(fastmath=False, cache=True)
def rank_pair(values: np.ndarray, r0: int, r1: int) -> tuple[float, float]:
    """The order statistics of ranks r0 <= r1 (close together) of finite ``values``.

    Long inputs are not reordered: thresholds a < b from a strided sample (three-sigma
    margins) bracket both ranks; one pass counts the values below a and copies those in
    [a, b], and the ranks are selected in that short window. Short inputs, or a bracket
    that misses, fall back to selecting in ``values`` itself (which reorders it).
    """
    n = values.shape[0]
    if n >= _BRACKET_MIN:
        sample = np.empty(_SAMPLE)
        step = n // _SAMPLE
        for j in range(_SAMPLE):
            sample[j] = values[j * step]
        p = r0 / n
        rank_a = int(np.floor(_SAMPLE * p - 3.0 * np.sqrt(_SAMPLE * p * (1.0 - p)) - 1.0))
        p = (r1 + 1) / n
        rank_b = int(np.ceil(_SAMPLE * p + 3.0 * np.sqrt(_SAMPLE * p * (1.0 - p)) + 1.0))
        if 0 <= rank_a and rank_a < rank_b < _SAMPLE:
            place_ranks(sample, sorted_ranks(rank_a, rank_b, 0, 0, 2))
            a = sample[rank_a]
            b = sample[rank_b]
            window = np.empty(n)
            n_window = 0
            below = 0
            for i in range(n):
                v = values[i]
                if v < a:
                    below += 1
                elif v <= b:
                    window[n_window] = v
                    n_window += 1
            if below <= r0 and r1 < below + n_window:
                window = window[:n_window]
                place_ranks(window, sorted_ranks(r0 - below, r1 - below, 0, 0, 2))
                return window[r0 - below], window[r1 - below]
    place_ranks(values, sorted_ranks(r0, r1, 0, 0, 2))
    return values[r0], values[r1]
