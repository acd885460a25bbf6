"""A slow oracle of the answer rules: the DSR generator's algorithm restated step by step.

Plain Python over lists, one value at a time, written for reading rather than speed; the
tests replay the reference vectors through it and check :mod:`recon4d.qa_compiler.rules`
against it on hypothesis-generated series (any profile thresholds).
"""

from __future__ import annotations

import math

AXES = (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))


def _ratio(a: float, b: float) -> float:
    """a / b with IEEE semantics (x/0 = inf, 0/0 = nan), as numpy arrays divide."""
    if b != 0:
        return a / b
    return math.inf if a > 0 else math.nan


def _numbered(sentences: list[str]) -> str:
    return " ".join(f"({k}) {s}" for k, s in enumerate(sentences, 1))


def oracle_distance(values, epsilon: float = 0.2, near_zero: float = 0.1) -> str:
    """One scan over the series; each phase starts at an anchor index ``start``."""
    d = [float(v) for v in values]
    low, high = 1 - epsilon, 1 + epsilon
    n = len(d)

    def steady(start: int, e: int) -> bool:
        r = _ratio(d[e], d[start])
        return low <= r <= high or (d[start] < near_zero and d[e] < near_zero)

    sentences = []
    start = 0
    while start < n - 1:
        e = start + 1
        if steady(start, e):
            while e < n and steady(start, e):
                e += 1
            if e == n:
                sentences.append("Keep nearly constant.")
            elif _ratio(d[e], d[start]) < low:
                sentences.append("Keep nearly constant and then become smaller.")
            else:
                sentences.append("Keep nearly constant and then become larger.")
            start = e
        elif _ratio(d[e], d[start]) > high:
            while e < n and _ratio(d[e], d[e - 1]) > high:
                e += 1
            sentences.append("Become larger.")
            start = e if e == n else e - 1
        else:
            while e < n and _ratio(d[e], d[e - 1]) < low and d[e] >= near_zero:
                e += 1
            sentences.append("Become smaller.")
            start = e if e == n or d[e] < near_zero else e - 1
    return _numbered(sentences)


def oracle_speed_comparison(
    speeds_a, speeds_b, epsilon: float = 0.2, near_zero: float = 0.1, number_single_latter=False
) -> str:
    """Sign per step, then runs of equal signs."""
    signs = []
    for a, b in zip(speeds_a, speeds_b):
        a, b = float(a), float(b)
        if a < near_zero and b < near_zero:
            signs.append(0)
            continue
        r = _ratio(a, b)
        signs.append(1 if r > 1 + epsilon else -1 if r < 1 / (1 + epsilon) else 0)
    runs = []
    for sign in signs:
        if not runs or runs[-1] != sign:
            runs.append(sign)
    if len(runs) == 1:
        if runs[0] == 1:
            return "(1) The former is always faster."
        if runs[0] == 0:
            return "(1) Their speed is nearly the same."
        return ("(1) " if number_single_latter else "") + "The latter is always faster."
    words = {1: "The former is faster.", 0: "Nearly the same.", -1: "The latter is faster."}
    return _numbered([words[s] for s in runs])


def oracle_direction(vectors, threshold: float = 0.3) -> str:
    """Labels per vector, then runs of equal labels."""
    labels = []
    for x, y, z in vectors:
        x, y, z = float(x), float(y), float(z)
        norm = math.sqrt(x * x + y * y + z * z)
        parts = []
        for value, (positive, negative) in zip((x, y, z), AXES):
            unit = value / norm if norm > 0 else math.nan
            if unit > threshold:
                parts.append(positive)
            elif unit < -threshold:
                parts.append(negative)
        labels.append("|".join(parts))
    runs = []
    for label in labels:
        if not runs or runs[-1] != label:
            runs.append(label)
    return _numbered([label + "." for label in runs])


def _runs_min(labels: list, margins: list) -> list[float]:
    """The smallest margin of each run of equal consecutive labels."""
    out: list[float] = []
    for i, (label, margin) in enumerate(zip(labels, margins)):
        if i and labels[i - 1] == label:
            out[-1] = min(out[-1], margin)
        else:
            out.append(margin)
    return out


def oracle_speed_margins(speeds_a, speeds_b, epsilon: float = 0.2, near_zero: float = 0.1) -> list[float]:
    """Per-phase margins of a speed comparison, every step's margin computed on its own.

    A step's decisions: "both below near_zero" (robustness min(nz - a, nz - b) / nz) and,
    otherwise, the ratio against 1 + eps and 1 / (1 + eps); its margin is the smallest
    absolute robustness of the decisions evaluated.
    """
    faster, slower = 1 + epsilon, 1 / (1 + epsilon)
    labels, margins = [], []
    for a, b in zip(speeds_a, speeds_b):
        a, b = float(a), float(b)
        slow = min(near_zero - a, near_zero - b) / near_zero
        if a < near_zero and b < near_zero:
            labels.append(0)
            margins.append(slow)
            continue
        r = _ratio(a, b)
        labels.append(1 if r > faster else -1 if r < slower else 0)
        margins.append(min(abs(slow), abs(r - faster) / faster, abs(r - slower) / slower))
    return _runs_min(labels, margins)


def oracle_direction_margins(vectors, threshold: float = 0.3) -> list[float]:
    """Per-phase margins of a direction series: min over axes of |(|u| - t)| / t per vector (0 for a zero vector)."""
    labels, margins = [], []
    for x, y, z in vectors:
        x, y, z = float(x), float(y), float(z)
        scale = max(abs(x), abs(y), abs(z))
        if scale == 0:
            labels.append(())
            margins.append(0.0)
            continue
        norm = math.sqrt(x * x + y * y + z * z)
        if norm == 0 or math.isinf(norm):
            x, y, z = x / scale, y / scale, z / scale
            norm = math.sqrt(x * x + y * y + z * z)
        unit = (x / norm, y / norm, z / norm)
        labels.append(tuple((u > threshold) - (u < -threshold) for u in unit))
        margins.append(min(abs(abs(u) - threshold) / threshold for u in unit))
    return _runs_min(labels, margins)
