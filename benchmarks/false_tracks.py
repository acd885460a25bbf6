"""What the classic tracker's unmatched tracks are, on pipeline_fidelity's scenes. Prints one JSON object.

Runs the tracker alone on the scenes of ``track_diagnose.py`` (same cache, same decoding) and
matches tracks to ground-truth objects as ``pipeline_fidelity.py`` does. Every frame of a track
is judged against the GT boxes of that frame:

- ``good``: box IoU ≥ 0.3 with some object;
- ``merge``: at least half of each of two or more objects' boxes lies inside the track's box;
- ``part``: at least half of the track's box lies inside one object's box (a limb, a piece of a
  plain interior, the part of a body the motion mask kept);
- ``loose``: at least half of one object's box lies inside the track's box, IoU < 0.3 (a box
  swollen by a shadow, a margin of background, a trail);
- ``off``: the track's box overlaps an object by less than that (a box shifted off its object);
- ``background``: under 20 % of the track's box lies on any object.

An unmatched track is then a ``duplicate`` (mostly ``good`` frames on an object another track
matched: the object broken into two tracks in time or space), a ``near_miss`` (mostly ``good``
frames on an object nobody matched: too short, or IoU just under the bar on average), or the
most common of its frames' kinds. Missed objects (counted, unmatched) are listed with the kind
of the tracks that cover them.

    python benchmarks/false_tracks.py [--set dev] [--seeds 101 102:follow] [--jobs 1] [--reuse-motion]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
from track_diagnose import cache_motion, run_scenes, scene_parser, scene_paths  # noqa: E402

KINDS = ("duplicate", "near_miss", "part", "merge", "loose", "off", "background")


def frame_kinds(track_boxes: np.ndarray, track_visible: np.ndarray, gt_boxes: np.ndarray,
                gt_visible: np.ndarray) -> list[str]:
    """The kind of each visible frame of one track: track_boxes (T, 4), gt_boxes (G, T, 4) xyxy."""
    kinds = []
    for t in np.flatnonzero(track_visible):
        box = track_boxes[t]
        objects = gt_boxes[gt_visible[:, t], t]
        if len(objects) == 0:
            kinds.append("background")
            continue
        width = np.clip(np.minimum(box[2], objects[:, 2]) - np.maximum(box[0], objects[:, 0]), 0, None)
        height = np.clip(np.minimum(box[3], objects[:, 3]) - np.maximum(box[1], objects[:, 1]), 0, None)
        inter = width * height
        own = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
        theirs = np.maximum((objects[:, 2] - objects[:, 0]) * (objects[:, 3] - objects[:, 1]), 1e-9)
        iou = inter / (own + theirs - inter)
        if iou.max() >= fm.MIN_IOU:
            kinds.append("good")
        elif np.count_nonzero(inter / theirs >= 0.5) >= 2:
            kinds.append("merge")
        elif (inter / own).max() >= 0.5:
            kinds.append("part")
        elif (inter / theirs).max() >= 0.5:
            kinds.append("loose")
        elif inter.sum() / own >= 0.2:
            kinds.append("off")
        else:
            kinds.append("background")
    return kinds


def classify(seed: int, kind: str, options: dict, reuse_motion: bool) -> dict:
    from recon4d.store import open_scene
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.video import read_clip

    video, store = scene_paths(seed, kind)
    if reuse_motion:
        cache_motion(video.parent)
    clip, full = read_clip(video, n_frames=32), open_scene(store)
    tracks = ClassicTracker.from_config(options).track(clip)
    gt = fm.gt_on_frames(full, clip.frame_index)
    est = SimpleNamespace(box_xyxy=tracks.boxes_xyxy.astype(np.float64), visible=tracks.visible)
    iou = fm.iou_table(gt, est)
    matching = fm.match_tracks(gt, est, iou)
    covered = fm.covered_objects(iou, tracks.visible)
    matched_gt = set(matching.gt_to_est)
    rows = []
    for k in range(tracks.n_objects):
        if k in matching.est_to_gt:
            continue
        kinds = frame_kinds(est.box_xyxy[k], tracks.visible[k], gt.box_xyxy, gt.visible)
        counts = Counter(kinds)
        good = covered[k][covered[k] >= 0]
        if counts["good"] >= 0.5 * len(kinds) and len(good):
            g = Counter(good.tolist()).most_common(1)[0][0]
            verdict = "duplicate" if g in matched_gt else "near_miss"
        else:
            verdict = max((c for c in KINDS[2:]), key=lambda c: (counts[c], -KINDS.index(c)))
        rows.append({"seed": seed, "k": k, "kind": verdict, "label": tracks.categories[k],
                     "frames": int(tracks.visible[k].sum()), "by_frame": dict(counts)})
    missed = []
    for g in np.flatnonzero(matching.counted):
        if g in matched_gt:
            continue
        best = int(np.argmax(matching.mean_iou[g])) if tracks.n_objects else -1
        missed.append({"seed": seed, "g": int(g), "cat": gt.categories[g], "frames": int(gt.visible[g].sum()),
                       "best_iou": round(float(matching.mean_iou[g, best]), 2) if best >= 0 else 0.0,
                       "best_cov": round(float(matching.coverage[g, best]), 2) if best >= 0 else 0.0})
    return {"seed": seed, "camera": kind, "tracks": tracks.n_objects, "matched": len(matching.pairs),
            "counted": int(matching.counted.sum()), "false": rows, "missed": missed}


def main() -> None:
    options, results = run_scenes(classify, scene_parser(__doc__).parse_args())
    false = [row for r in results for row in r["false"]]
    summary = {
        "tracks": sum(r["tracks"] for r in results), "matched": sum(r["matched"] for r in results),
        "counted": sum(r["counted"] for r in results),
        "false_by_kind": {c: sum(row["kind"] == c for row in false) for c in KINDS},
        "options": options,
    }
    print(json.dumps({"benchmark": "false_tracks", "overall": summary,
                      "false": [{k: row[k] for k in ("seed", "k", "kind", "label", "frames", "by_frame")} for row in false],
                      "missed": [m for r in results for m in r["missed"]]}, indent=None))


if __name__ == "__main__":
    main()
