"""The per-series scans behind :mod:`recon4d.qa_compiler.rules`: validate, label, merge into phases.

One scan per describer kind. Each takes a batch of series (one row per series), checks every
value, labels every step, merges equal neighbours into phases and writes, for all rows back
to back, the phase codes and margins (see the ``rules`` module docstring for what a margin
is) and the number of phases of each row:

* :func:`distance_scan` -- d (B, N) float64, N >= 2: the DSR generator's anchor-relative run
  scan (a sequential scan: a steady run is measured from its first value);
* :func:`speed_comparison_scan` -- a, b (B, N) float64: per-step sign of the speed ratio;
* :func:`direction_scan` -- v (B, N, 3) float64: per-step FLU label set of the unit vector.

Outputs: codes (B*N,) int8, margins (B*N,) float64 (the first sum(counts) entries are used),
counts (B,) int64. Return value: -1, or the flat index of the first value that is not finite
(or negative, for the magnitudes of distance and speed), which the caller turns into a
readable error; nothing else is valid then.

The scans are plain Python over numpy arrays, written so that numba compiles them unchanged:
:func:`compiled` returns the numba version (compiled on first use, cached on disk, one
float64 signature each, no parallel threads -- a batch is small and a thread pool costs more
than it saves), or the Python one where numba is not installed, so the QA compiler needs
numpy only. Division follows IEEE as numpy does (x/0 = inf for x > 0, 0/0 = NaN); the
Python fallback runs under ``np.errstate`` for that.
"""

from __future__ import annotations

import functools
import math


def distance_scan(d, params, codes, margins, counts) -> int:
    """The DSR generator's run scan over every row of ``d`` (B, N >= 2), with phase margins.

    params: (low, high, near_zero), e.g. (0.8, 1.2, 0.1). Codes index
    ``rules.DISTANCE_PHASES`` (0 constant, 1 constant then smaller, 2 constant then larger,
    3 larger, 4 smaller).

    A phase starts at an anchor s. If x[s+1] is steady w.r.t. x[s] (ratio x[e]/x[s] within
    [low, high], or both below near_zero), the run goes on while x[e] stays steady w.r.t. the
    *anchor*; the element that breaks it says "then become smaller/larger" and anchors the
    next phase. Else if x[s+1]/x[s] > high, the run goes on while each step ratio is > high
    and its last element is the next anchor. Else it goes on while each step ratio is < low
    and the new value is >= near_zero; the next anchor is its last element, or the
    near-zero element that stopped it. The scan ends once an anchor reaches N-1.
    """
    low, high, near_zero = params[0], params[1], params[2]
    n = d.shape[1]
    k = 0
    for row in range(d.shape[0]):
        x = d[row]
        for i in range(n):
            if not (x[i] >= 0.0 and x[i] < math.inf):  # NaN fails both
                return row * n + i
        first = k
        s = 0
        while s < n - 1:
            xs = x[s]
            margin = math.inf
            ratio = math.nan
            e = s + 1
            while e < n:  # steady partners of the anchor; e = s+1 is the branch test itself
                xe = x[e]
                ratio = xe / xs if xs > 0 else (math.inf if xe > 0 else math.nan)
                band = min((ratio - low) / low, (high - ratio) / high) if ratio == ratio else -math.inf
                both_near = min(near_zero - xs, near_zero - xe) / near_zero
                margin = min(margin, abs(max(band, both_near)))
                # Table 8: 0.8 <= ratio <= 1.2 counts as unchanged; so do two near-zero values.
                if not (low <= ratio <= high or (xs < near_zero and xe < near_zero)):
                    break
                e += 1
            if e > s + 1:
                if e == n:
                    codes[k] = 0
                    nxt = n
                else:
                    codes[k] = 1 if ratio < low else 2
                    nxt = e
            elif ratio > high:
                codes[k] = 3
                while e < n:
                    prev, cur = x[e - 1], x[e]
                    step = cur / prev if prev > 0 else math.inf
                    margin = min(margin, abs(step - high) / high)
                    if not step > high:
                        break
                    e += 1
                nxt = n if e == n else e - 1
            else:
                codes[k] = 4
                margin = min(margin, abs(ratio - high) / high)
                while e < n:
                    prev, cur = x[e - 1], x[e]
                    step = cur / prev  # prev >= near_zero > 0 on a shrinking run
                    margin = min(margin, abs(min((low - step) / low, (cur - near_zero) / near_zero)))
                    if not (step < low and cur >= near_zero):
                        break
                    e += 1
                if e == n:
                    nxt = n
                else:
                    margin = min(margin, abs(near_zero - x[e]) / near_zero)
                    nxt = e if x[e] < near_zero else e - 1
            margins[k] = margin
            k += 1
            s = nxt
        counts[row] = k - first
    return -1


