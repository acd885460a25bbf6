"""Answer rules of the DSR question compiler: per-step quantities -> numbered phases -> text.

Three describers implement paper Table 8 as the public DSR Suite generator runs it
(``data/qa_utils.py``); the executable specification is
``shared/data/dsr_reference_vectors.json``:

* :func:`describe_distance` -- a distance (or speed) series, e.g. "(1) Keep nearly constant and
  then become larger. (2) Become smaller.";
* :func:`describe_speed_comparison` -- two speed series, e.g. "(1) The former is faster.
  (2) Nearly the same.";
* :func:`describe_direction` -- FLU vectors (x front, y left, z up), e.g. "(1) Front|Left.
  (2) Behind.".

Labelling is separate from wording: every describer returns the phase keys it found, and
:func:`phrase` renders any sequence of phase keys (the distractor generator perturbs the keys
and re-renders them). The plural functions (:func:`describe_distances` ...) describe many
series at once. Speed comparison and direction label every step with vectorised numpy and
merge equal neighbours into phases; the distance rule compares each value with the start of
its run, a sequential scan, which runs compiled by numba when numba is installed (imported on
first use; the package itself needs numpy only).

Each phase also carries a *margin*: how far the decisions that formed it were from flipping.
A decision compares a quantity ``x`` with a threshold ``tau`` (a ratio with 0.8/1.2 or
1/1.2, a value with the near-zero cut-off 0.1, a unit-vector component with +-0.3); its
signed robustness is ``(x - tau) / |tau|``, positive when the comparison holds. Compound
conditions combine as in signal temporal logic (``and`` -> min, ``or`` -> max, ``not`` ->
negation). The margin of a phase is the smallest absolute robustness over every condition
the reference algorithm evaluates while forming that phase; 0 means a threshold was hit
exactly (or, for a zero direction vector, that no direction is defined).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from recon4d.checks import check_shape

DISTANCE = "distance"
SPEED_COMPARISON = "speed_comparison"
DIRECTION = "direction"
KINDS = (DISTANCE, SPEED_COMPARISON, DIRECTION)

CONSTANT = "constant"
CONSTANT_THEN_SMALLER = "constant_then_smaller"
CONSTANT_THEN_LARGER = "constant_then_larger"
LARGER = "larger"
SMALLER = "smaller"
# Index = integer code used by the kernels below.
DISTANCE_PHASES = (CONSTANT, CONSTANT_THEN_SMALLER, CONSTANT_THEN_LARGER, LARGER, SMALLER)

LATTER_FASTER = "latter_faster"
SAME = "same"
FORMER_FASTER = "former_faster"
# Index = per-step sign + 1 (-1: the latter is faster, 0: same, +1: the former is faster).
SPEED_PHASES = (LATTER_FASTER, SAME, FORMER_FASTER)

# One (positive, negative) label pair per FLU axis, in the order they are joined with "|".
AXIS_LABELS = (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))

Phase = Union[str, tuple[str, ...]]

DISTANCE_WORDING = {
    CONSTANT: "Keep nearly constant.",
    CONSTANT_THEN_SMALLER: "Keep nearly constant and then become smaller.",
    CONSTANT_THEN_LARGER: "Keep nearly constant and then become larger.",
    LARGER: "Become larger.",
    SMALLER: "Become smaller.",
}
SPEED_WORDING = {
    FORMER_FASTER: "The former is faster.",
    SAME: "Nearly the same.",
    LATTER_FASTER: "The latter is faster.",
}
# Used instead of SPEED_WORDING when the whole interval is a single phase.
SPEED_WORDING_SINGLE = {
    FORMER_FASTER: "The former is always faster.",
    SAME: "Their speed is nearly the same.",
    LATTER_FASTER: "The latter is always faster.",
}


@dataclass(frozen=True)
class RuleProfile:
    """Thresholds and wording switches of the answer rules (paper Table 8)."""

    name: str
    """Profile name, as selected with ``--profile``."""
    ratio_epsilon: float = 0.2
    """Table 8: bands 1-eps/1+eps (0.8/1.2) for distance/speed, 1/(1+eps)/1+eps for comparison."""
    near_zero: float = 0.1
    """Values below this are 'nearly zero': two such distances/speeds count as unchanged/equal."""
    direction_threshold: float = 0.3
    """Table 8: an FLU axis is named when its unit-vector component exceeds +-this value."""
    number_single_latter: bool = False
    """Write '(1) ' before the one-phase 'The latter is always faster.' (the DSR generator omits it)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio_epsilon < 1.0:
            raise ValueError(f"ratio_epsilon must lie in (0, 1), got {self.ratio_epsilon}")
        if not self.near_zero > 0.0:
            raise ValueError(f"near_zero must be > 0, got {self.near_zero}")
        if not 0.0 < self.direction_threshold < 1.0:
            raise ValueError(f"direction_threshold must lie in (0, 1), got {self.direction_threshold}")


