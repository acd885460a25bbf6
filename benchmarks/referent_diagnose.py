"""Why questions name the wrong box: every "wrong_referent" question of ``pipeline_fidelity.py``, by cause. Prints JSON.

A question compiled from the estimate names each object by its box at one frame
(``fidelity_metrics.denoted_frames``); it is "wrong_referent" when that box has IoU < 0.3 with
the box of the GT object the track is matched to. For every such (object, frame) this tool says

- ``box``: what the box is on there (:func:`box_cause`): ``gt_hidden`` (the matched GT object is
  not visible: occluded or out of view; ``gt_hidden_other`` when the box covers another GT object
  there), ``other_object`` (the box covers another GT object by
  IoU ≥ 0.3: an identity switch or a merge), ``piece`` (half or more of the box lies on the GT
  object: a partial box), ``too_large`` (half or more of the GT box lies in it: a box grown over
  more than the object), ``off`` (it touches the object a little) or ``nothing`` (it touches no
  GT object: background, a ghost);
- ``status``: how the tracker got the box (the store's ``observed`` flag, :func:`frame_status`):
  ``observed`` (a detection), ``carried_back`` (before the track's first detection: clean-up
  carries tracks back), ``coasted`` (between detections: association coasting, stitched gaps) or
  ``after_last`` (after its last detection);
- where the frame lies in the track's life: frames since its first visible frame (``life``).

Also, over every visible frame of every matched track (``frames``) and over every denoted frame
of every question (``denoted``), how often the box covers the matched GT object, by status: what
naming objects only at observed frames can gain. Camera kinds static and pan use the
stabilised-background silhouettes (the "background" mask path); ``by_camera`` splits the causes.

    python benchmarks/referent_diagnose.py --seeds $(seq 101 130) [--jobs 2] [--cache DIR]

``--cache DIR`` keeps each scene's estimate and ground truth (pickled, heavy arrays dropped) and
reuses them, so a change of the QA compiler alone is measured without processing again;
``-C KEY=JSON`` sets a ``CompileConfig`` field (``-C name_observed=false``: main's sampling);
``--gated`` adds ``pipeline_fidelity.py``'s ``gated`` and ``gated_compile`` figures (the same
numbers from the same estimates). Other options as ``pipeline_fidelity.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import pickle
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
import pipeline_fidelity as pf  # noqa: E402

STATUSES = ("observed", "carried_back", "coasted", "after_last")
BOX_CAUSES = ("gt_hidden", "gt_hidden_other", "other_object", "piece", "too_large", "off", "nothing")


def frame_status(observed: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(T,) str status of one track's frames (module docstring): "" where not visible.

    observed, visible: (T,) bool."""
    status = np.full(visible.shape, "", dtype=object)
    seen = np.flatnonzero(observed & visible)
    first, last = (seen[0], seen[-1]) if len(seen) else (visible.size, -1)
    frames = np.arange(visible.size)
    status[visible & observed] = "observed"
    status[visible & ~observed & (frames < first)] = "carried_back"
    status[visible & ~observed & (frames > last)] = "after_last"
    status[visible & ~observed & (frames > first) & (frames < last)] = "coasted"
    return status


def box_cause(box: np.ndarray, matched: int, gt_boxes: np.ndarray, gt_visible: np.ndarray) -> str:
    """What an estimated box (4,) that misses its matched GT object (row ``matched``) lies on, among the
    GT boxes (G, 4) and visibility (G,) of its frame (module docstring)."""
    iou = np.where(gt_visible, fm.box_iou(box[None], gt_boxes), 0.0)
    others = np.delete(iou, matched)
    if not gt_visible[matched]:
        return "gt_hidden_other" if len(others) and others.max() >= fm.MIN_IOU else "gt_hidden"
    if len(others) and others.max() >= fm.MIN_IOU:
        return "other_object"
    target = gt_boxes[matched]
    low, high = np.maximum(box[:2], target[:2]), np.minimum(box[2:], target[2:])
    inter = float(np.prod(np.clip(high - low, 0.0, None)))
    area_box = float(np.prod(np.clip(box[2:] - box[:2], 0.0, None)))
    area_gt = float(np.prod(np.clip(target[2:] - target[:2], 0.0, None)))
    if area_box > 0 and inter >= 0.5 * area_box:
        return "piece"
    if area_gt > 0 and inter >= 0.5 * area_gt:
        return "too_large"
    return "off" if inter > 0 or (iou > 0).any() else "nothing"


