"""Why tracks change object: every identity switch of the classic tracker on pipeline_fidelity's scenes, by cause.

Runs the tracker alone on ``track_diagnose.py``'s scenes (same rendering, sampling and matching) and
records what clean-up and association did to each track (stitches, revivals, carried-back and coasted
frames). A switch is a track whose covered GT object (``fidelity_metrics.covered_objects``) changes from
A (last frame ``t0``) to B (first frame ``t1``); its ``cause`` is the first that holds of

- ``stitch``: clean-up joined two fragments between t0 and t1 (``cleanup.stitch``);
- ``revive``: association revived the lost track on a detection between t0 and t1;
- ``carried``: the box at t1 was carried back before the first detection (``extend_backwards``),
  or at t0 or t1 coasted;
- ``over_both``: at t1 the track's box overlaps both A and B by IoU ≥ 0.2 (movers that touch, cross
  or walk together in one mask: the box lies over both and which one it covers best changes);
- ``handover``: at t0 or t1 the track's box overlaps both by IoU ≥ 0.1, or the GT boxes of A and B
  overlap there, and at t1 it has left A (association took the other mover's detection as they met);
- ``jump``: detected at t0 and t1 with the objects apart (association took a detection of another).

``flicker`` says whether the track comes back to A afterwards (A, B, A: a box over both that changes
which one it covers best); ``bloat`` the larger box area at the switch over the track's median box area;
``others`` the other tracks that cover A and B at t1 (IoU ≥ 0.3); ``gt_overlap`` the share of the
smaller of A's and B's GT boxes at t1 that the other covers (≥ 0.5: one stands in front of the other,
which no split of the mask can tell apart; small: side by side or touching). The summary counts
``over_both`` switches by it (``over_both_occluded``: gt_overlap ≥ 0.5).
``joins`` lists every stitch of clean-up with its features (gap, colour similarity, mask area ratio,
aspect ratio, jump from where the velocity puts it in box diagonals) and ``verdict``: the GT object
covered last before and first after it is the ``same``, an ``other`` or ``unknown``. With the scenes'
motion cached (``--reuse-motion``) a run over 30 scenes takes well under a minute.

    python benchmarks/switch_diagnose.py --seeds $(seq 101 130) --jobs 2 [--reuse-motion] [-O key=value]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from track_diagnose import cache_motion, match_scene, run_scenes, scene_parser, scene_paths  # noqa: E402


def _instrument():
    """Record stitches and revivals on the Track objects; return a holder of the last clean-up's tracks."""
    from recon4d.tracking.classic import association, cleanup, tracker

    holder = SimpleNamespace(tracks=None)
    if getattr(association._revive, "instrumented", False):
        return tracker.__dict__["_switch_holder"]
    revive = association._revive

    def recorded_revive(lost, t, *args, **kwargs):
        pairs = revive(lost, t, *args, **kwargs)
        for r, _ in pairs:
            lost[r].__dict__.setdefault("revived", []).append(t)
        return pairs

    recorded_revive.instrumented = True
    association._revive = recorded_revive
    stitch = cleanup.stitch

    def recorded_stitch(tracks, *args, **kwargs):
        before = {id(track): _snapshot(track) for track in tracks}
        joined = stitch(tracks, *args, **kwargs)
        kept = {id(track) for track in joined}
        gone = [shot for key, shot in before.items() if key not in kept]
        for track in joined:
            pieces = [before[id(track)]]
            origin = {t: 0 for t in pieces[0]["detected"]}
            # stitched pieces follow one another in time: a piece's whole span is free of the others' frames
            for shot in sorted(gone, key=lambda shot: -len(shot["detected"])):
                span = set(range(min(shot["detected"]), max(shot["detected"]) + 1))
                if shot["detected"] <= track.detected and not span & origin.keys():
                    origin.update({t: len(pieces) for t in shot["detected"]})
                    pieces.append(shot)
            frames = sorted(track.detected)
            joins = []
            for p, f in zip(frames[:-1], frames[1:]):
                if origin.get(p) != origin.get(f):
                    early, late = pieces[origin[p]], pieces[origin[f]]
                    joins.append({"end": p, "start": f, **_join_features(early, late, p, f)})
            track.__dict__["joins"] = joins
        return joined

    cleanup.stitch = recorded_stitch
    clean = tracker.clean_tracks

    def recorded_clean(*args, **kwargs):
        holder.tracks = clean(*args, **kwargs)
        return holder.tracks

    tracker.clean_tracks = recorded_clean
    tracker.__dict__["_switch_holder"] = holder
    return holder


