"""Calibrate the QA quality gate: which of its parts refuse right and wrong questions, and the
kept fraction / agreement curve over its thresholds. Prints one JSON object.

Reads the estimate, ground truth and true poses that ``placement_diagnose.py`` keeps per scene
with ``RECON4D_PLACEMENT_KEEP=1`` (``$TMPDIR/recon4d_placement/SEED_KIND/scenes.pkl``; run it
first on the same seeds). Per scene, 40 questions are compiled from the estimate without the
gate and scored as ``pipeline_fidelity.py`` scores them (``fidelity_metrics.qa_outcomes``:
a question about an unmatched track or naming an object by a box on something else is
wrong). For each question it records the lowest quality score of its objects, whether the
gated view at ``min_quality`` 0 still answers it (the frame checks: untrusted camera frames,
frames the record marks not ok, the gate's own speed / depth-jump check), whether it would
without the per-frame record, and on how many of the gate's noisy copies its answer holds.
The gate with ``min_quality`` q and ``min_stability`` s keeps a question when the view
answers it, its objects score ≥ q and its answer holds on ≥ s of the copies — what
``pipeline_fidelity``'s ``gated`` figure measures with the compiler's defaults.

    python benchmarks/gate_calibration.py --seeds 101 102 ... [--draws 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
from pipeline_fidelity import parse_specs  # noqa: E402

CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "recon4d_placement"
QUALITY_GRID = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
STABILITY_GRID = (0.0, 0.75, 0.875, 1.0)


def question_rows(seed: int, kind: str, draws: int) -> list[dict]:
    """One dict per question compiled without the gate from the kept scene of (seed, kind)."""
    from recon4d.qa_compiler.compiler import CompileConfig, compile_scene, reanswer
    from recon4d.qa_compiler.questions import Skip
    from recon4d.qa_compiler.quality_gate import apply_quality_gate, noisy_scenes

    def answer(scene, record):
        try:
            return reanswer(scene, record).description.text
        except (Skip, ValueError, IndexError, KeyError):
            return None

    path = CACHE / f"{seed}_{kind}" / "scenes.pkl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run RECON4D_PLACEMENT_KEEP=1 benchmarks/placement_diagnose.py "
                         f"--seeds {seed} first (same TMPDIR).")
    est, gt, poses = pickle.loads(path.read_bytes())
    oracle = fm.oracle_scene(gt, poses)
    matching = fm.match_tracks(gt, est, fm.iou_table(gt, est))
    config = dataclasses.replace(CompileConfig(), n_per_scene=40, seed=0, min_quality=None)
    records, _ = compile_scene(est, config, video_id=f"synth-{seed}-{kind}")
    outcomes = fm.qa_outcomes(records, est, oracle, matching, gt)
    quality = est.object_quality
    view = apply_quality_gate(est, 0.0).scene
    noisy = noisy_scenes(view, np.random.default_rng([0, seed, 1]), draws)
    no_frames = dataclasses.replace(est, object_quality=dataclasses.replace(
        quality, frame_ok=np.ones_like(quality.frame_ok)))
    view_no_frames = apply_quality_gate(no_frames, 0.0).scene
    rows = []
    for record, outcome in zip(records, outcomes):
        scores = [float(quality.score[est.object_index(int(label))]) for label in fm.record_objects(record)]
        answered = answer(view, record) is not None
        holds = (sum(answer(copy, record) == record.answer_text for copy in noisy) / len(noisy)
                 if answered and noisy else float(answered))
        rows.append({"seed": seed, "camera": kind, "qtype": record.qtype, "agree": bool(outcome.agree),
                     "reason": outcome.reason, "implausible": bool(outcome.implausible),
                     "about_objects": bool(outcome.about_objects), "min_score": min(scores) if scores else 1.0,
                     "frames_ok": answered, "frames_ok_without_record": answer(view_no_frames, record) is not None,
                     "stability": holds})
    return rows


def curve(rows: list[dict]) -> list[dict]:
    """Agreement and kept fraction of the gate at every (min_quality, min_stability) of the grids."""
    agree = np.array([r["agree"] for r in rows])
    implausible = np.array([r["implausible"] for r in rows])
    score = np.array([r["min_score"] for r in rows])
    frames = np.array([r["frames_ok"] for r in rows])
    stability = np.array([r["stability"] for r in rows])
    points = []
    for q in QUALITY_GRID:
        for s in STABILITY_GRID:
            kept = frames & (score >= q) & (stability >= s)
            points.append({"min_quality": q, "min_stability": s, "kept": int(kept.sum()),
                           "kept_fraction": round(float(kept.mean()), 4),
                           "agreement": round(float(agree[kept].mean()), 4) if kept.any() else None,
                           "implausible_kept": int(implausible[kept].sum())})
    return points


def refusals(rows: list[dict], min_quality: float, min_stability: float) -> dict:
    """How many right and wrong questions each part of the gate refuses (a question can fail several)."""
    parts = {"score_below_min_quality": lambda r: r["min_score"] < min_quality,
             "frame_checks": lambda r: not r["frames_ok"],
             "frame_checks_of_the_record": lambda r: r["frames_ok_without_record"] and not r["frames_ok"],
             "unstable_answer": lambda r: r["frames_ok"] and r["stability"] < min_stability}
    return {name: {"right": sum(1 for r in rows if r["agree"] and test(r)),
                   "wrong": sum(1 for r in rows if not r["agree"] and test(r))} for name, test in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", required=True, help="SEED or SEED:KIND")
    parser.add_argument("--draws", type=int, default=8, help="noisy copies per scene (the compiler's stability_draws)")
    args = parser.parse_args()
    from recon4d.qa_compiler.compiler import CompileConfig

    rows = [row for seed, kind in parse_specs(args.seeds) for row in question_rows(seed, kind, args.draws)]
    default = CompileConfig()
    reasons: dict[str, int] = {}
    for r in rows:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    by_type = {}
    for qtype in sorted({r["qtype"] for r in rows}):
        group = [r for r in rows if r["qtype"] == qtype]
        by_type[qtype] = {"questions": len(group), "agreement": round(float(np.mean([r["agree"] for r in group])), 4)}
    print(json.dumps({
        "benchmark": "gate_calibration", "seeds": args.seeds, "questions": len(rows),
        "agreement_ungated": round(float(np.mean([r["agree"] for r in rows])), 4) if rows else None,
        "reasons": reasons, "by_type": by_type,
        "default": {"min_quality": default.min_quality, "min_stability": default.min_stability},
        "refusals_at_default": refusals(rows, default.min_quality, default.min_stability),
        "curve": curve(rows),
    }, indent=1))


if __name__ == "__main__":
    main()
