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

Labelling is separate from wording (:mod:`phrasing`, re-exported here: kinds, phase keys,
profiles, :class:`Description`): every describer returns the phase keys it found, and
:func:`phrase` renders any sequence of phase keys (the distractor generator perturbs the keys
and re-renders them). The plural functions (:func:`describe_distances` ...) describe many
series at once and return :class:`Descriptions`, the answers column by column. Validation,
labelling and merging run in one scan per kind (:mod:`rule_kernels`), compiled by numba when
numba is installed (imported on first use; the package itself needs numpy only); a batch's
texts are written by a compiled kernel too, once per distinct phase sequence.

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
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recon4d.checks import check_shape
from recon4d.qa_compiler import rule_kernels
from recon4d.qa_compiler.phrasing import (  # noqa: F401 -- the rule vocabulary, re-exported
    AXIS_LABELS,
    CONSTANT,
    CONSTANT_THEN_LARGER,
    CONSTANT_THEN_SMALLER,
    DIRECTION,
    DIRECTION_KEYS,
    DISTANCE,
    DISTANCE_PHASES,
    DISTANCE_WORDING,
    DSR,
    FORMER_FASTER,
    KINDS,
    LARGER,
    LATTER_FASTER,
    PAPER,
    PHASE_KEYS,
    PROFILES,
    Phase,
    SAME,
    SMALLER,
    SPEED_COMPARISON,
    SPEED_PHASES,
    SPEED_WORDING,
    SPEED_WORDING_SINGLE,
    Description,
    RuleProfile,
    get_profile,
    phrase,
    render_phases,
    resolve_profile,
)


@dataclass(frozen=True, eq=False)
class Descriptions(Sequence):
    """The answers to a batch of series, column by column (what the plural describers return).

    ``batch[i]`` (and iteration) gives the :class:`Description` of series i; ``texts`` is
    ready at once, phases and margins are read out of the scan's arrays when asked for, so a
    caller that needs only the texts pays nothing per answer beyond them. Compares equal to
    any sequence of the same Descriptions.
    """

    texts: tuple[str, ...]
    """(B,) the answer texts, in input order."""
    kind: str
    """DISTANCE, SPEED_COMPARISON or DIRECTION."""
    codes: np.ndarray
    """(P,) int8 phase codes of all answers (indices into ``phase_keys(kind)``)."""
    margin_values: np.ndarray
    """(P,) float64 phase margins, aligned with ``codes``."""
    starts: np.ndarray
    """(B,) int64: answer i owns entries starts[i]:stops[i] of ``codes`` and ``margin_values``."""
    stops: np.ndarray
    """(B,) int64."""

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Description(self.texts[index], self.phases[index], self.margins[index], self.kind)

    def __iter__(self):
        return map(Description, self.texts, self.phases, self.margins, itertools.repeat(self.kind))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None

    @functools.cached_property
    def _rows(self) -> list[slice]:
        return list(map(slice, self.starts.tolist(), self.stops.tolist()))

    @functools.cached_property
    def phases(self) -> tuple[tuple[Phase, ...], ...]:
        """(B,) phase keys of each answer."""
        keys = PHASE_KEYS[self.kind]
        every = tuple(map(keys.__getitem__, self.codes.tolist()))
        return tuple(map(every.__getitem__, self._rows))

    @functools.cached_property
    def margins(self) -> tuple[tuple[float, ...], ...]:
        """(B,) phase margins of each answer."""
        every = tuple(self.margin_values.tolist())
        return tuple(map(every.__getitem__, self._rows))


def _value_error(name: str, array: np.ndarray, flat_index: int) -> ValueError:
    """The error for the first invalid value a scan found (non-finite, or a negative magnitude)."""
    where = [int(i) for i in np.unravel_index(flat_index, array.shape)]
    value = array.flat[flat_index]
    if not np.isfinite(value):
        return ValueError(f"{name} must be finite but {name}{where} is {value}")
    return ValueError(f"{name} are magnitudes and must be >= 0 but {name}{where} is {value}")


