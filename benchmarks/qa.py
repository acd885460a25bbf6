"""Answers per second of the QA rule engine vs a plain per-step Python loop.

Prints one JSON object. For each describer: the batched entry point
(``describe_distances`` ...), the one-series entry point called in a loop, and a
deliberately straightforward Python re-statement of the DSR generator's algorithm (the
``reference_*`` functions below, also used by the tests as a slow oracle). Series are
random smooth 3D trajectories sampled at 32 steps; both implementations must agree on
every answer.

    python benchmarks/qa.py [--series 20000] [--steps 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from recon4d.qa_compiler import rules

AXES = (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))


def _ratio(a: float, b: float) -> float:
    """a / b with IEEE semantics (x/0 = inf, 0/0 = nan), as numpy arrays divide."""
    if b != 0:
        return a / b
    return math.inf if a > 0 else math.nan


def _numbered(sentences: list[str]) -> str:
    return " ".join(f"({k}) {s}" for k, s in enumerate(sentences, 1))


def reference_distance(values, epsilon: float = 0.2, near_zero: float = 0.1) -> str:
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


def reference_speed_comparison(
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


def reference_direction(vectors, threshold: float = 0.3) -> str:
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


def random_trajectories(rng: np.random.Generator, n_series: int, n_frames: int) -> np.ndarray:
    """(n_series, 2, n_frames, 3) smooth random walks of two objects, metres, ~1-5 m apart."""
    start = rng.uniform(-3.0, 3.0, (n_series, 2, 1, 3))
    velocity = np.cumsum(rng.normal(0.0, 0.05, (n_series, 2, n_frames, 3)), axis=2)
    velocity *= rng.uniform(0.2, 2.0, (n_series, 2, 1, 1))
    return start + np.cumsum(velocity, axis=2)


def _rate(fn, count: int) -> float:
    """Answers per second of ``fn()`` producing ``count`` answers (best of 3)."""
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    track = random_trajectories(rng, args.series, args.steps + 1)
    distances = np.linalg.norm(track[:, 0, 1:] - track[:, 1, 1:], axis=-1)
    speeds = np.linalg.norm(np.diff(track, axis=2), axis=-1) * 10.0  # metres per second at 10 fps
    directions = track[:, 0, 1:] - track[:, 1, 1:]
    profile = rules.DSR
    eps, nz, t = profile.ratio_epsilon, profile.near_zero, profile.direction_threshold
    n = args.series
    m = min(n, 2000)  # the one-series entry points are timed on a subset

    cases = {
        "describe_distance": (
            lambda: rules.describe_distances(distances, profile),
            lambda: [rules.describe_distance(d, profile) for d in distances[:m]],
            lambda: [reference_distance(d, eps, nz) for d in distances.tolist()],
        ),
        "describe_speed_comparison": (
            lambda: rules.describe_speed_comparisons(speeds[:, 0], speeds[:, 1], profile),
            lambda: [rules.describe_speed_comparison(a, b, profile) for a, b in speeds[:m]],
            lambda: [reference_speed_comparison(a, b, eps, nz) for a, b in speeds.tolist()],
        ),
        "describe_direction": (
            lambda: rules.describe_directions(directions, profile),
            lambda: [rules.describe_direction(v, profile) for v in directions[:m]],
            lambda: [reference_direction(v, t) for v in directions.tolist()],
        ),
    }
    report = {"series": n, "steps": args.steps, "profile": profile.name, "seed": args.seed}
    for name, (batched, single, loop) in cases.items():
        ours, expected = batched(), loop()
        mismatches = sum(o.text != e for o, e in zip(ours, expected))
        assert mismatches == 0, f"{name}: {mismatches} answers differ from the Python reference"
        assert [o.text for o in single()] == expected[:m]
        batched_rate = _rate(batched, n)
        loop_rate = _rate(loop, n)
        report[name] = {
            "batched_answers_per_s": round(batched_rate),
            "single_call_answers_per_s": round(_rate(single, m)),
            "python_loop_answers_per_s": round(loop_rate),
            "batched_speedup": round(batched_rate / loop_rate, 2),
            "mean_phases": round(float(np.mean([len(o.phases) for o in ours])), 2),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
