"""How many speed labels change when speeds are per second instead of per sampled step.

Prints one JSON object. Speed (abs/rel_spd) and speed-comparison (abs/rel_spd_comp)
questions are compiled from ground-truth synthetic scenes (``gt_scenes.py``), sampled as
``recon4d process --frames 32`` samples a 40-frame, 10 fps clip (gaps alternating 0.1 s
and 0.2 s) and, as a control, with every frame (even 0.1 s gaps). Each question is
answered twice on the same plan: with the compiler's speeds (scene units per second over
the true time between sampled frames) and with the per-step lengths the compiler used
before (no division by the gap). A label "changes" when the two answer texts differ.

    python benchmarks/qa_speed_units.py [--seeds 0 1 ... 7] [--per-scene 40]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np

from gt_scenes import gt_scene
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene, plan_from_record
from recon4d.qa_compiler.questions import observed_targets
from recon4d.qa_compiler.rules import DSR, describe_distance, describe_speed_comparison

SPEED_TYPES = ("abs_spd", "rel_spd", "abs_spd_comp", "rel_spd_comp")


def per_step_answer(scene, record):
    """The answer from per-step displacement lengths (the old, unit-less speeds)."""
    points = observed_targets(scene, plan_from_record(scene, record))
    steps = np.linalg.norm(np.diff(points, axis=1), axis=-1)
    if record.qtype.endswith("spd_comp"):
        return describe_speed_comparison(steps[0], steps[1], DSR)
    return describe_distance(steps[0], DSR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--per-scene", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    report = {"benchmark": "qa_speed_units", "seeds": args.seeds, "per_scene": args.per_scene,
              "clip": "40 frames at 10 fps"}
    for sampling, sampled in (("32_of_40_frames", 32), ("every_frame", None)):
        total, changed = Counter(), Counter()
        phases_per_second, phases_per_step = [], []
        for seed in args.seeds:
            scene = gt_scene(seed, sampled=sampled)
            config = CompileConfig(n_per_scene=args.per_scene, types=SPEED_TYPES, seed=seed)
            records, _ = compile_scene(scene, config, video_id=f"synth{seed}")
            for record in records:
                old = per_step_answer(scene, record)
                total[record.qtype] += 1
                changed[record.qtype] += old.text != record.answer_text
                phases_per_second.append(len(record.phases))
                phases_per_step.append(len(old.phases))
        report[sampling] = {
            "labels": sum(total.values()),
            "changed": sum(changed.values()),
            "by_type": {t: {"labels": total[t], "changed": changed[t]} for t in SPEED_TYPES},
            "mean_phases_per_second": round(float(np.mean(phases_per_second)), 2),
            "mean_phases_per_step": round(float(np.mean(phases_per_step)), 2),
        }
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