def _as_float_array(name: str, values, item_shape: tuple, min_steps: int) -> np.ndarray:
    """``values`` as a C-contiguous float64 array of shape ``item_shape`` (names and ints).

    Rejects non-real dtypes, wrong shapes and fewer than ``min_steps`` entries along N with
    a readable ValueError; values themselves are checked by the scans.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != len(item_shape) or (item_shape[-1] == 3 and array.shape[-1] != 3):
        check_shape(name, array, item_shape)
    n = array.shape[item_shape.index("N")]
    if n < min_steps:
        raise ValueError(f"{name} needs at least {min_steps} entries along N to be described, got {n}")
    return np.ascontiguousarray(array, dtype=np.float64)


_MIN_STEPS = {DISTANCE: 2, SPEED_COMPARISON: 1, DIRECTION: 1}
_RADIX = {kind: len(keys) + 1 for kind, keys in PHASE_KEYS.items()}
_scan_params_cache: dict[tuple[str, RuleProfile], np.ndarray] = {}


def _scan_params(kind: str, profile: RuleProfile) -> np.ndarray:
    """The thresholds the scan of ``kind`` takes, as a small float64 array (cached)."""
    params = _scan_params_cache.get((kind, profile))
    if params is None:
        eps = profile.ratio_epsilon
        if kind == DISTANCE:  # Table 8: bands 1 - eps / 1 + eps
            values = [1 - eps, 1 + eps, profile.near_zero]
        elif kind == SPEED_COMPARISON:  # Table 8: 1 + eps and 1 / (1 + eps)
            values = [1 + eps, 1 / (1 + eps), profile.near_zero]
        else:
            values = [profile.direction_threshold]
        params = _scan_params_cache[(kind, profile)] = np.array(values)
        params.flags.writeable = False
    return params


def _label(kind: str, arrays: tuple, profile: RuleProfile, names: tuple, shown: tuple | None = None):
    """Run the scan of ``kind`` on validated (B, ...) float64 arrays: codes, margins, counts.

    An invalid value raises a ValueError naming it in ``names`` and ``shown`` (the arrays as
    the caller passed them, e.g. one (N,) series; default ``arrays``).
    """
    b = arrays[0].shape[0]
    size = b * arrays[0].shape[1]
    codes = np.empty(size, np.int8)
    margins = np.empty(size, np.float64)
    counts = np.empty(b, np.int64)
    scan = rule_kernels.compiled(kind)
    if scan is rule_kernels.SCANS[kind]:  # plain Python: IEEE division as numpy does it
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bad = scan(*arrays, _scan_params(kind, profile), codes, margins, counts)
    else:
        bad = scan(*arrays, _scan_params(kind, profile), codes, margins, counts)
    if bad >= 0:
        shown = shown or arrays
        which = bad // arrays[0].size
        raise _value_error(names[which], shown[which], bad - which * arrays[0].size)
    return codes, margins, counts


@functools.cache
def _word_tables(kind: str, profile: RuleProfile) -> tuple[np.ndarray, ...]:
    """Each code's wording as ASCII bytes for :func:`rule_kernels.render_texts`.

    Returns words, word_ends, single_words, single_ends, single_numbered: the sentence of
    each code within a multi-phase answer, the sentence when it is the only phase, and
    whether a lone phase is numbered "(1) " -- exactly what :func:`phrase` writes.
    """
    multi, single, numbered = [], [], []
    for key in PHASE_KEYS[kind]:
        text = render_phases([key, key], kind, profile)
        multi.append(text[len("(1) "): text.index(" (2) ")])
        lone = render_phases([key], kind, profile)
        numbered.append(lone.startswith("(1) "))
        single.append(lone[len("(1) "):] if numbered[-1] else lone)

    def table(words):
        data = "".join(words).encode("ascii")
        ends = np.cumsum([0] + [len(w) for w in words])
        return np.frombuffer(data, np.uint8), ends.astype(np.int64)

    return (*table(multi), *table(single), np.array(numbered, np.uint8))


def _render(kind: str, profile: RuleProfile, codes, starts, counts, rows) -> list[str]:
    """The texts of the given rows (row r: codes[starts[r]:starts[r] + counts[r]])."""
    if not len(rows):
        return []
    tables = _word_tables(kind, profile)
    longest = max(np.diff(tables[1]).max(), np.diff(tables[3]).max())
    lengths = counts[rows]
    # every phase: its word, "(k) " with k < 10**digits, one space; one newline per row
    digits = len(str(int(lengths.max())))
    out = np.empty(int(lengths.sum()) * (int(longest) + digits + 4) + len(rows), np.uint8)
    size = rule_kernels.compiled("render_texts")(codes, starts, counts, rows, *tables, out)
    return str(memoryview(out[:size]), "ascii").split("\n")


def _batch(kind: str, profile: RuleProfile, codes, margins, counts) -> Descriptions:
    """Descriptions of all rows from the scans' back-to-back phase codes and margins.

    Each distinct phase sequence is rendered once (answers repeat a lot: 5,000 random
    30-step distance series have a few hundred distinct answers).
    """
    stops = np.cumsum(counts)
    starts = stops - counts
    total = int(stops[-1]) if len(stops) else 0
    codes, margins = codes[:total], margins[:total]
    keys = np.empty(len(counts), np.int64)
    rule_kernels.compiled("row_keys")(codes, counts, _RADIX[kind], keys)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    distinct = _render(kind, profile, codes, starts, counts, first)
    texts = tuple(map(distinct.__getitem__, inverse.ravel().tolist()))
    return Descriptions(texts, kind, codes, margins, starts, stops)


_ONE_CACHE_SIZE = 4096
_one_cache: dict[tuple, tuple[str, tuple]] = {}


def _describe_one(kind: str, profile, arrays: tuple, names: tuple) -> Description:
    """Describe one series given as (1, ...) validated arrays (one per name).

    The text and phases of recent phase sequences are kept (a compile asks the same short
    answers over and over); the cache holds at most a few thousand entries.
    """
    profile = resolve_profile(profile)
    try:
        codes, margins, counts = _label(kind, arrays, profile, names)
    except ValueError:  # name the value as the caller passed it, without the batch axis
        _label(kind, arrays, profile, names, shown=tuple(a[0] for a in arrays))
        raise
    n = int(counts[0])
    key = (kind, profile, codes[:n].tobytes())
    entry = _one_cache.get(key)
    if entry is None:
        if len(_one_cache) >= _ONE_CACHE_SIZE:
            _one_cache.clear()
        phases = tuple(map(PHASE_KEYS[kind].__getitem__, codes[:n].tolist()))
        entry = _one_cache[key] = (render_phases(phases, kind, profile), phases)
    return Description(entry[0], entry[1], tuple(margins[:n].tolist()), kind)


def _merge_groups(kind: str, parts: list, count: int) -> Descriptions:
    """One Descriptions in input order from per-group ones (indices, Descriptions)."""
    texts: list = [None] * count
    starts = np.zeros(count, np.int64)
    stops = np.zeros(count, np.int64)
    offset = 0
    for indices, part in parts:
        for i, text in zip(indices, part.texts):
            texts[i] = text
        starts[indices] = part.starts + offset
        stops[indices] = part.stops + offset
        offset += len(part.codes)
    codes = np.concatenate([part.codes for _, part in parts]) if parts else np.zeros(0, np.int8)
    margins = np.concatenate([part.margin_values for _, part in parts]) if parts else np.zeros(0)
    return Descriptions(tuple(texts), kind, codes, margins, starts, stops)


def _describe_batch(kind: str, profile, batch, item_shape: tuple, name: str) -> Descriptions:
    """Describe a (B, *item_shape) array, or a sequence of items grouped by shape, in input order."""
    profile = resolve_profile(profile)
    if isinstance(batch, np.ndarray):
        array = _as_float_array(name, batch, ("B", *item_shape), _MIN_STEPS[kind])
        return _batch(kind, profile, *_label(kind, (array,), profile, (name,)))
    groups: dict[tuple, tuple[list[int], list[np.ndarray]]] = {}
    for i, item in enumerate(batch):
        item = _as_float_array(f"{name}[{i}]", item, item_shape, _MIN_STEPS[kind])
        indices, items = groups.setdefault(item.shape, ([], []))
        indices.append(i)
        items.append(item)
    parts = []
    for indices, items in groups.values():
        try:
            labels = _label(kind, (np.stack(items),), profile, (name,))
        except ValueError:  # name the offending series: check them one by one
            for i, item in zip(indices, items):
                _label(kind, (item[None],), profile, (f"{name}[{i}]",), shown=(item,))
            raise
        parts.append((indices, _batch(kind, profile, *labels)))
    return _merge_groups(kind, parts, len(batch))


def describe_distance(values, profile: RuleProfile | str = DSR) -> Description:
    """Describe how a distance (or speed) series changes, as in Table 8 / the DSR generator.

    values: (N,) non-negative, finite, N >= 2 (one value per frame). Phases are keys of
    DISTANCE_PHASES; e.g. [1, 1.05, 1.1, 2, 3] -> "(1) Keep nearly constant and then become
    larger. (2) Become larger." with phases ("constant_then_larger", "larger").
    """
    d = _as_float_array("distances", values, ("N",), 2)
    return _describe_one(DISTANCE, profile, (d[None],), ("distances",))


def describe_distances(series, profile: RuleProfile | str = DSR) -> Descriptions:
    """Describe many distance or speed series: (B, N) array, or a sequence of (N_i,) series."""
    return _describe_batch(DISTANCE, profile, series, ("N",), "distances")


def _speed_pair(name_a: str, name_b: str, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two (N,) speed series as float64 arrays of one length."""
    a = _as_float_array(name_a, a, ("N",), 1)
    b = _as_float_array(name_b, b, ("N",), 1)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}")
    return a, b


