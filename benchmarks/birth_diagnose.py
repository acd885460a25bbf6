"""Where the classic tracker loses a ground-truth mover between detection and a kept track, and why a
ghost track survives, per scene. Prints JSON.

On pipeline_fidelity's scenes (track_diagnose's cache), association's raw tracks are followed through
clean-up (:func:`recon4d.tracking.classic.cleanup.clean_tracks`, step by step as it runs them): a raw or
stitched track covers a GT object in each detected frame whose box lies at least half inside that
object's GT box (a piece of it counts; ``raw_iou``: the mean IoU of those boxes), and each stitched track
gets its fate: :func:`~recon4d.tracking.classic.cleanup.drop_reason` (``frames``, ``area``,
``point_support``, ``travel``, ``epipolar``, ``edge_motion``, ``scene_share``, ``background_texture``), or
``absorbed`` / ``duplicate`` / ``kept``. Each counted GT object the final tracks miss gets one stage:

- ``undetected``: no raw track covers it in any frame (the motion mask or segmentation; ``raw_lost``:
  raw tracks did, no stitched one does);
- ``dropped:<reason>``: the stitched track covering it in most frames was dropped, for that reason
  (``covered``: its frames on the object; ``track``: its measures; ``others``: the next ones' fates);
- ``absorbed`` / ``duplicate``: its track joined or was counted a piece of another;
- ``kept_unmatched``: a kept track covers it but misses the match (IoU or coverage under
  pipeline_fidelity's gates: a box too large, too few frames).

Each final track, matched (``matched``) or not (``ghosts``), is listed with its measures: detected
frames, travel in box diagonals (:func:`~recon4d.tracking.classic.cleanup.travel`), epipolar offset and
the background's (:func:`~recon4d.tracking.classic.epipolar.epipolar_offset`), and how much its motion
crosses its edges (``normal``, :func:`~recon4d.tracking.classic.evidence.normal_motion`).
``--reuse-motion`` caches each scene's motion field.

    python benchmarks/birth_diagnose.py --seeds 104:walk 105:follow [-O key=value ...] [--jobs 2]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity_metrics import box_iou  # noqa: E402
from track_diagnose import cache_motion, match_scene, run_scenes, scene_parser, scene_paths  # noqa: E402


def _covers(track, gt_boxes: np.ndarray, gt_visible: np.ndarray, scale: np.ndarray) -> dict[int, list]:
    """GT object → [frames, Σ IoU] over the track's detected frames whose box lies mostly (≥ 50 %) inside
    that object's GT box (the one it overlaps most): a piece of the object counts, with its IoU."""
    counts: dict[int, list] = {}
    for t in track.detected:
        box = np.asarray(track.boxes[t], float) * scale
        area = max(float(np.prod(box[2:] - box[:2])), 1e-6)
        inside = [(float(np.prod(np.clip(np.minimum(box[2:], gt_boxes[g, t, 2:])
                                          - np.maximum(box[:2], gt_boxes[g, t, :2]), 0, None))) / area
                   if gt_visible[g, t] else 0.0) for g in range(len(gt_boxes))]
        if inside and max(inside) >= 0.5:
            g = int(np.argmax(inside))
            entry = counts.setdefault(g, [0, 0.0])
            entry[0] += 1
            entry[1] += float(box_iou(box, gt_boxes[g, t]))
    return counts