def speed_comparison_scan(a, b, params, codes, margins, counts) -> int:
    """Label each step of the pairs (a[i], b[i]) (B, N >= 1) and merge equal labels into phases.

    params: (faster, slower, near_zero), e.g. (1.2, 1/1.2, 0.1). Code = sign + 1 (0 the
    latter is faster: a/b < slower; 2 the former: a/b > faster; 1 the same, also when both
    are below near_zero). A step's margin is min(|min(nz-a, nz-b)| / nz, |r - faster| /
    faster, |r - slower| / slower), r = a/b (the last two only when not both are below
    nz); a phase's margin is the minimum over its steps, computed as the minimum of each
    numerator divided once at the end (division by a positive constant is monotonic, so
    the result is the same to the last bit). A bad value is reported at its flat index in
    ``a``, or at B*N + its flat index in ``b`` (the first bad step in row-major order).
    """
    faster, slower, nz = params[0], params[1], params[2]
    n = a.shape[1]
    k = 0
    for row in range(a.shape[0]):
        first = k
        run_code = -1
        near, above, below = math.inf, math.inf, math.inf  # numerators of the run's margin
        for i in range(n):
            x, y = a[row, i], b[row, i]
            if not (x >= 0.0 and x < math.inf):  # NaN fails both
                return row * n + i
            if not (y >= 0.0 and y < math.inf):
                return a.size + row * n + i
            if x < nz and y < nz:  # Table 8: both nearly still -> the same speed
                code = 1
                ratio = math.nan
            else:
                ratio = x / y if y > 0 else math.inf  # x >= near_zero > 0 here
                # Table 8: the former is faster above 1.2, the latter below 1/1.2.
                code = 2 if ratio > faster else (0 if ratio < slower else 1)
            if code != run_code:
                if i > 0:
                    codes[k] = run_code
                    margins[k] = min(near / nz, above / faster, below / slower)
                    k += 1
                run_code = code
                near, above, below = math.inf, math.inf, math.inf
            near = min(near, abs(min(nz - x, nz - y)))
            if ratio == ratio:
                above = min(above, abs(ratio - faster))
                below = min(below, abs(ratio - slower))
        codes[k] = run_code
        margins[k] = min(near / nz, above / faster, below / slower)
        k += 1
        counts[row] = k - first
    return -1


def direction_scan(v, params, codes, margins, counts) -> int:
    """Label each vector of v (B, N >= 1, 3) with the FLU axes its unit vector names; merge runs.

    params: (threshold,), e.g. (0.3,). Code = 9*d_front + 3*d_left + d_up with digit 2 for a
    component above +threshold, 0 below -threshold, 1 otherwise (``phrasing.DIRECTION_KEYS``).
    The unit vector is v / sqrt(sum v^2) as the reference computes it; vectors whose squared
    norm over- or underflows are rescaled by their largest component first. A zero vector
    names no axis (code 13) and has margin 0. A phase's margin is the smallest
    |(|u_axis| - t)| over its steps and axes, divided by t once (division by a positive
    constant is monotonic: the same to the last bit as dividing each step). A bad value is
    reported at its flat index.
    """
    t = params[0]
    n = v.shape[1]
    k = 0
    for row in range(v.shape[0]):
        first = k
        run_code = -1
        run_gap = math.inf
        for i in range(n):
            x, y, z = v[row, i, 0], v[row, i, 1], v[row, i, 2]
            for axis in range(3):
                if not (-math.inf < v[row, i, axis] < math.inf):
                    return (row * n + i) * 3 + axis
            norm = math.sqrt(x * x + y * y + z * z)
            scale = max(abs(x), abs(y), abs(z))
            if scale > 0 and (norm == 0 or norm == math.inf):
                x, y, z = x / scale, y / scale, z / scale
                norm = math.sqrt(x * x + y * y + z * z)
            code = 13
            gap = 0.0  # margin numerator: |(|u| - t)| of the closest component
            if scale > 0:
                ux, uy, uz = x / norm, y / norm, z / norm
                # Table 8: an axis is named when its unit component passes +-t.
                code = 9 * (2 if ux > t else (0 if ux < -t else 1))
                code += 3 * (2 if uy > t else (0 if uy < -t else 1))
                code += 2 if uz > t else (0 if uz < -t else 1)
                gap = min(abs(abs(ux) - t), abs(abs(uy) - t), abs(abs(uz) - t))
            if code == run_code:
                run_gap = min(run_gap, gap)
            else:
                if i > 0:
                    codes[k] = run_code
                    margins[k] = run_gap / t
                    k += 1
                run_code = code
                run_gap = gap
        codes[k] = run_code
        margins[k] = run_gap / t
        k += 1
        counts[row] = k - first
    return -1


