"""The tracking stage alone against synthetic ground truth. Prints one JSON object.

For each seed (static and moving cameras) a synthetic scene is rendered to mp4, decoded as
`recon4d process` decodes it (``--frames`` uniform samples, π³ pixel budget) and tracked with
the chosen tracker backend (``classic`` by default; ``-O key=value`` sets its options). Against
the ground truth on the sampled frames:

- recall / precision: ground-truth objects and tracks matched one-to-one (Hungarian) on their
  mean box IoU over the frames either is visible, a match needing IoU ≥ 0.3 (a track that
  covers its object in a third of the frames does not count);
- identity switches (CLEAR-MOT): per frame, ground-truth boxes and track boxes are matched
  one-to-one at IoU ≥ 0.3; a switch is a ground-truth object matched to another track than
  the one it was last matched to;
- labels: over matched pairs, the fraction whose person / not-person label is right, and the
  tracks labelled ``person`` that match a non-person (``false_person``);
- seconds of the tracker per clip (wall and CPU time of the process), and per stage of the
  classic tracker when it reports them;
- with ``--baseline-class module:Class`` a second tracker (e.g. main's classic tracker copied
  under another package name) runs on every clip in turns with the first, so both see the same
  machine load, and the speed-ups baseline / tracker are reported.

Rendered scenes are cached in ``--cache`` (rendering takes ~13 s a scene).

    python benchmarks/track_fidelity.py [--seeds 0 1 2 3] [--cameras static moving] [-O work_long_side=320]
    PYTHONPATH=/tmp/old python benchmarks/track_fidelity.py --baseline-class old_classic.tracker:ClassicTracker
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from recon4d.backends import resolve_backend
from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.video import read_clip

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_fidelity import parse_options  # noqa: E402


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) xyxy, broadcast; 0 where either is NaN."""
    lo, hi = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda box: np.prod(box[..., 2:] - box[..., :2], axis=-1)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(inter / (area(a) + area(b) - inter), nan=0.0)


def match_tracks(gt_boxes, gt_visible, est_boxes, est_visible, min_iou: float = 0.3) -> dict[int, int]:
    """GT row → track row, one-to-one by mean IoU over the frames either is visible (≥ min_iou)."""
    iou = pair_iou(gt_boxes[:, None], est_boxes[None])  # (G, K, T)
    either = gt_visible[:, None] | est_visible[None]
    mean = (iou * either).sum(-1) / np.maximum(either.sum(-1), 1)
    if mean.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-mean)
    return {int(g): int(k) for g, k in zip(rows, cols) if mean[g, k] >= min_iou}


def identity_switches(gt_boxes, gt_visible, est_boxes, est_visible, min_iou: float = 0.3) -> int:
    """CLEAR-MOT identity switches: per-frame one-to-one matches at IoU ≥ min_iou."""
    last: dict[int, int] = {}
    switches = 0
    for t in range(gt_boxes.shape[1]):
        g_rows, k_rows = np.flatnonzero(gt_visible[:, t]), np.flatnonzero(est_visible[:, t])
        if len(g_rows) == 0 or len(k_rows) == 0:
            continue
        iou = pair_iou(gt_boxes[g_rows, t][:, None], est_boxes[k_rows, t][None])
        for i, j in zip(*linear_sum_assignment(-iou)):
            if iou[i, j] < min_iou:
                continue
            g, k = int(g_rows[i]), int(k_rows[j])
            switches += g in last and last[g] != k
            last[g] = k
    return switches


def scene_paths(cache: Path, seed: int, static: bool, width: int, height: int, video_frames: int):
    folder = cache / f"{'static' if static else 'moving'}_{seed}_{width}x{height}_{video_frames}"
    if not (folder / "scene.zarr" / "zarr.json").exists():
        write_synthetic(folder, SynthConfig(seed=seed, n_frames=video_frames, width=width, height=height,
                                            static_camera=static), overwrite=True)
    return folder / "video.mp4", folder / "scene.zarr"


def load_tracker(name: str, class_path: str | None, options: dict, cache: Path):
    """The tracker backend ``name``, or ``module:Class`` (importable, e.g. on PYTHONPATH) when given."""
    if class_path:
        module, _, attribute = class_path.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
    else:
        cls = resolve_backend("track", name, cache / "no_weights").spec.load_class()
    return cls.from_config(options, "cpu")