def describe_speed_comparison(speeds_a, speeds_b, profile: RuleProfile | str = DSR) -> Description:
    """Compare two speed series step by step (Table 8: ratio above 1.2 / below 1/1.2).

    speeds_a, speeds_b: (N,) non-negative, finite, N >= 1 ("the former" is a, "the latter"
    b). Phases are keys of SPEED_PHASES; a single phase uses the "always" sentences, e.g.
    "(1) The former is always faster.", and "The latter is always faster." has no "(1)"
    under the dsr profile, as in the DSR generator.
    """
    try:  # both series in one conversion: the common case of two equal-length lists/arrays
        pair = np.asarray((speeds_a, speeds_b))
    except ValueError:  # ragged
        pair = None
    if pair is None or pair.ndim != 2 or pair.dtype.kind not in "biuf" or pair.shape[1] < 1:
        pair = np.stack(_speed_pair("speeds_a", "speeds_b", speeds_a, speeds_b))  # raises the readable error
    pair = np.ascontiguousarray(pair, dtype=np.float64)
    return _describe_one(SPEED_COMPARISON, profile, (pair[:1], pair[1:]), ("speeds_a", "speeds_b"))


def describe_speed_comparisons(speeds_a, speeds_b, profile: RuleProfile | str = DSR) -> Descriptions:
    """Describe many speed comparisons: two (B, N) arrays, or two sequences of (N_i,) series."""
    if len(speeds_a) != len(speeds_b):
        raise ValueError(
            f"speeds_a and speeds_b must hold as many series, got {len(speeds_a)} and {len(speeds_b)}"
        )
    profile = resolve_profile(profile)
    names = ("speeds_a", "speeds_b")
    if isinstance(speeds_a, np.ndarray) and isinstance(speeds_b, np.ndarray):
        a = _as_float_array("speeds_a", speeds_a, ("B", "N"), 1)
        b = _as_float_array("speeds_b", speeds_b, ("B", "N"), 1)
        check_shape("speeds_b", b, ("B", "N"), check_shape("speeds_a", a, ("B", "N")))
        return _batch(SPEED_COMPARISON, profile, *_label(SPEED_COMPARISON, (a, b), profile, names))
    groups: dict[int, tuple[list[int], list, list]] = {}
    for i, (a, b) in enumerate(zip(speeds_a, speeds_b)):
        a, b = _speed_pair(f"speeds_a[{i}]", f"speeds_b[{i}]", a, b)
        indices, group_a, group_b = groups.setdefault(len(a), ([], [], []))
        indices.append(i)
        group_a.append(a)
        group_b.append(b)
    parts = []
    for indices, group_a, group_b in groups.values():
        try:
            labels = _label(SPEED_COMPARISON, (np.stack(group_a), np.stack(group_b)), profile, names)
        except ValueError:  # name the offending pair
            for i, a, b in zip(indices, group_a, group_b):
                names_i = (f"speeds_a[{i}]", f"speeds_b[{i}]")
                _label(SPEED_COMPARISON, (a[None], b[None]), profile, names_i, shown=(a, b))
            raise
        parts.append((indices, _batch(SPEED_COMPARISON, profile, *labels)))
    return _merge_groups(SPEED_COMPARISON, parts, len(speeds_a))


