"""QA answer rules: recon4d against the public DSR Suite answer functions, side by side.

Prints one JSON object. For each rule (distance, speed comparison, direction), 5,000 seeded
30-step series from smooth random 3D trajectories are answered by the reference functions
(``dsr_reference.py``: stand-ins written from the reference's behaviour and checked against
every ``describe_*`` case of ``shared/data/dsr_reference_vectors.json`` first), by recon4d
one series per call (``describe_distance`` ...) and by recon4d's batched entry points
(``describe_distances`` ...; its texts, which are ready when it returns). Every answer
string must be identical across the three. The ratios are answers/s of recon4d over the
reference, timed in the same process, the three taking turns (best of ``--repeats``), by
wall clock and by CPU time of this process (which a loaded machine disturbs less).

    python benchmarks/qa.py [--series 5000] [--steps 30] [--seed 0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import dsr_reference
from recon4d.qa_compiler import rules

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsr_reference_vectors.json"


def random_trajectories(rng: np.random.Generator, n_series: int, n_frames: int) -> np.ndarray:
    """(n_series, 2, n_frames, 3) smooth random walks of two objects, metres, ~1-5 m apart."""
    start = rng.uniform(-3.0, 3.0, (n_series, 2, 1, 3))
    velocity = np.cumsum(rng.normal(0.0, 0.05, (n_series, 2, n_frames, 3)), axis=2)
    velocity *= rng.uniform(0.2, 2.0, (n_series, 2, 1, 1))
    return start + np.cumsum(velocity, axis=2)


def _rates(fns: dict, count: int, repeats: int, clock=time.perf_counter) -> dict:
    """Answers per second of each ``fn()`` (``count`` answers a call), best of ``repeats``.

    The functions take turns in every repeat, so a load change on a shared machine hits
    them alike and the ratios stay comparable.
    """
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            best[name] = min(best[name], clock() - t0)
    return {name: count / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    checked = dsr_reference.check_against_vectors(VECTORS)

    rng = np.random.default_rng(args.seed)
    track = random_trajectories(rng, args.series, args.steps + 1)
    distances = np.linalg.norm(track[:, 0, 1:] - track[:, 1, 1:], axis=-1)  # (S, steps)
    speeds = np.linalg.norm(np.diff(track, axis=2), axis=-1) * 10.0  # (S, 2, steps): m/s at 10 fps
    speeds_a, speeds_b = np.ascontiguousarray(speeds[:, 0]), np.ascontiguousarray(speeds[:, 1])
    directions = track[:, 0, 1:] - track[:, 1, 1:]  # (S, steps, 3)
    # The reference gets what a caller of it holds: Python lists of one series each.
    distance_lists, speed_lists, direction_lists = distances.tolist(), speeds.tolist(), directions.tolist()
    profile = rules.DSR
    n = args.series

    cases = {
        "distance": (
            lambda: [dsr_reference.describe_dist_runs(d) for d in distance_lists],
            lambda: [rules.describe_distance(d, profile) for d in distance_lists],
            lambda: rules.describe_distances(distances, profile).texts,
        ),
        "speed_comparison": (
            lambda: [dsr_reference.describe_spd_comp(a, b) for a, b in speed_lists],
            lambda: [rules.describe_speed_comparison(a, b, profile) for a, b in speed_lists],
            lambda: rules.describe_speed_comparisons(speeds_a, speeds_b, profile).texts,
        ),
        "direction": (
            lambda: [dsr_reference.describe_dir(v) for v in direction_lists],
            lambda: [rules.describe_direction(v, profile) for v in direction_lists],
            lambda: rules.describe_directions(directions, profile).texts,
        ),
    }
    report = {"benchmark": "qa_rules", "series": n, "steps": args.steps, "seed": args.seed,
              "reference_vectors_checked": checked}
    for name, (reference, single, batched) in cases.items():
        expected = reference()
        for label, fn in (("single", lambda: [d.text for d in single()]), ("batched", batched)):
            got = list(fn())
            mismatches = sum(g != e for g, e in zip(got, expected))
            if mismatches or len(got) != len(expected):
                raise SystemExit(f"{name} ({label}): {mismatches} of {n} answers differ from the reference")
        fns = {"reference": reference, "single": single, "batched": batched}
        report[name] = {"identical_answers": n,
                        "mean_phases": round(float(np.mean([a.count("(") or 1 for a in expected])), 2)}
        for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
            rates = _rates(fns, n, args.repeats, clock)
            report[name][clock_name] = {
                "reference_answers_per_s": round(rates["reference"]),
                "single_answers_per_s": round(rates["single"]),
                "batched_answers_per_s": round(rates["batched"]),
                "single_vs_reference": round(rates["single"] / rates["reference"], 2),
                "batched_vs_reference": round(rates["batched"] / rates["reference"], 2),
            }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