# Table 8 as the public generator implements it (threshold 0.3 on the unit vector).
DSR = RuleProfile(name="dsr")
# Table 8 as written: an axis is named within 70 deg of it (behind/opposite beyond 110 deg).
PAPER = RuleProfile(
    name="paper", direction_threshold=math.cos(math.radians(70.0)), number_single_latter=True
)
PROFILES = {"dsr": DSR, "paper": PAPER}


def get_profile(name: str) -> RuleProfile:
    """Return the rule profile called ``name`` ("dsr" or "paper")."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown rule profile {name!r}; valid names: {', '.join(sorted(PROFILES))}"
        ) from None


def _resolve(profile: RuleProfile | str) -> RuleProfile:
    return profile if isinstance(profile, RuleProfile) else get_profile(profile)


@dataclass(frozen=True)
class Description:
    """A procedural answer, the phases it was rendered from and how robust each phase is."""

    text: str
    """The answer exactly as the DSR generator writes it, e.g. "(1) Become larger."."""
    phases: tuple[Phase, ...]
    """Phase keys in time order: DISTANCE_PHASES / SPEED_PHASES keys, or tuples like ("Front", "Left")."""
    margins: tuple[float, ...]
    """Per phase: smallest relative distance of a decisive quantity to its threshold (see module)."""
    kind: str
    """DISTANCE, SPEED_COMPARISON or DIRECTION: how :func:`phrase` renders ``phases``."""

    @property
    def margin(self) -> float:
        """Smallest phase margin (inf when there are no phases)."""
        return min(self.margins, default=math.inf)


def _direction_key(code: int) -> tuple[str, ...]:
    """Labels of direction code ``9*d_front + 3*d_left + d_up`` (digit 2: positive, 0: negative)."""
    digits = (code // 9, code // 3 % 3, code % 3)
    return tuple(pair[0] if d == 2 else pair[1] for pair, d in zip(AXIS_LABELS, digits) if d != 1)


_DIRECTION_KEYS = tuple(_direction_key(code) for code in range(27))
_DIRECTION_TEXT = {key: "|".join(key) + "." for key in _DIRECTION_KEYS}


_PREFIXES = tuple(f"({k}) " for k in range(1, 65))


def _numbered(sentences: Sequence[str]) -> str:
    """Join sentences as "(1) first (2) second ..."."""
    if len(sentences) <= len(_PREFIXES):
        return " ".join([p + s for p, s in zip(_PREFIXES, sentences)])
    return " ".join([f"({k}) {s}" for k, s in enumerate(sentences, 1)])


def _render_distance(phases: Sequence[str], profile: RuleProfile) -> str:
    return _numbered([DISTANCE_WORDING[p] for p in phases])


def _render_speed(phases: Sequence[str], profile: RuleProfile) -> str:
    if len(phases) == 1:
        sentence = SPEED_WORDING_SINGLE[phases[0]]
        if phases[0] == LATTER_FASTER and not profile.number_single_latter:
            return sentence  # the DSR generator writes this one sentence without "(1)"
        return f"(1) {sentence}"
    return _numbered([SPEED_WORDING[p] for p in phases])


def _render_direction(phases: Sequence[tuple[str, ...]], profile: RuleProfile) -> str:
    return _numbered([_DIRECTION_TEXT[p] for p in phases])


_RENDERERS: dict[str, Callable] = {
    DISTANCE: _render_distance,
    SPEED_COMPARISON: _render_speed,
    DIRECTION: _render_direction,
}


def _canonical_direction(phase) -> tuple[str, ...]:
    """Validate one direction phase (iterable of labels) and order it Front/Left/Above."""
    labels = (phase,) if isinstance(phase, str) else tuple(phase)
    picked = []
    for pair in AXIS_LABELS:
        on_axis = [label for label in labels if label in pair]
        if len(on_axis) > 1:
            raise ValueError(f"direction phase {labels!r} names axis {pair} more than once")
        picked.extend(on_axis)
    unknown = set(labels) - {label for pair in AXIS_LABELS for label in pair}
    if unknown or len(picked) != len(labels):
        raise ValueError(
            f"direction phase {labels!r} has unknown labels {sorted(unknown)}; valid: "
            f"{[label for pair in AXIS_LABELS for label in pair]}"
        )
    return tuple(picked)


def phrase(phases: Sequence[Phase], kind: str, profile: RuleProfile | str = DSR) -> str:
    """Render phase keys into the DSR answer text, numbering them "(1) ... (2) ...".

    ``kind`` is DISTANCE (keys from DISTANCE_PHASES; speed series too), SPEED_COMPARISON
    (keys from SPEED_PHASES; a single phase uses the "always" sentences) or DIRECTION (each
    phase an iterable of axis labels, at most one per axis, rendered Front/Left/Above order,
    e.g. ("Front", "Left") -> "Front|Left."). An empty sequence renders as "".
    """
    profile = _resolve(profile)
    if kind not in _RENDERERS:
        raise ValueError(f"unknown description kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == DIRECTION:
        phases = [_canonical_direction(p) for p in phases]
    else:
        valid = DISTANCE_PHASES if kind == DISTANCE else SPEED_PHASES
        bad = [p for p in phases if not isinstance(p, str) or p not in valid]
        if bad:
            raise ValueError(f"unknown {kind} phases {bad!r}; valid phases: {', '.join(valid)}")
    return _RENDERERS[kind](phases, profile)


def _check_values(name: str, array: np.ndarray, nonnegative: bool) -> np.ndarray:
    """Return ``array`` as float64 after rejecting non-real dtypes, NaN/inf and negatives."""
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite but {name}{list(where)} is {array[where]}")
    if nonnegative and (array < 0).any():
        where = tuple(int(i) for i in np.argwhere(array < 0)[0])
        raise ValueError(
            f"{name} are magnitudes and must be >= 0 but {name}{list(where)} is {array[where]}"
        )
    return array


def _check_length(name: str, n: int, minimum: int) -> None:
    if n < minimum:
        raise ValueError(f"{name} needs at least {minimum} entries along N to be described, got {n}")


def _distance_scan(d, low, high, near_zero, codes, margins, counts) -> None:
    """The DSR generator's run scan over every row of ``d``, with phase margins.

    d: (B, N) float64 >= 0, N >= 2. Writes the phases of all rows back to back into codes
    (B*(N-1),) int8 (index into DISTANCE_PHASES) and margins (B*(N-1),) float64, and the
    number of phases of each row into counts (B,) int64.

    A phase starts at an anchor s. If x[s+1] is steady w.r.t. x[s] (ratio x[e]/x[s] within
    [low, high], or both below near_zero), the run goes on while x[e] stays steady w.r.t. the
    *anchor*; the element that breaks it says "then become smaller/larger" and anchors the
    next phase. Else if x[s+1]/x[s] > high, the run goes on while each step ratio is > high
    and its last element is the next anchor. Else it goes on while each step ratio is < low
    and the new value is >= near_zero; the next anchor is its last element, or the
    near-zero element that stopped it. The scan ends once an anchor reaches N-1.

    The anchor-relative steady rule makes this a sequential scan, so it is one loop compiled
    by numba (:func:`_compiled_distance_scan`); helpers are inlined so that the same source
    runs as plain Python where numba is missing. x/0 is inf and 0/0 NaN, as numpy divides.
    """
    n = d.shape[1]
    k = 0
    for row in range(d.shape[0]):
        x = d[row]
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


@functools.cache
def _compiled_distance_scan():
    """:func:`_distance_scan` compiled by numba, or as plain Python when numba is missing.

    numba is imported here, on first use, so importing the compiler stays numpy-only and
    cheap.
    """
    try:
        import numba
    except ImportError:
        return _distance_scan
    return numba.njit(cache=True, fastmath=False)(_distance_scan)


def _distance_phases(d: np.ndarray, profile: RuleProfile):
    """(B, N) distances -> phase codes and margins of all series back to back, and bounds.

    Series i owns entries bounds[i]:bounds[i+1] of the two flat lists.
    """
    b, n = d.shape
    codes = np.zeros(b * (n - 1), np.int8)
    margins = np.zeros(b * (n - 1), np.float64)
    counts = np.zeros(b, np.int64)
    eps = profile.ratio_epsilon
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the plain-Python fallback
        _compiled_distance_scan()(
            np.ascontiguousarray(d), 1 - eps, 1 + eps, profile.near_zero, codes, margins, counts
        )
    total = int(counts.sum())
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    return codes[:total].tolist(), margins[:total].tolist(), bounds


def _speed_comparison_steps(pairs: np.ndarray, profile: RuleProfile):
    """(B, 2, N) speeds -> per-step code (sign + 1) and margin, each (B, N)."""
    a, b = pairs[:, 0], pairs[:, 1]
    faster, slower = 1 + profile.ratio_epsilon, 1 / (1 + profile.ratio_epsilon)
    nz = profile.near_zero
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = a / b
        ratio_margin = np.minimum(np.abs(ratio - faster) / faster, np.abs(ratio - slower) / slower)
    both_slow = (a < nz) & (b < nz)  # Table 8: both nearly still -> same speed
    slow_rho = np.minimum(nz - a, nz - b) / nz
    # Table 8: former faster above 1.2, latter faster below 1/1.2.
    sign = np.where(both_slow, 0, np.where(ratio > faster, 1, np.where(ratio < slower, -1, 0)))
    margin = np.where(both_slow, slow_rho, np.minimum(np.abs(slow_rho), ratio_margin))
    return sign + 1, margin


def _unit_vectors(v: np.ndarray) -> np.ndarray:
    """Normalise (..., 3) vectors as the reference does (x / sqrt(sum x^2)); zero -> NaN."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        norm = np.sqrt(np.sum(v**2, axis=-1, keepdims=True))
        unit = v / norm
        # Rescue vectors whose squared norm over/underflows; the reference would lose them.
        scale = np.abs(v).max(-1, keepdims=True)
        lost = (~np.isfinite(norm) | (norm == 0)) & (scale > 0)
        if lost.any():
            w = v / scale
            unit = np.where(lost, w / np.sqrt(np.sum(w**2, axis=-1, keepdims=True)), unit)
    return unit