def process_scene(seed: int, kind: str, settings: pf.Settings, cache: str | None) -> dict:
    """The estimate and ground truth of one scene (from ``cache`` when there)."""
    path = None if cache is None else Path(cache) / f"{seed}_{kind}.pkl"
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    from recon4d.pipeline import ProcessConfig, process_video
    from recon4d.synth.scene import SynthConfig, generate_scene
    from recon4d.video import write_video

    config = SynthConfig(seed=seed, n_frames=settings.frames, fps=settings.fps, width=settings.size[0],
                         height=settings.size[1], camera=kind, varied=True)
    synthetic = generate_scene(config)
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "video.mp4", synthetic.frames, config.fps)
        result = process_video(video, ProcessConfig(n_frames=settings.process_frames, **settings.backends,
                                                    backend_options=settings.backend_options))
    est = dataclasses.replace(result.scene, local_points=None, conf=None, masks=None)
    frames = est.frame_index
    gt = fm.gt_on_frames(synthetic.scene, frames)
    data = {"seed": seed, "kind": kind, "est": est, "gt": gt,
            "oracle": fm.oracle_scene(gt, synthetic.object_to_world[:, frames])}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(data))
    return data


def diagnose_scene(seed: int, kind: str, settings: pf.Settings, cache: str | None, compile_options: dict,
                   gate: bool = False) -> dict:
    """Per scene: the wrong-referent (object, frame) causes, and the cover rates by status.
    ``compile_options``: CompileConfig fields set for the compiles; ``gate``: also the reasons of the
    questions the gate keeps and of those compiled with it (as ``pipeline_fidelity.py``'s gated figures)."""
    from recon4d.qa_compiler.compiler import CompileConfig, compile_scene

    data = process_scene(seed, kind, settings, cache)
    est, gt, oracle = data["est"], data["gt"], data["oracle"]
    iou = fm.iou_table(gt, est)
    matching = fm.match_tracks(gt, est, iou)
    offered = pf.quality_gate()
    base = offered[0] if offered else CompileConfig()
    records, _ = compile_scene(est, dataclasses.replace(base, n_per_scene=settings.questions, seed=0, **compile_options),
                               video_id=f"synth-{seed}-{kind}")
    outcomes = fm.qa_outcomes(records, est, oracle, matching, gt)
    est_to_gt = {e: g for g, e in matching.pairs if matching.counted[g]}
    observed = est.observed_frames
    status = np.array([frame_status(observed[e], est.visible[e]) for e in range(est.n_objects)]).reshape(
        est.n_objects, est.n_frames)

    frames = Counter()  # (status, covers) over the visible frames of matched tracks
    for e, g in est_to_gt.items():
        for t in np.flatnonzero(est.visible[e]):
            frames[(status[e, t], bool(iou[g, e, t] >= fm.MIN_IOU))] += 1
    denoted, misses = Counter(), []
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome.reason == "unmatched_object":
            continue
        for label, t in fm.denoted_frames(record, est.timestamps_s).items():
            e = est.object_index(int(label))
            g = est_to_gt[e]
            covers = bool(fm.box_iou(est.box_xyxy[e, t], gt.box_xyxy[g, t]) >= fm.MIN_IOU)
            denoted[(status[e, t], covers)] += 1
            if covers:
                continue
            life = np.flatnonzero(est.visible[e])
            seen = np.flatnonzero(observed[e])
            misses.append({"qtype": record.qtype, "status": status[e, t],
                           "box": box_cause(est.box_xyxy[e, t], g, gt.box_xyxy[:, t], gt.visible[:, t]),
                           "life": int(t - life[0]), "life_fraction": float((t - life[0]) / max(life[-1] - life[0], 1)),
                           "to_detection": int(np.min(np.abs(seen - t))) if len(seen) else None,
                           "observer": label == record.observer})
    gated = {}
    if gate and offered is not None and offered[2] is not None:  # pipeline_fidelity's gated and gated_compile
        view, noisy, min_stability = offered[2](est)
        kept = fm.kept_by_gate(records, view, noisy, min_stability)
        gated_records, _ = compile_scene(est, dataclasses.replace(offered[1], n_per_scene=settings.questions, seed=0,
                                                                  **compile_options), video_id=f"synth-{seed}-{kind}")
        gated = {"gated": [o.reason for o, k in zip(outcomes, kept, strict=True) if k],
                 "gated_compile": [o.reason for o in fm.qa_outcomes(gated_records, est, oracle, matching, gt)]}
    return {"seed": seed, "kind": kind, "reasons": dict(Counter(o.reason for o in outcomes)), **gated,
            "misses": misses, "frames": [[*k, v] for k, v in frames.items()],
            "denoted": [[*k, v] for k, v in denoted.items()]}