def _snapshot(track) -> dict:
    return {"detected": frozenset(track.detected), "colours": track.colours, "first": track.first_colours,
            "boxes": dict(track.boxes), "areas": {t: int(track.masks[t].sum()) for t in (min(track.detected),
                                                                                         max(track.detected))},
            "velocity": track.velocity.copy(), "n": len(track.detected)}


def _join_features(early: dict, late: dict, end: int, start: int) -> dict:
    from recon4d.tracking.classic.association import colour_similarity

    gap = start - end
    centre = lambda box: (box[:2] + box[2:]) / 2  # noqa: E731
    predicted = early["boxes"][end] + np.tile(early["velocity"] * gap, 2)
    diagonal = float(np.linalg.norm(early["boxes"][end][2:] - early["boxes"][end][:2]))
    late_box = late["boxes"][start]
    sizes = [early["boxes"][end][2:] - early["boxes"][end][:2], late_box[2:] - late_box[:2]]
    return {"gap": gap, "similarity": round(colour_similarity(early["colours"], late["first"]), 3),
            "area_ratio": round(late["areas"].get(start, 0) / max(early["areas"].get(end, 1), 1), 2),
            "aspect_ratio": round(float((sizes[1][1] / max(sizes[1][0], 1)) / (sizes[0][1] / max(sizes[0][0], 1))), 2),
            "jump_diag": round(float(np.linalg.norm(centre(late_box) - centre(predicted))) / max(diagonal, 1), 2),
            "n_early": early["n"], "n_late": late["n"]}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _covered_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller of two (4,) xyxy boxes that the other covers (0 when either is not finite)."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(inter / smaller) if smaller > 0 else 0.0