def _direction_steps(v: np.ndarray, profile: RuleProfile):
    """(B, N, 3) FLU vectors -> per-step direction code (see _direction_key) and margin."""
    t = profile.direction_threshold
    unit = _unit_vectors(v)
    # Table 8: an axis is named when its unit component passes +-t (cos 70 deg in the paper).
    digit = 1 + (unit > t).astype(np.intp) - (unit < -t).astype(np.intp)
    code = digit @ np.array([9, 3, 1])
    with np.errstate(invalid="ignore"):
        margin = (np.abs(np.abs(unit) - t) / t).min(-1)
    return code, np.nan_to_num(margin, nan=0.0)  # zero vector: no direction, margin 0


def _merge_runs(code: np.ndarray, margin: np.ndarray):
    """Merge equal consecutive per-step codes of (B, N) arrays into phases.

    Returns the phase codes and margins of all series back to back, and bounds: series i
    owns entries bounds[i]:bounds[i+1].
    """
    b, n = code.shape
    starts = np.ones((b, n), bool)
    starts[:, 1:] = np.diff(code, axis=1) != 0
    flat_starts = np.flatnonzero(starts)  # each row begins a run, so runs never span rows
    run_margin = np.minimum.reduceat(margin.ravel(), flat_starts)
    bounds = np.concatenate([[0], np.cumsum(starts.sum(1))]).tolist()
    return code.ravel()[flat_starts].tolist(), run_margin.tolist(), bounds