def diagnose(seed: int, kind: str, options: dict, reuse_motion: bool = False) -> dict:
    from recon4d.store import open_scene
    from recon4d.tracking.classic import cleanup
    from recon4d.tracking.classic import tracker as module
    from recon4d.tracking.classic.cleanup import _min_frames, _median_diagonal, drop_reason, travel
    from recon4d.tracking.classic.epipolar import epipolar_offset
    from recon4d.tracking.classic.evidence import normal_motion
    from recon4d.video import read_clip

    video, store = scene_paths(seed, kind)
    if reuse_motion:
        cache_motion(video.parent)
    clip, full = read_clip(video, n_frames=32), open_scene(store)
    record: dict = {}

    def recording(tracks, motion, images, config, dropped=None):
        n_frames, height, width = images.shape[:3]
        raw = [(dict(r.boxes), set(r.detected)) for r in tracks]  # stitch joins tracks in place
        stitched = cleanup.stitch(list(tracks), (width, height), config, _min_frames(n_frames, config))
        stitched = cleanup.split_steps(stitched, images, config)
        noise: dict = {}
        reasons = [drop_reason(s, motion, images, n_frames, config, noise) for s in stitched]
        measures = []
        for s in stitched:
            offset, level, used = epipolar_offset(s.masks, sorted(s.detected), motion.forward_flow, motion.backgrounds,
                                                  motion.moving, noise)
            measures.append({"detected": len(s.detected), "travel_diag": round(travel(s, motion) / max(
                _median_diagonal(s), 1e-6), 2), "epi_px": round(float(offset), 2), "epi_noise": round(float(level), 2),
                "epi_used": int(used), "first": min(s.detected), "last": max(s.detected)})
        for s, m in zip(stitched, measures):
            m["normal"] = round(normal_motion(s.masks, sorted(s.detected), images, motion.velocity), 2)
        kept = [s for s, r in zip(stitched, reasons) if r is None]
        absorbed_set = cleanup.absorb_fragments(list(kept), config)
        final = cleanup.drop_duplicates(list(absorbed_set), config)
        fate = []
        for s, r in zip(stitched, reasons):
            if r is not None:
                fate.append(r)
            elif not any(s is a for a in absorbed_set):
                fate.append("absorbed")
            elif not any(s is f for f in final):
                fate.append("duplicate")
            else:
                fate.append("kept")
        record.update(raw=raw,
                      stitched=stitched, fate=fate, measures=measures, min_frames=_min_frames(n_frames, config),
                      work=(width, height))
        if dropped is not None:
            for r in reasons:
                if r is not None:
                    dropped[r] = dropped.get(r, 0) + 1
        cleanup.extend_backwards(final, motion, images, config)
        final.sort(key=lambda track: (min(track.boxes), -len(track.detected)))
        record["final"] = [next(i for i, s in enumerate(stitched) if s is f) for f in final]
        return final

    original = module.clean_tracks
    module.clean_tracks = recording
    try:
        tracker = module.ClassicTracker.from_config(options)
        tracks = tracker.track(clip)
    finally:
        module.clean_tracks = original
    gt, est, iou, matching, covered, _ = match_scene(full, clip, tracks)
    scale = np.array([clip.source_size[0] / record["work"][0], clip.source_size[1] / record["work"][1]] * 2)
    gt_boxes, gt_visible = np.asarray(gt.box_xyxy, float), np.asarray(gt.visible, bool)
    stitched, fate = record["stitched"], record["fate"]
    cover = [_covers(s, gt_boxes, gt_visible, scale) for s in stitched]
    raw_cover = []
    for boxes, detected in record["raw"]:
        holder = type("R", (), {})()
        holder.boxes, holder.detected = boxes, detected
        raw_cover.append(_covers(holder, gt_boxes, gt_visible, scale))
    objects = []
    for g in range(gt.n_objects):
        if not matching.counted[g] or g in matching.gt_to_est:
            continue
        visible = int(gt_visible[g].sum())
        raws = [i for i, c in enumerate(raw_cover) if g in c]
        holders = sorted(((c[g][0], i) for i, c in enumerate(cover) if g in c), reverse=True)
        raw_frames = sum(raw_cover[i][g][0] for i in raws)
        row = {"g": g, "cat": gt.categories[g], "visible": visible, "raw_tracks": len(raws),
               "raw_frames": raw_frames,
               "raw_iou": round(sum(raw_cover[i][g][1] for i in raws) / max(raw_frames, 1), 2),
               "raw_lengths": sorted((len(record["raw"][i][1]) for i in raws), reverse=True)[:6]}
        if not raws and not holders:
            row["stage"] = "undetected"
        elif not holders:
            row["stage"] = "raw_lost"
        else:
            frames, i = holders[0]
            stage = fate[i]
            row.update(stage="kept_unmatched" if stage == "kept" else ("dropped:" + stage if stage not in (
                "absorbed", "duplicate") else stage), covered=frames, track=record["measures"][i],
                others=[(fate[j], c) for c, j in holders[1:4]])
        objects.append(row)
    ghosts = []
    for k in range(tracks.n_objects):
        if k in matching.est_to_gt:
            continue
        best = int(np.argmax(matching.mean_iou[:, k])) if gt.n_objects else -1
        ghosts.append({"k": k, "frames": int(tracks.visible[k].sum()),
                       "best_g": best, "best_iou": round(float(matching.mean_iou[best, k]), 2) if best >= 0 else None,
                       "best_counted": bool(matching.counted[best]) if best >= 0 else None,
                       "box": [round(float(v)) for v in np.nanmedian(tracks.boxes_xyxy[k], axis=0)],
                       "track": record["measures"][record["final"][k]]})
    matched = [{"k": k, "g": g, "frames": int(tracks.visible[k].sum()),
                "box": [round(float(v)) for v in np.nanmedian(tracks.boxes_xyxy[k], axis=0)],
                "track": record["measures"][record["final"][k]]} for k, g in sorted(matching.est_to_gt.items())]
    return {"seed": seed, "camera": kind, "matched": matched, "recall": matching.recall(), "precision": matching.precision(tracks.n_objects),
            "min_frames": record["min_frames"], "missed": objects, "ghosts": ghosts,
            "dropped": {f: fate.count(f) for f in set(fate)}}


def main() -> None:
    args = scene_parser(__doc__).parse_args()
    options, results = run_scenes(diagnose, args)
    stages: dict[str, int] = {}
    for r in results:
        for o in r["missed"]:
            stages[o["stage"]] = stages.get(o["stage"], 0) + 1
    print(json.dumps({"options": options, "stages": stages, "scenes": results}, indent=1))


if __name__ == "__main__":
    main()
