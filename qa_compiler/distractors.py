"""Wrong options for DSR questions: three distinct distractors and a uniformly placed answer.

Modes (DESIGN §6):

* ``random`` -- the reference way (DSR Suite ``qa_temp.py``): describe a random series of
  the answer's length (distances/speeds U(0, 2), direction vectors U(-1, 1)^3) and keep its
  first k phases;
* ``hard`` -- perturb phase sequences: flip a phase to its opposite, drop one, merge two
  neighbours, swap two neighbours, replace one phase (or one axis label of a direction),
  insert one, then insert/drop phases to reach k. Distractors are edited not from the
  answer but from a hidden one-edit neighbour of it (:func:`_hub`), so the answer is not
  the centre of the options (a blind "most similar option" solver would find it);
* ``mixed`` -- each distractor is random or hard with equal chance.

Every option is rendered with :func:`rules.phrase`, so distractors use exactly the answer
grammar (one-phase speed comparisons say "always"; the reference's truncated texts such as
a lone "(1) The former is faster." never occur as answers and would give them away). A
distractor has between max(1, N-3) and N+3 phases (N: the answer's), drawn so that the
answer's rank by phase count is uniform, and differs from the answer and from the other
distractors. The correct letter is uniform over A-D.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from recon4d.qa_compiler.records import LETTERS
from recon4d.qa_compiler.rules import (
    AXIS_LABELS,
    CONSTANT,
    CONSTANT_THEN_LARGER,
    CONSTANT_THEN_SMALLER,
    DIRECTION,
    DISTANCE,
    DISTANCE_PHASES,
    DSR,
    FORMER_FASTER,
    LARGER,
    LATTER_FASTER,
    SAME,
    SMALLER,
    SPEED_COMPARISON,
    SPEED_PHASES,
    PHASE_KEYS,
    Description,
    Descriptions,
    RuleProfile,
    describe_directions,
    describe_distances,
    describe_speed_comparisons,
    phase_codes,
    phrase,
)

MODES = ("random", "hard", "mixed")

_RANDOM_BATCH = 8
_REUSE_PROB = 0.7
_OPPOSITE = {
    LARGER: (SMALLER,), SMALLER: (LARGER,), CONSTANT: (LARGER, SMALLER),
    CONSTANT_THEN_LARGER: (CONSTANT_THEN_SMALLER,), CONSTANT_THEN_SMALLER: (CONSTANT_THEN_LARGER,),
    FORMER_FASTER: (LATTER_FASTER,), LATTER_FASTER: (FORMER_FASTER,), SAME: (FORMER_FASTER, LATTER_FASTER),
}
_FLIP_LABEL = {label: other for pos, neg in AXIS_LABELS for label, other in ((pos, neg), (neg, pos))}
_AXIS_OF = {label: axis for axis, pair in enumerate(AXIS_LABELS) for label in pair}


class DistractorError(RuntimeError):
    """No valid set of three distractors was found within the allowed tries."""


def phase_bounds(n_phases: int) -> tuple[int, int]:
    """(fewest, most) phases a distractor may have for an answer of ``n_phases`` phases."""
    return max(1, n_phases - 3), n_phases + 3


def _random_series(kind: str, n_values: int, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
    """``batch`` random series of ``n_values`` values, drawn as the reference draws them."""
    if kind == DISTANCE:
        return (rng.uniform(0.0, 2.0, size=(batch, max(n_values, 2))),)
    if kind == SPEED_COMPARISON:
        return rng.uniform(0.0, 2.0, size=(batch, n_values)), rng.uniform(0.0, 2.0, size=(batch, n_values))
    if kind == DIRECTION:
        return (rng.uniform(-1.0, 1.0, size=(batch, n_values, 3)),)
    raise ValueError(f"unknown description kind {kind!r}")


def random_descriptions(
    kind: str, n_values: int, rng: np.random.Generator, profile: RuleProfile, batch: int = _RANDOM_BATCH
) -> Descriptions:
    """Describe ``batch`` random series of ``n_values`` values, as the reference draws them."""
    series = _random_series(kind, n_values, rng, batch)
    if kind == DISTANCE:
        return describe_distances(series[0], profile)
    if kind == SPEED_COMPARISON:
        return describe_speed_comparisons(*series, profile)
    return describe_directions(series[0], profile)


def _random_label_set(rng: np.random.Generator) -> tuple[str, ...]:
    """A random non-empty direction phase (one of 26 label sets)."""
    while True:
        picks = rng.integers(3, size=3)  # 0: positive label, 1: negative, 2: axis not named
        labels = tuple(pair[p] for pair, p in zip(AXIS_LABELS, picks) if p < 2)
        if labels:
            return labels


def _random_phase(kind: str, rng: np.random.Generator, reuse: Sequence = ()):
    """A phase to insert: mostly a copy of one in ``reuse`` (keeps the options' vocabulary
    alike, so phrase frequency does not point at the answer), else any phase."""
    if len(reuse) and rng.random() < _REUSE_PROB:
        return reuse[int(rng.integers(len(reuse)))]
    if kind == DIRECTION:
        return _random_label_set(rng)
    keys = DISTANCE_PHASES if kind == DISTANCE else SPEED_PHASES
    return keys[int(rng.integers(len(keys)))]


def _flip(kind: str, phase, rng: np.random.Generator):
    """The opposite of one phase (one axis label, or all of them, for directions)."""
    if kind == DIRECTION:
        labels = list(phase)
        if rng.random() < 0.5:
            return tuple(_FLIP_LABEL[label] for label in labels)
        i = int(rng.integers(len(labels)))
        labels[i] = _FLIP_LABEL[labels[i]]
        return tuple(labels)
    choices = _OPPOSITE[phase]
    return choices[int(rng.integers(len(choices)))]


def _replace(kind: str, phase, rng: np.random.Generator):
    """Another phase: for directions, add, drop or move one axis label; else any other key.

    Adding and dropping are equally likely where both are possible, so edits do not drift
    the label count (a longer-than-answer bias would point at the answer as the shortest).
    """
    if kind != DIRECTION:
        keys = [k for k in (DISTANCE_PHASES if kind == DISTANCE else SPEED_PHASES) if k != phase]
        return keys[int(rng.integers(len(keys)))]
    labels = list(phase)
    free_axes = [axis for axis in range(3) if axis not in {_AXIS_OF[label] for label in labels}]
    actions = (["drop"] if len(labels) > 1 else []) + (["add", "move"] if free_axes else [])
    action = actions[int(rng.integers(len(actions)))]
    if action == "drop":
        labels.pop(int(rng.integers(len(labels))))
    else:
        new = AXIS_LABELS[free_axes[int(rng.integers(len(free_axes)))]][int(rng.integers(2))]
        if action == "add":
            labels.append(new)
        else:
            labels[int(rng.integers(len(labels)))] = new
    return tuple(sorted(labels, key=lambda label: _AXIS_OF[label]))


def _perturb(kind: str, phases: list, rng: np.random.Generator) -> list:
    """Apply one random edit (flip, drop, merge, swap, replace, insert) to a phase list."""
    phases = list(phases)
    n = len(phases)
    ops = ["flip", "replace", "insert"] + (["drop", "merge", "swap"] if n >= 2 else [])
    op = ops[int(rng.integers(len(ops)))]
    i = int(rng.integers(n))
    if op == "flip":
        phases[i] = _flip(kind, phases[i], rng)
    elif op == "replace":
        phases[i] = _replace(kind, phases[i], rng)
    elif op == "insert":
        phases.insert(int(rng.integers(n + 1)), _random_phase(kind, rng, phases))
    elif op == "drop":
        phases.pop(i)
    else:
        j = int(rng.integers(n - 1))
        if op == "merge":
            phases[j : j + 2] = [phases[j + int(rng.integers(2))]]
        else:
            phases[j], phases[j + 1] = phases[j + 1], phases[j]
    return phases


def canonical(kind: str, phases: Sequence) -> tuple | None:
    """Bring an edited phase list back to the answer grammar, or None if it cannot be.

    Consecutive equal phases merge (the describers never emit them, except "keep constant
    and then ..." runs, which may repeat); "Keep nearly constant." can only end a distance
    answer; direction phases need at least one label.
    """
    out: list = []
    for phase in phases:
        repeatable = kind == DISTANCE and phase in (CONSTANT_THEN_LARGER, CONSTANT_THEN_SMALLER)
        if out and out[-1] == phase and not repeatable:
            continue
        out.append(phase)
    if not out:
        return None
    if kind == DISTANCE and CONSTANT in out[:-1]:
        return None
    if kind == DIRECTION and any(len(phase) == 0 for phase in out):
        return None
    return tuple(out)


def _random_candidate(answer: Description, n_values: int, n_phases: int, rng, profile) -> tuple | None:
    """The first ``n_phases`` phases of a random series' description (reference truncation).

    Of ``_RANDOM_BATCH`` random series, the first with enough phases is used, as if each
    were described in turn; only phase codes are computed, no texts.
    """
    codes, counts = phase_codes(answer.kind, _random_series(answer.kind, n_values, rng, _RANDOM_BATCH), profile)
    start = 0
    for count in counts.tolist():  # eight rows: plain Python beats numpy calls here
        if count >= n_phases:
            return tuple(map(PHASE_KEYS[answer.kind].__getitem__, codes[start : start + n_phases].tolist()))
        start += count
    return None


def _hard_candidate(kind: str, hub: tuple, n_phases: int, rng) -> tuple | None:
    """Edit ``hub`` once, then insert/drop phases until it has ``n_phases`` (or give up)."""
    phases = _perturb(kind, list(hub), rng)
    for _ in range(2 * n_phases + 4):
        fixed = canonical(kind, phases) if phases else None
        if fixed is not None and len(fixed) == n_phases:
            return fixed
        phases = list(fixed) if fixed is not None else phases
        if len(phases) < n_phases:
            phases.insert(int(rng.integers(len(phases) + 1)), _random_phase(kind, rng, hub))
        elif len(phases) > 1:
            phases.pop(int(rng.integers(len(phases))))
        else:
            return None
    return None


def _hub(kind: str, phases: tuple, rng) -> tuple:
    """A hidden one-edit neighbour of the answer that hard distractors are edited from.

    The answer and the distractors are then all "spokes" around this hub, so the answer is
    not the option closest to all others (it would be if distractors edited the answer).
    """
    for _ in range(8):
        hub = canonical(kind, _perturb(kind, list(phases), rng))
        if hub is not None:
            return hub
    return tuple(phases)


def distractor_phase_counts(n_phases: int, rng: np.random.Generator) -> list[int]:
    """Phase counts of the three distractors for an answer of ``n_phases`` phases.

    The number of distractors with fewer phases than the answer is uniform in 0..3 (the
    rest have more), so the answer's rank by phase count is uniform and neither "most" nor
    "fewest" nor "middle" phases singles it out. A one-phase answer gets one-phase
    distractors. Counts stay within :func:`phase_bounds`.
    """
    below = min(3, n_phases - 1)
    if below == 0:
        return [n_phases] * 3
    n_below = int(rng.integers(4))
    counts = [n_phases - int(rng.integers(1, below + 1)) for _ in range(n_below)]
    counts += [n_phases + int(rng.integers(1, 4)) for _ in range(3 - n_below)]
    return [counts[i] for i in rng.permutation(3)]


def make_distractors(
    answer: Description,
    n_values: int,
    rng: np.random.Generator,
    mode: str = "random",
    profile: RuleProfile | str = DSR,
    max_tries: int = 64,
) -> tuple[str, str, str]:
    """Three distinct wrong options for ``answer`` (phase counts within :func:`phase_bounds`).

    answer: the true Description (its ``kind`` picks the random series and the edits).
    n_values: length of the answer's series (random series get the same length).
    Phase counts come from :func:`distractor_phase_counts` (the reference draws them
    uniformly from [max(1, N-3), N+3], which for short answers makes the answer the option
    with fewest phases); after half of ``max_tries`` a slot takes any count in the bounds
    and random series get longer (e.g. a one-phase speed comparison has only two one-phase
    alternatives, a two-value distance series only three possible texts).
    Raises DistractorError after ``max_tries`` rounds without three valid options.
    """
    if mode not in MODES:
        raise ValueError(f"unknown distractor mode {mode!r}; valid modes: {', '.join(MODES)}")
    lo, hi = phase_bounds(len(answer.phases))
    wanted = distractor_phase_counts(len(answer.phases), rng)
    hub = _hub(answer.kind, tuple(answer.phases), rng) if mode != "random" else ()
    taken = {answer.text}
    wrong: list[str] = []
    for attempt in range(max_tries):
        relaxed = attempt >= max_tries // 2
        n_phases = int(rng.integers(lo, hi + 1)) if relaxed else wanted[len(wrong)]
        if mode == "hard" or (mode == "mixed" and rng.random() < 0.5):
            phases = _hard_candidate(answer.kind, hub, n_phases, rng)
        else:
            # Relaxed: longer random series, so short answers (few possible texts) still find three.
            length = max(n_values, 3 * hi) if relaxed else n_values
            phases = _random_candidate(answer, length, n_phases, rng, profile)
        if phases is None or not lo <= len(phases) <= hi:
            continue
        text = phrase(phases, answer.kind, profile)
        if text in taken:
            continue
        taken.add(text)
        wrong.append(text)
        if len(wrong) == 3:
            return tuple(wrong)
    raise DistractorError(
        f"found {len(wrong)} of 3 distractors for {answer.text!r} in {max_tries} tries ({mode} mode)"
    )


def place_answer(
    answer_text: str, wrong: Sequence[str], rng: np.random.Generator
) -> tuple[tuple[str, str, str, str], str]:
    """Shuffle the distractors and put the answer at a uniform letter: (options A-D, letter)."""
    if len(wrong) != 3:
        raise ValueError(f"need exactly three distractors, got {len(wrong)}")
    slot = int(rng.integers(4))
    options = [wrong[i] for i in rng.permutation(3)]
    options.insert(slot, answer_text)
    return tuple(options), LETTERS[slot]
