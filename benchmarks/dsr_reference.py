"""Stand-ins for the public DSR Suite answer functions, for side-by-side speed comparisons.

Written from their observable behaviour, not from their source: the executable
specification is ``shared/data/dsr_reference_vectors.json`` (every ``describe_*`` case is
replayed by :func:`check_against_vectors` before a benchmark trusts these). They keep the
shape of the public functions -- one series per call, small numpy functions (``np.asarray``
in, element-wise numpy scalar arithmetic and per-vector numpy normalisation, Python string
building) -- so that their throughput stands for the reference's, which the issue measured
on this machine at about 37k (distance), 56k (speed comparison) and 4.0k (direction)
answers/s on 30-step series. Not used by recon4d itself.

    describe_dist_runs(distances, epsilon=0.2)       -> "(1) Keep nearly constant. ..."
    describe_spd_comp(speed_1, speed_2, eps=0.2)      -> "(1) The former is always faster."
    describe_dir(changes, epsilon=0.3)                -> "(1) Front|Left. (2) Below."
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NEAR_ZERO = 0.1
_DIST_WORDS = {
    "constant": "Keep nearly constant.",
    "then_smaller": "Keep nearly constant and then become smaller.",
    "then_larger": "Keep nearly constant and then become larger.",
    "larger": "Become larger.",
    "smaller": "Become smaller.",
}


def _number(sentences) -> str:
    return " ".join("({}) {}".format(i + 1, s) for i, s in enumerate(sentences))


def describe_dist_runs(distances, epsilon=0.2):
    """Phases of a distance series: steady runs measured from their first value, growth, shrinkage."""
    d = np.asarray(distances, dtype=np.float64)
    low, high = 1.0 - epsilon, 1.0 + epsilon
    phases = []
    i = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while i < len(d) - 1:
            ratio = d[i + 1] / d[i]
            both_small = d[i] < NEAR_ZERO and d[i + 1] < NEAR_ZERO
            if low <= ratio <= high or both_small:
                j = i + 1
                while j < len(d):
                    r = d[j] / d[i]
                    if not (low <= r <= high or (d[i] < NEAR_ZERO and d[j] < NEAR_ZERO)):
                        break
                    j += 1
                if j == len(d):
                    phases.append("constant")
                else:
                    phases.append("then_smaller" if d[j] / d[i] < low else "then_larger")
                i = j
            elif ratio > high:
                j = i + 1
                while j < len(d) and d[j] / d[j - 1] > high:
                    j += 1
                phases.append("larger")
                i = j if j == len(d) else j - 1
            else:
                j = i + 1
                while j < len(d) and d[j] / d[j - 1] < low and d[j] >= NEAR_ZERO:
                    j += 1
                phases.append("smaller")
                if j == len(d) or d[j] < NEAR_ZERO:
                    i = j
                else:
                    i = j - 1
    return _number([_DIST_WORDS[p] for p in phases])


def describe_spd_comp(speed_1, speed_2, eps=0.2):
    """Which of two speed series is faster at each step, merged into phases."""
    s1 = np.asarray(speed_1, dtype=np.float64)
    s2 = np.asarray(speed_2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s1 / s2
    same = (s1 < NEAR_ZERO) & (s2 < NEAR_ZERO)
    label = np.where(ratio > 1 + eps, 1, np.where(ratio < 1 / (1 + eps), -1, 0))
    label[same] = 0
    runs = []
    for value in label.tolist():
        if not runs or runs[-1] != value:
            runs.append(value)
    if len(runs) == 1:
        if runs[0] == 1:
            return "(1) The former is always faster."
        if runs[0] == -1:
            return "The latter is always faster."
        return "(1) Their speed is nearly the same."
    words = {1: "The former is faster.", 0: "Nearly the same.", -1: "The latter is faster."}
    return _number([words[r] for r in runs])


def describe_dir(changes, epsilon=0.3):
    """FLU labels of each vector's unit direction, consecutive equal labels merged."""
    labels = []
    for vector in np.asarray(changes, dtype=np.float64):
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = vector / np.linalg.norm(vector)
        parts = []
        for value, (positive, negative) in zip(unit, (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))):
            if value > epsilon:
                parts.append(positive)
            elif value < -epsilon:
                parts.append(negative)
        text = "|".join(parts) + "."
        if not labels or labels[-1] != text:
            labels.append(text)
    return _number(labels)


def check_against_vectors(path: Path) -> int:
    """Replay every describe_* case of the reference vectors; returns the number checked."""
    cases = json.loads(Path(path).read_text())["cases"]
    checked = 0
    for case in cases:
        if case["fn"] == "describe_dist_runs":
            got = describe_dist_runs(case["distances"])
        elif case["fn"] == "describe_spd_comp":
            got = describe_spd_comp(case["speed_1"], case["speed_2"])
        elif case["fn"] == "describe_dir":
            got = describe_dir(case["changes"])
        else:
            continue
        if got != case["out"]:
            raise AssertionError(f"stand-in {case['fn']} gives {got!r}, the reference {case['out']!r}: {case}")
        checked += 1
    return checked