def evaluate(tracker, clip, gt) -> dict:
    """Counts and seconds (wall and CPU of this process) of one tracker on one clip."""
    frames = clip.frame_index
    gt_boxes, gt_visible = gt.box_xyxy[:, frames].astype(np.float64), gt.visible[:, frames]
    started, started_cpu = time.perf_counter(), time.process_time()
    tracks = tracker.track(clip)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    est_boxes = tracks.boxes_xyxy.astype(np.float64)
    matched = match_tracks(gt_boxes, gt_visible, est_boxes, tracks.visible)
    entry = {
        "gt": gt.n_objects, "tracks": tracks.n_objects, "matched": len(matched),
        "switches": identity_switches(gt_boxes, gt_visible, est_boxes, tracks.visible),
        "label_right": sum((tracks.categories[k] == "person") == (gt.categories[g] == "person")
                           for g, k in matched.items()),
        "false_person": sum(tracks.categories[k] == "person" and gt.categories[g] != "person"
                            for g, k in matched.items()),
        "unmatched_person": sum(tracks.categories[k] == "person" for k in range(tracks.n_objects)
                                if k not in matched.values()),
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        "missed": [gt.categories[g] for g in range(gt.n_objects) if g not in matched],
    }
    stage_seconds = getattr(tracker, "last_stage_seconds", None)
    if stage_seconds:
        entry["stages_s"] = {k: round(v, 3) for k, v in stage_seconds.items()}
    return entry


def summary(entries: list[dict]) -> dict:
    """Totals over scenes: recall, precision, switches per 10 matched tracks, labels, seconds per clip."""
    totals = Counter()
    for entry in entries:
        totals.update({k: v for k, v in entry.items() if isinstance(v, (int, float))})
        for key, value in entry.get("stages_s", {}).items():
            totals[f"stage_{key}"] += value
    n_scenes = max(len(entries), 1)
    return {
        "recall": totals["matched"] / max(totals["gt"], 1),
        "precision": totals["matched"] / max(totals["tracks"], 1),
        "switches_per_10_tracks": 10 * totals["switches"] / max(totals["matched"], 1),
        "label_accuracy": totals["label_right"] / max(totals["matched"], 1),
        "false_person": totals["false_person"], "unmatched_person": totals["unmatched_person"],
        "seconds_per_clip": totals["seconds"] / n_scenes,
        "cpu_seconds_per_clip": totals["cpu_seconds"] / n_scenes,
        "stages_s_per_clip": {k[6:]: round(v / n_scenes, 3) for k, v in totals.items() if k.startswith("stage_")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--cameras", nargs="+", default=["static", "moving"], choices=["static", "moving"])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--tracker", default="classic")
    parser.add_argument("--tracker-class", default=None,
                        help="module:Class of a tracker to run instead of --tracker (e.g. another version of the "
                             "classic tracker on PYTHONPATH)")
    parser.add_argument("--baseline-class", default=None,
                        help="module:Class of a second tracker run on every clip in turns with the first (same load; "
                             "its figures under \"baseline\", with the speed-ups)")
    parser.add_argument("-O", dest="options", action="append", default=[], help="tracker option key=value")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "recon4d_track_bench")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    options = parse_options(args.options)
    tracker = load_tracker(args.tracker, args.tracker_class, options, Path(args.cache))
    baseline = load_tracker(args.tracker, args.baseline_class, {}, Path(args.cache)) if args.baseline_class else None

    per_scene, baseline_scenes = [], []
    for camera in args.cameras:
        for seed in args.seeds:
            video, store = scene_paths(args.cache, seed, camera == "static", width, height, args.video_frames)
            clip, gt = read_clip(video, n_frames=args.frames), open_scene(store)
            where = {"camera": camera, "seed": seed}
            if baseline is not None and len(per_scene) % 2:  # alternate who goes first
                baseline_scenes.append({**where, **evaluate(baseline, clip, gt)})
            per_scene.append({**where, **evaluate(tracker, clip, gt), "gt_categories": list(gt.categories)})
            if baseline is not None and len(baseline_scenes) < len(per_scene):
                baseline_scenes.append({**where, **evaluate(baseline, clip, gt)})

    result = {
        "benchmark": "track_fidelity",
        "tracker": args.tracker_class or args.tracker, "options": options,
        "video": f"{width}x{height}, {args.video_frames} frames; {args.frames} sampled",
        **summary(per_scene),
    }
    if baseline is not None:
        result["baseline"] = {"tracker": args.baseline_class, **summary(baseline_scenes), "scenes": baseline_scenes}
        for key in ("seconds_per_clip", "cpu_seconds_per_clip"):
            result[f"speedup_{key}"] = round(result["baseline"][key] / max(result[key], 1e-9), 3)
    result["scenes"] = per_scene
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