def _validated(name, item, item_shape, nonnegative, min_steps) -> np.ndarray:
    """One series as float64, after checking shape, values and length."""
    item = np.asarray(item)
    check_shape(name, item, item_shape)
    item = _check_values(name, item, nonnegative)
    _check_length(name, item.shape[item_shape.index("N")], min_steps)
    return item


def _stack_batch(name, batch, item_shape, nonnegative, min_steps):
    """Validate a batch given as one (B, *item_shape) array or as a sequence of items.

    Returns ``{shape: (indices, stacked float64 array)}`` grouping equal-shaped items, so
    each group runs through the kernels in one vectorised call.
    """
    if isinstance(batch, np.ndarray):
        array = _validated(name, batch, ("B", *item_shape), nonnegative, min_steps)
        return {array.shape[1:]: (list(range(len(array))), array)}
    groups: dict[tuple, tuple[list[int], list[np.ndarray]]] = {}
    for i, item in enumerate(batch):
        item = _validated(f"{name}[{i}]", item, item_shape, nonnegative, min_steps)
        indices, items = groups.setdefault(item.shape, ([], []))
        indices.append(i)
        items.append(item)
    return {shape: (idx, np.stack(items)) for shape, (idx, items) in groups.items()}


def _describe_groups(groups, count, kind, profile, label_phases) -> list[Description]:
    """Run ``label_phases`` on each stacked group and wrap the results, in input order."""
    keys = {DISTANCE: DISTANCE_PHASES, SPEED_COMPARISON: SPEED_PHASES, DIRECTION: _DIRECTION_KEYS}[kind]
    render = _RENDERERS[kind]
    out: list[Description | None] = [None] * count
    for indices, array in groups.values():
        codes, margins, bounds = label_phases(array, profile)
        for i, start, stop in zip(indices, bounds[:-1], bounds[1:]):
            phases = tuple([keys[c] for c in codes[start:stop]])
            out[i] = Description(render(phases, profile), phases, tuple(margins[start:stop]), kind)
    return out