def _rates(pairs: Counter) -> dict:
    """{status: {"n", "covers"}} from (status, covers) → count."""
    out = {}
    for status in STATUSES:
        n = pairs.get((status, True), 0) + pairs.get((status, False), 0)
        out[status] = {"n": n, "covers": pairs.get((status, True), 0) / n if n else None}
    return out


def summarise(results: list[dict]) -> dict:
    misses = [m for r in results for m in r["misses"]]
    table = {status: {cause: 0 for cause in BOX_CAUSES} for status in STATUSES}
    for m in misses:
        table[m["status"]][m["box"]] += 1
    frames, denoted = Counter(), Counter()
    for r in results:
        frames.update({(s, c): n for s, c, n in r["frames"]})
        denoted.update({(s, c): n for s, c, n in r["denoted"]})
    reasons = Counter()
    for r in results:
        reasons.update(r["reasons"])
    life = Counter("0" if m["life"] == 0 else "1-2" if m["life"] <= 2 else "3-5" if m["life"] <= 5 else ">5"
                   for m in misses)
    by_camera = {}
    for r in results:
        row = by_camera.setdefault(r["kind"], Counter())
        row.update(m["box"] for m in r["misses"])
        row.update(f"status:{m['status']}" for m in r["misses"])
    gated = {}
    for key in ("gated", "gated_compile"):
        if all(key in r for r in results) and results:
            counts = Counter(reason for r in results for reason in r[key])
            n = sum(counts.values())
            gated[key] = {"n": n, "agreement": counts["agree"] / n if n else None, "reasons": dict(sorted(counts.items()))}
    gated_kept = gated.get("gated", {}).get("n")
    if gated_kept is not None:
        gated["gated"]["kept_fraction"] = gated_kept / max(sum(reasons.values()), 1)
    return {
        **gated,
        "reasons": dict(sorted(reasons.items())),
        "misses": len(misses),
        "by_box": dict(Counter(m["box"] for m in misses).most_common()),
        "by_status": dict(Counter(m["status"] for m in misses).most_common()),
        "table": table,
        "life_frames": dict(sorted(life.items())),
        "at_track_start": sum(m["life"] == 0 for m in misses),
        "observer": sum(m["observer"] for m in misses),
        "frames_cover_by_status": _rates(frames),
        "denoted_cover_by_status": _rates(denoted),
        "by_camera": {k: dict(v) for k, v in by_camera.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", default=[str(s) for s in pf.SEED_SETS["dev"]], help="SEED or SEED:KIND")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--process-frames", type=int, default=32)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--backends", default="classic")
    parser.add_argument("-O", dest="options", action="append", default=[])
    parser.add_argument("--cache", default=None, help="folder to keep and reuse each scene's estimate")
    parser.add_argument("--per-scene", action="store_true", help="also print each scene's misses")
    parser.add_argument("--gated", action="store_true", help="also the gated and gated_compile figures")
    parser.add_argument("-C", dest="compile", action="append", default=[],
                        help="KEY=JSON: a CompileConfig field for the compile (e.g. name_observed=false), repeatable")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    settings = pf.Settings(args.frames, args.fps, (width, height), args.process_frames, args.questions,
                           pf.parse_backends(args.backends), pf.parse_stage_options(args.options))
    specs = pf.parse_specs(args.seeds)
    compile_options = {key: json.loads(value) for key, value in pf.parse_options(args.compile).items()}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(diagnose_scene, *zip(*specs), [settings] * len(specs),
                                    [args.cache] * len(specs), [compile_options] * len(specs),
                                    [args.gated] * len(specs)))
    else:
        results = [diagnose_scene(seed, kind, settings, args.cache, compile_options, args.gated) for seed, kind in specs]
    out = {"benchmark": "referent_diagnose", "seeds": [s for s, _ in specs], "compile": compile_options,
           "overall": summarise(results)}
    if args.per_scene:
        out["scenes"] = [{k: r[k] for k in ("seed", "kind", "reasons", "misses")} for r in results]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
