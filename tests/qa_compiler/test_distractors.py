"""Tests of qa_compiler/distractors.py: distinct options, phase-count bounds, uniform letters."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon4d.qa_compiler.audit import option_phases
from recon4d.qa_compiler.distractors import (
    MODES,
    DistractorError,
    canonical,
    distractor_phase_counts,
    make_distractors,
    phase_bounds,
    place_answer,
)
from recon4d.qa_compiler.records import LETTERS
from recon4d.qa_compiler.rules import (
    CONSTANT,
    CONSTANT_THEN_LARGER,
    DIRECTION,
    DISTANCE,
    LARGER,
    SAME,
    SPEED_COMPARISON,
    describe_direction,
    describe_distance,
    describe_speed_comparison,
    phrase,
)

CHI2_3DOF_P001 = 16.27


def _answer(kind: str, n_values: int, seed: int, smooth: float):
    """A true answer of ``kind`` from a random walk (``smooth`` near 1 gives few phases)."""
    rng = np.random.default_rng(seed)
    if kind == DISTANCE:
        steps = rng.normal(0, 1 - smooth + 0.05, max(n_values, 2))
        return describe_distance(np.exp(np.cumsum(steps))), max(n_values, 2)
    if kind == SPEED_COMPARISON:
        a = np.exp(np.cumsum(rng.normal(0, 1 - smooth + 0.05, n_values)))
        b = np.exp(np.cumsum(rng.normal(0, 1 - smooth + 0.05, n_values)))
        return describe_speed_comparison(a, b), n_values
    vectors = np.cumsum(rng.normal(0, 1 - smooth + 0.05, (n_values, 3)), axis=0) + rng.normal(0, 1, 3)
    return describe_direction(vectors), n_values


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from([DISTANCE, SPEED_COMPARISON, DIRECTION]),
    n_values=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    smooth=st.floats(0.0, 1.0),
    mode=st.sampled_from(MODES),
)
def test_distractors_are_distinct_valid_and_within_phase_bounds(kind, n_values, seed, smooth, mode):
    answer, n_values = _answer(kind, n_values, seed, smooth)
    if kind == DIRECTION and any(len(p) == 0 for p in answer.phases):
        return  # a zero vector: the compiler skips such answers
    rng = np.random.default_rng(seed)
    wrong = make_distractors(answer, n_values, rng, mode=mode, max_tries=200)
    assert len(wrong) == 3 and len(set(wrong)) == 3 and answer.text not in wrong
    lo, hi = phase_bounds(len(answer.phases))
    for text in wrong:
        assert lo <= len(option_phases(text)) <= hi
        assert text.endswith(".") and "  " not in text
    options, letter = place_answer(answer.text, wrong, rng)
    assert options[LETTERS.index(letter)] == answer.text and len(set(options)) == 4


def test_letters_are_uniform_over_abcd():
    rng = np.random.default_rng(0)
    n = 4000
    letters = Counter(place_answer("right", ["w1", "w2", "w3"], rng)[1] for _ in range(n))
    chi2 = sum((letters[x] - n / 4) ** 2 / (n / 4) for x in LETTERS)
    assert chi2 < CHI2_3DOF_P001, letters
    with pytest.raises(ValueError, match="three"):
        place_answer("right", ["w1"], rng)


def test_phase_counts_put_the_answer_at_a_uniform_rank():
    rng = np.random.default_rng(1)
    below = Counter()
    for _ in range(4000):
        counts = distractor_phase_counts(6, rng)
        lo, hi = phase_bounds(6)
        assert all(lo <= c <= hi and c != 6 for c in counts)
        below[sum(c < 6 for c in counts)] += 1
    assert all(abs(below[k] / 4000 - 0.25) < 0.03 for k in range(4)), below
    assert distractor_phase_counts(1, rng) == [1, 1, 1]  # a one-phase answer: one-phase options
    assert all(c >= 1 for _ in range(200) for c in distractor_phase_counts(2, rng))


def test_canonical_restores_the_answer_grammar():
    assert canonical(DISTANCE, [LARGER, LARGER, CONSTANT]) == (LARGER, CONSTANT)
    assert canonical(DISTANCE, [CONSTANT_THEN_LARGER, CONSTANT_THEN_LARGER]) == (CONSTANT_THEN_LARGER,) * 2
    assert canonical(DISTANCE, [CONSTANT, LARGER]) is None  # "keep constant" only ends a series
    assert canonical(SPEED_COMPARISON, [SAME, SAME]) == (SAME,)
    assert canonical(DIRECTION, [("Front",), ("Front",), ("Left",)]) == (("Front",), ("Left",))
    assert canonical(DIRECTION, [()]) is None
    assert canonical(DIRECTION, []) is None


def test_direction_prediction_gets_single_direction_options_like_the_reference():
    answer = describe_direction(np.array([[1.0, 0.5, 0.0]]))
    for mode in MODES:
        wrong = make_distractors(answer, 1, np.random.default_rng(3), mode=mode)
        assert all(len(option_phases(w)) == 1 and w.startswith("(1) ") for w in wrong)


def test_one_phase_speed_comparison_finds_a_longer_third_option():
    answer = describe_speed_comparison(np.full(6, 2.0), np.full(6, 1.0))
    assert answer.text == "(1) The former is always faster."
    for mode in MODES:
        wrong = make_distractors(answer, 6, np.random.default_rng(0), mode=mode)
        singles = {w for w in wrong if len(option_phases(w)) == 1}
        assert singles <= {"(1) Their speed is nearly the same.", "The latter is always faster."}


def test_random_distractors_reuse_the_rule_wording():
    answer = describe_distance(np.array([1.0, 1.5, 2.3, 3.5, 5.0]))
    wording = {phrase([key], DISTANCE)[4:] for key in (CONSTANT, CONSTANT_THEN_LARGER, LARGER)}
    wrong = make_distractors(answer, 5, np.random.default_rng(0), mode="random")
    sentences = {s for w in wrong for s in option_phases(w)}
    assert sentences <= wording | {"Become smaller.", "Keep nearly constant and then become smaller."}


def test_errors_name_the_problem():
    answer = describe_distance(np.array([1.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match="distractor mode"):
        make_distractors(answer, 3, np.random.default_rng(0), mode="clever")
    with pytest.raises(DistractorError, match="0 of 3"):
        make_distractors(answer, 3, np.random.default_rng(0), max_tries=0)