def _speed_comparison_phases(pairs, profile):
    return _merge_runs(*_speed_comparison_steps(pairs, profile))


def _direction_phases(v, profile):
    return _merge_runs(*_direction_steps(v, profile))


def describe_distance(values, profile: RuleProfile | str = DSR) -> Description:
    """Describe how a distance (or speed) series changes, as in Table 8 / the DSR generator.

    values: (N,) non-negative, finite, N >= 2 (one value per frame). Phases are keys of
    DISTANCE_PHASES; e.g. [1, 1.05, 1.1, 2, 3] -> "(1) Keep nearly constant and then become
    larger. (2) Become larger." with phases ("constant_then_larger", "larger").
    """
    d = _validated("distances", values, ("N",), nonnegative=True, min_steps=2)
    groups = {d.shape: ([0], d[None])}
    return _describe_groups(groups, 1, DISTANCE, _resolve(profile), _distance_phases)[0]


def describe_distances(series, profile: RuleProfile | str = DSR) -> list[Description]:
    """Describe many distance or speed series: (B, N) array, or a sequence of (N_i,) series."""
    groups = _stack_batch("distances", series, ("N",), nonnegative=True, min_steps=2)
    return _describe_groups(groups, len(series), DISTANCE, _resolve(profile), _distance_phases)