def diagnose(seed: int, kind: str, options: dict, reuse_motion: bool = False) -> dict:
    from recon4d.store import open_scene
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.video import read_clip

    holder = _instrument()
    video, store = scene_paths(seed, kind)
    if reuse_motion:
        cache_motion(video.parent)
    clip, full = read_clip(video, n_frames=32), open_scene(store)
    tracks = ClassicTracker.from_config(options).track(clip)
    raw = holder.tracks
    gt, est, iou, matching, covered, switches = match_scene(full, clip, tracks)
    observed = tracks.observed if tracks.observed is not None else tracks.visible
    events = []
    for k in range(tracks.n_objects):
        row = covered[k]
        frames = np.flatnonzero(row >= 0)
        track = raw[k]
        first = min(track.detected)
        joins = [(j["end"], j["start"]) for j in getattr(track, "joins", [])]
        revived = getattr(track, "revived", [])
        for i in range(1, len(frames)):
            t0, t1 = int(frames[i - 1]), int(frames[i])
            a, b = int(row[t0]), int(row[t1])
            if a == b:
                continue
            box0, box1 = est.box_xyxy[k, t0], est.box_xyxy[k, t1]
            merged = any(iou[a, k, t] >= 0.1 and iou[b, k, t] >= 0.1 for t in (t0, t1)) or any(
                _iou(gt.box_xyxy[a, t], gt.box_xyxy[b, t]) > 0 for t in (t0, t1))
            status = ["carried_back" if t < first else "observed" if observed[k, t] else "coasted" for t in (t0, t1)]
            if any(t0 <= e < t1 or t0 < s <= t1 for e, s in joins):
                cause = "stitch"
            elif any(t0 < t <= t1 for t in revived):
                cause = "revive"
            elif "carried_back" in status or "coasted" in status:
                cause = "carried"
            elif iou[a, k, t1] >= 0.2 and iou[b, k, t1] >= 0.2:
                cause = "over_both"
            elif merged:
                cause = "handover"
            else:
                cause = "jump"
            area = [float(np.prod(box[2:] - box[:2])) for box in (box0, box1)]
            areas = np.prod(est.box_xyxy[k, tracks.visible[k], 2:] - est.box_xyxy[k, tracks.visible[k], :2], axis=-1)
            events.append({
                "k": k, "t0": t0, "t1": t1, "a": a, "b": b, "cats": [gt.categories[a], gt.categories[b]],
                "cause": cause, "merged": bool(merged), "status": status,
                "flicker": bool(np.any(row[t1:][row[t1:] >= 0] == a)),
                "matched": matching.est_to_gt.get(k), "bloat": round(max(area) / float(np.median(areas)), 2),
                "area_ratio": round(area[1] / max(area[0], 1e-6), 2),
                "iou_ab": [round(float(iou[a, k, t1]), 2), round(float(iou[b, k, t1]), 2)],
                "others": {g: [j for j in range(tracks.n_objects) if j != k and iou[g, j, t1] >= 0.3] for g in (a, b)},
                "gt_overlap": round(_covered_share(gt.box_xyxy[a, t1], gt.box_xyxy[b, t1]), 2),
            })
    join_rows = []
    for k in range(tracks.n_objects):
        row = covered[k]
        for join in getattr(raw[k], "joins", []):
            before = [row[t] for t in range(join["end"], -1, -1) if row[t] >= 0][:1]
            after = [row[t] for t in range(join["start"], len(row)) if row[t] >= 0][:1]
            verdict = "unknown" if not (before and after) else "same" if before[0] == after[0] else "other"
            join_rows.append(dict(join, k=k, verdict=verdict))
    return {"seed": seed, "camera": kind, "joins": join_rows, "switches": int(switches.sum()), "tracks": tracks.n_objects,
            "recall": matching.recall(), "precision": matching.precision(tracks.n_objects), "events": events}


def main() -> None:
    parser = scene_parser(__doc__)
    parser.add_argument("--brief", action="store_true", help="totals only")
    args = parser.parse_args()
    options, results = run_scenes(diagnose, args)
    events = [dict(e, seed=r["seed"], camera=r["camera"]) for r in results for e in r["events"]]
    tracks = sum(r["tracks"] for r in results)
    joins = [dict(j, seed=r["seed"], camera=r["camera"]) for r in results for j in r["joins"]]
    recall = [sum(r["recall"][i] for r in results) for i in (0, 1)]
    precision = [sum(r["precision"][i] for r in results) for i in (0, 1)]
    summary = {
        "switches": len(events), "tracks": tracks, "per_10_tracks": round(10 * len(events) / max(tracks, 1), 2),
        "recall": round(recall[0] / max(recall[1], 1), 3), "precision": round(precision[0] / max(precision[1], 1), 3),
        "by_cause": dict(Counter(e["cause"] for e in events).most_common()),
        "flicker": sum(e["flicker"] for e in events),
        "over_both_occluded": sum(e["cause"] == "over_both" and e["gt_overlap"] >= 0.5 for e in events),
        "by_camera": dict(Counter(e["camera"] for e in events).most_common()),
        "joins": dict(Counter(j["verdict"] for j in joins).most_common()),
        "options": options,
    }
    scenes = [{key: r[key] for key in ("seed", "camera", "switches", "tracks", "recall", "precision")} for r in results]
    print(json.dumps({"benchmark": "switch_diagnose", "overall": summary, "scenes": scenes,
                      "events": [] if args.brief else events, "joins": [] if args.brief else joins}, indent=1))


if __name__ == "__main__":
    main()
