"""Why the classic tracker misses a ground-truth mover or makes a ghost track, per scene. Prints JSON.

On pipeline_fidelity's scenes (track_diagnose's cache), the tracker's motion field (not compact) and
its tracks are compared with the ground truth's masks and depth at the sampled frames:

- each counted GT object the tracks miss gets one cause: ``bg_wrong`` (in most of its frames the
  background model flags a large part of the static scene, or the threshold jumps over
  ``--high-threshold``), ``weak`` (its residual stays under the threshold: flagged on under
  ``--min-flagged`` of its mask in under 3 frames), ``merged`` (a track covers it, in a box much
  larger than its own: joined with a neighbour or the halo), ``brief`` (flagged in 3 frames or more
  but no track covers it: its detections never made a kept track);
- each track matched to no counted object gets one: ``on_object`` (a piece or a duplicate of a GT
  object: its best IoU with one over 0.1), ``near_structure`` (on static scene nearer than half the
  frame's median depth: parallax), ``static`` (elsewhere on the static scene).

    python benchmarks/mover_causes.py --seeds 104 109 [-O key=value ...] [--jobs 2]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from track_diagnose import match_scene, run_scenes, scene_parser, scene_paths  # noqa: E402

MIN_FLAGGED = 0.3
"""Fraction of an object's mask flagged moving for the frame to count as found."""
HIGH_THRESHOLD = 3.0
"""A frame's threshold (px) above which its background model is taken as wrong."""
STATIC_FLAGGED = 0.1
"""Fraction of the static textured scene flagged moving above which the background model is wrong."""


def merged_frames(box: np.ndarray, boxes: np.ndarray) -> int:
    """Frames in which some track's box holds most of the object's ``box`` (T, 4) and is over twice as
    large (the object joined with a neighbour or its halo); ``boxes`` (K, T, 4) xyxy, NaN where unseen."""
    low, high = np.maximum(box[None, :, :2], boxes[..., :2]), np.minimum(box[None, :, 2:], boxes[..., 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=-1)
    own = np.prod(np.clip(box[:, 2:] - box[:, :2], 0.0, None), axis=-1)
    area = np.prod(np.clip(boxes[..., 2:] - boxes[..., :2], 0.0, None), axis=-1)
    with np.errstate(invalid="ignore"):
        holds = np.nan_to_num((inter >= 0.5 * own[None]) & (area > 2.0 * own[None]) & (own[None] > 0))
    return int(np.any(holds, axis=0).sum())


def causes(seed: int, kind: str, options: dict, reuse_motion: bool = False) -> dict:
    from recon4d.store import open_scene
    from recon4d.tracking.classic.motion import compute_motion, to_working, working_size
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.video import read_clip

    video, store = scene_paths(seed, kind)
    clip, full = read_clip(video, n_frames=32), open_scene(store)
    tracker = ClassicTracker.from_config(options)
    config = tracker.config
    tracks = tracker.track(clip)
    height, width = clip.frames.shape[1:3]
    size = working_size(width, height, config.work_long_side)
    _, gray = to_working(clip.frames, size)
    motion = compute_motion(gray, config)
    frames = np.asarray(clip.frame_index)
    gt, est, iou, matching, _, _ = match_scene(full, clip, tracks)
    n_frames = len(frames)
    masks = np.zeros((gt.n_objects, n_frames, size[1], size[0]), bool)
    for g in range(gt.n_objects):
        for i, t in enumerate(frames):
            mask = np.asarray(full.masks[g, t], np.uint8)
            masks[g, i] = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0
    depth = np.stack([cv2.resize(np.asarray(full.local_points[t])[..., 2].astype(np.float32), size,
                                 interpolation=cv2.INTER_NEAREST) for t in frames])
    any_object = masks.any(axis=0)
    residual = np.asarray(motion.residual)
    moving = np.asarray(motion.moving)
    static = (residual > 0) & ~any_object
    static_flagged = [float(moving[t][static[t]].mean()) if static[t].any() else 0.0 for t in range(n_frames)]
    frame_wrong = [(static_flagged[t] > STATIC_FLAGGED) or motion.thresholds[t] > HIGH_THRESHOLD
                   for t in range(n_frames)]
    objects, missed = [], {}
    for g in np.flatnonzero(matching.counted):
        seen = [t for t in range(n_frames) if masks[g, t].sum() >= 20]
        flagged = [float(moving[t][masks[g, t]].mean()) for t in seen]
        ratio = [float(np.median(residual[t][masks[g, t]]) / max(motion.thresholds[t], 1e-6)) for t in seen]
        found = sum(f >= MIN_FLAGGED for f in flagged)
        row = {"g": int(g), "cat": gt.categories[g], "frames": len(seen), "flagged_frames": found,
               "median_ratio": round(float(np.median(ratio)), 2) if ratio else None,
               "wrong_frames": sum(frame_wrong[t] for t in seen), "matched": matching.gt_to_est.get(int(g))}
        if row["matched"] is None:
            if found >= 3 and merged_frames(gt.box_xyxy[g], tracks.boxes_xyxy) >= 3:
                cause = "merged"
            elif found >= 3:
                cause = "brief"
            elif seen and row["wrong_frames"] > len(seen) / 2:
                cause = "bg_wrong"
            else:
                cause = "weak"
            row["cause"] = cause
            missed[cause] = missed.get(cause, 0) + 1
        objects.append(row)
    ghosts, ghost_causes = [], {}
    for k in range(tracks.n_objects):
        matched = matching.est_to_gt.get(k)
        if matched is not None:
            continue
        best = float(matching.mean_iou[:, k].max()) if gt.n_objects else 0.0
        scale = np.array([size[0] / width, size[1] / height] * 2)
        near = []
        for t in np.flatnonzero(tracks.visible[k]):
            x0, y0, x1, y1 = np.round(tracks.boxes_xyxy[k, t] * scale).astype(int)
            inside = ~any_object[t, y0:y1 + 1, x0:x1 + 1]
            if inside.any():
                near.append(float(np.median(depth[t, y0:y1 + 1, x0:x1 + 1][inside]) / np.median(depth[t])))
        if best > 0.1:
            cause = "on_object"
        elif near and np.median(near) < 0.5:
            cause = "near_structure"
        else:
            cause = "static"
        ghost_causes[cause] = ghost_causes.get(cause, 0) + 1
        ghosts.append({"k": k, "frames": int(tracks.visible[k].sum()), "best_iou": round(best, 2),
                       "depth_rel": round(float(np.median(near)), 2) if near else None, "cause": cause})
    return {"seed": seed, "camera": kind, "recall": matching.recall(),
            "precision": matching.precision(tracks.n_objects), "missed": missed, "ghosts": ghost_causes,
            "wrong_frames": int(sum(frame_wrong)), "thresholds": [round(float(x), 2) for x in motion.thresholds],
            "static_flagged": [round(x, 3) for x in static_flagged], "objects": objects, "ghost_rows": ghosts}


def main() -> None:
    args = scene_parser(__doc__).parse_args()
    options, results = run_scenes(causes, args)
    total = {"missed": {}, "ghosts": {}}
    for r in results:
        for part in ("missed", "ghosts"):
            for cause, n in r[part].items():
                total[part][cause] = total[part].get(cause, 0) + n
    recall = [sum(r["recall"][i] for r in results) for i in (0, 1)]
    precision = [sum(r["precision"][i] for r in results) for i in (0, 1)]
    total.update(recall=recall, precision=precision, options=options)
    print(json.dumps({"benchmark": "mover_causes", "overall": total, "scenes": results}, indent=1, default=int))


if __name__ == "__main__":
    main()
