"""Blind-solver audit of compiled questions per distractor mode. Prints one JSON object.

Compiles the same synthetic scenes with `random`, `hard` and `mixed` distractors and scores
the text-only heuristics of `recon4d qa audit` on each set (every one should stay near 25%).

    python benchmarks/qa_audit.py [--seeds 0 1 2 3] [--per-scene 120]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from recon4d.qa_compiler.audit import audit
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.synth.scene import SynthConfig, generate_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--per-scene", type=int, default=120)
    args = parser.parse_args()
    scenes = [replace(generate_scene(SynthConfig(seed=s, n_frames=48, width=320, height=180)).scene,
                      local_points=None, conf=None, masks=None) for s in args.seeds]
    results = {}
    for mode in ("random", "hard", "mixed"):
        records = []
        for seed, scene in zip(args.seeds, scenes):
            made, _ = compile_scene(scene, CompileConfig(n_per_scene=args.per_scene, seed=seed, distractors=mode),
                                    video_id=f"synth{seed}")
            records += made
        result = audit(records)
        results[mode] = {"n_items": result["n_items"], "flagged": result["flagged"], "worst": result["worst"],
                         "heuristics": {k: round(v, 3) for k, v in result["heuristics"].items()}}
    print(json.dumps({"benchmark": "qa_audit", "scenes": len(scenes), "modes": results}, indent=2))


if __name__ == "__main__":
    main()