def row_keys(codes, counts, radix, keys) -> None:
    """One int64 per row naming its phase-code sequence: equal sequences, equal keys.

    codes (P,) int8 and counts (B,) int64 as the scans wrote them; radix: number of codes
    + 1. A row's key is sum_j (codes[j] + 1) * radix**j (a digit 0 never occurs, so lengths
    differ too) while it fits in 62 bits; longer rows get their own key -(row + 1).
    """
    k = 0
    for row in range(counts.shape[0]):
        n = counts[row]
        key = 0
        if n * math.log2(radix) < 62.0:
            for j in range(k + n - 1, k - 1, -1):
                key = key * radix + codes[j] + 1
        else:
            key = -(row + 1)
        keys[row] = key
        k += n


def render_texts(codes, starts, counts, rows, words, word_ends, single_words, single_ends, single_numbered,
                 out) -> int:
    """Write the answer text of each row in ``rows`` into ``out``, separated by newlines.

    codes (P,) int8; row r owns codes[starts[r]:starts[r] + counts[r]]. A row of several
    phases is "(1) w0 (2) w1 ...", w the word of each code: bytes
    words[word_ends[c]:word_ends[c+1]] (uint8, ASCII). A row of one phase uses
    single_words/single_ends instead (e.g. "always" sentences) and the "(1) " prefix only
    where single_numbered[c] is 1. out: (L,) uint8 long enough (see ``rules``). Returns
    the number of bytes written, without a final newline.
    """
    pos = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        n = counts[row]
        k = starts[row]
        if i > 0:
            out[pos] = 10  # "\n"
            pos += 1
        for j in range(n):
            code = codes[k + j]
            if n == 1:
                start, stop = single_ends[code], single_ends[code + 1]
                numbered = single_numbered[code] == 1
            else:
                start, stop = word_ends[code], word_ends[code + 1]
                numbered = True
            if j > 0:
                out[pos] = 32  # " "
                pos += 1
            if numbered:  # "(j+1) "
                out[pos] = 40
                pos += 1
                number = j + 1
                digits = 1
                while number >= 10 ** digits:
                    digits += 1
                for d in range(digits - 1, -1, -1):
                    out[pos + d] = 48 + number % 10
                    number //= 10
                pos += digits
                out[pos] = 41
                out[pos + 1] = 32
                pos += 2
            length = stop - start
            if n == 1:
                out[pos:pos + length] = single_words[start:stop]
            else:
                out[pos:pos + length] = words[start:stop]
            pos += length
    return pos


SCANS = {"distance": distance_scan, "speed_comparison": speed_comparison_scan, "direction": direction_scan}


KERNELS = dict(SCANS, row_keys=row_keys, render_texts=render_texts)


@functools.cache
def compiled(name: str):
    """The kernel ``name`` (a SCANS kind, "row_keys" or "render_texts") compiled by numba.

    numba is imported here, on first use, so importing the compiler stays numpy-only and
    cheap; without numba the plain Python function is returned (same results, slower).
    """
    kernel = KERNELS[name]
    try:
        import numba
    except ImportError:
        return kernel
    return numba.njit(cache=True, fastmath=False)(kernel)