def _speed_pair(name_a, name_b, a, b) -> np.ndarray:
    """Two (N,) speed series as one validated (2, N) float64 array."""
    a = _validated(name_a, a, ("N",), nonnegative=True, min_steps=1)
    b = _validated(name_b, b, ("N",), nonnegative=True, min_steps=1)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}")
    return np.stack([a, b])


def describe_speed_comparison(speeds_a, speeds_b, profile: RuleProfile | str = DSR) -> Description:
    """Compare two speed series step by step (Table 8: ratio above 1.2 / below 1/1.2).

    speeds_a, speeds_b: (N,) non-negative, finite, N >= 1 ("the former" is a, "the latter"
    b). Phases are keys of SPEED_PHASES; a single phase uses the "always" sentences, e.g.
    "(1) The former is always faster.", and "The latter is always faster." has no "(1)"
    under the dsr profile, as in the DSR generator.
    """
    pair = _speed_pair("speeds_a", "speeds_b", speeds_a, speeds_b)
    groups = {pair.shape: ([0], pair[None])}
    return _describe_groups(groups, 1, SPEED_COMPARISON, _resolve(profile), _speed_comparison_phases)[0]


def describe_speed_comparisons(
    speeds_a, speeds_b, profile: RuleProfile | str = DSR
) -> list[Description]:
    """Describe many speed comparisons: two (B, N) arrays, or two sequences of (N_i,) series."""
    if len(speeds_a) != len(speeds_b):
        raise ValueError(
            f"speeds_a and speeds_b must hold as many series, got {len(speeds_a)} and {len(speeds_b)}"
        )
    if isinstance(speeds_a, np.ndarray) and isinstance(speeds_b, np.ndarray):
        a = _validated("speeds_a", speeds_a, ("B", "N"), nonnegative=True, min_steps=1)
        b = _validated("speeds_b", speeds_b, ("B", "N"), nonnegative=True, min_steps=1)
        check_shape("speeds_b", b, ("B", "N"), check_shape("speeds_a", a, ("B", "N")))
        pairs = np.stack([a, b], 1)
        groups = {pairs.shape[1:]: (list(range(len(pairs))), pairs)}
    else:
        items = [
            _speed_pair(f"speeds_a[{i}]", f"speeds_b[{i}]", a, b)
            for i, (a, b) in enumerate(zip(speeds_a, speeds_b))
        ]
        groups = _stack_batch("speeds", items, (2, "N"), nonnegative=True, min_steps=1)
    return _describe_groups(
        groups, len(speeds_a), SPEED_COMPARISON, _resolve(profile), _speed_comparison_phases
    )


def describe_direction(vectors, profile: RuleProfile | str = DSR) -> Description:
    """Name the FLU directions of a vector series (direction, orientation, direction prediction).

    vectors: (N, 3) finite, N >= 1, observer frame x front, y left, z up; need not be unit.
    Each vector gets the labels of the axes whose unit component exceeds +-threshold, joined
    with "|" (Front/Behind, Left/Right, Above/Below); equal consecutive label sets merge.
    A zero vector has no direction: it gets the empty label "(k) ." (as in the DSR
    generator) and margin 0.
    """
    v = _validated("vectors", vectors, ("N", 3), nonnegative=False, min_steps=1)
    groups = {v.shape: ([0], v[None])}
    return _describe_groups(groups, 1, DIRECTION, _resolve(profile), _direction_phases)[0]


def describe_directions(vectors, profile: RuleProfile | str = DSR) -> list[Description]:
    """Describe many direction series: (B, N, 3) array, or a sequence of (N_i, 3) arrays."""
    groups = _stack_batch("vectors", vectors, ("N", 3), nonnegative=False, min_steps=1)
    return _describe_groups(groups, len(vectors), DIRECTION, _resolve(profile), _direction_phases)