def describe_direction(vectors, profile: RuleProfile | str = DSR) -> Description:
    """Name the FLU directions of a vector series (direction, orientation, direction prediction).

    vectors: (N, 3) finite, N >= 1, observer frame x front, y left, z up; need not be unit.
    Each vector gets the labels of the axes whose unit component exceeds +-threshold, joined
    with "|" (Front/Behind, Left/Right, Above/Below); equal consecutive label sets merge.
    A zero vector has no direction: it gets the empty label "(k) ." (as in the DSR
    generator) and margin 0.
    """
    v = _as_float_array("vectors", vectors, ("N", 3), 1)
    return _describe_one(DIRECTION, profile, (v[None],), ("vectors",))


def describe_directions(vectors, profile: RuleProfile | str = DSR) -> Descriptions:
    """Describe many direction series: (B, N, 3) array, or a sequence of (N_i, 3) arrays."""
    return _describe_batch(DIRECTION, profile, vectors, ("N", 3), "vectors")


def phase_codes(kind: str, series: tuple, profile: RuleProfile | str = DSR):
    """Phase codes of many series, for callers that need phases but not texts (random distractors).

    series: (d,) with d (B, N) for DISTANCE, (a, b) two (B, N) for SPEED_COMPARISON, (v,)
    with v (B, N, 3) for DIRECTION; validated as in the describers. Returns codes (P,) int8
    -- indices into ``PHASE_KEYS[kind]`` of all rows back to back (only the first
    sum(counts) are meaningful) -- and counts (B,) int64, the number of phases of each row.
    """
    profile = resolve_profile(profile)
    shape = ("B", "N", 3) if kind == DIRECTION else ("B", "N")
    names = ("speeds_a", "speeds_b") if kind == SPEED_COMPARISON else (kind,)
    arrays = tuple(_as_float_array(name, a, shape, _MIN_STEPS[kind]) for name, a in zip(names, series))
    codes, _, counts = _label(kind, arrays, profile, names)
    return codes, counts


def load_kernels() -> None:
    """Compile the rule kernels now, or load them from numba's cache (both happen on first use).

    Worth calling before forking processes that will describe answers: they inherit the
    loaded machine code instead of each loading it again.
    """
    rng = np.random.default_rng(0)
    describe_distances(rng.random((2, 3)))
    describe_speed_comparisons(rng.random((2, 3)), rng.random((2, 3)))
    describe_directions(rng.normal(size=(2, 3, 3)))
