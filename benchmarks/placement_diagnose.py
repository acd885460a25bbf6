"""Why matched objects are misplaced: per-object placement errors on pipeline_fidelity's scenes. Prints one JSON object.

Renders (and caches, with ``track_diagnose.py``) the same synthetic scenes as
``pipeline_fidelity.py``, decodes them as ``recon4d process`` does, runs the tracker once per
scene (its tracks are cached in ``$TMPDIR/recon4d_placement``: delete it after a tracker
change) and then the reconstruction, lifting and trajectory steps of ``process_clip``. Every
matched, counted GT object (``fidelity_metrics.match_tracks``) is compared per frame in the
camera frame after pipeline_fidelity's one global scale (the median ratio of distances from
the camera), and its error is split into

- ``depth``: along the viewing ray of the GT centre (a wrong distance),
- ``across``: the rest (a wrong direction: the box or mask centre off the object's centre),

with the classic recon's depth cue per frame (contact, bridged, size, triangulated), the
object's median ratio of estimated to true distance, the frames whose track box overlaps the
GT box less than 0.5 (the tracker's box on something else, or cut, or merged) and the frames
the quality record passes. Totals: each part's share of the summed squared error, by category
and by cue, so the biggest cause is read off the table. The quality record's noise is set against
the error it should describe: per object, the RMS error along and across the ray over the frames
the record trusts whose box is good, over the recorded ``noise_m`` (the QA gate draws its
stability noise from it; 1 would be honest). Every track (matched or not) is listed
with its quality-record fields and its lifted centre's noise relative to its distance; per
field, how well it tells matched from unmatched tracks (AUC) — what the QA gate's score is
built from.

    python benchmarks/placement_diagnose.py [--set dev] [--seeds 111 112:pan] [--brief]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
from pipeline_fidelity import SEED_SETS, parse_specs  # noqa: E402
from track_diagnose import scene_paths  # noqa: E402

CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "recon4d_placement"
GOOD_BOX_IOU = 0.5
"""A frame whose track box overlaps the GT box less than this is counted as a tracker box error."""
CUES = {0: "none", 1: "contact", 2: "bridged", 3: "size", 4: "triangulated", 5: "held"}


class _CachedTracker:
    """A track backend that returns tracks computed before (``process_clip``'s ``backends``)."""

    name, version = "classic", "cached"

    def __init__(self, tracks):
        self.tracks = tracks

    def track(self, clip, progress=None):
        return self.tracks


def _tracks(seed: int, kind: str, clip):
    from recon4d.tracking.classic.tracker import ClassicTracker

    path = CACHE / f"{seed}_{kind}" / "tracks.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    tracks = ClassicTracker.from_config({}).track(clip)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(tracks))
    return tracks


def process_with_cues(seed: int, kind: str, config) -> tuple:
    """(est, cue): ``recon4d process`` on one scene with ``config`` (a ``ProcessConfig`` of the
    classic backends) and the scene's cached tracks (:func:`_tracks`), and the depth cue of each
    object frame (K, T) int8 that the reconstruction used (``reconstructor.object_depths``)."""
    from recon4d.pipeline import plan_stages, process_clip
    from recon4d.recon.classic import reconstructor
    from recon4d.settings import weights_dir
    from recon4d.video import read_clip

    video, _ = scene_paths(seed, kind)
    clip = read_clip(video, n_frames=config.n_frames, pixel_budget=config.pixel_budget)
    tracks = _tracks(seed, kind, clip)
    plan = plan_stages(config, Path(weights_dir()))["track"]
    key = ("track", plan.spec.name, config.device, str(Path(weights_dir())), repr(sorted(plan.options.items())))
    cues = {}
    original = reconstructor.object_depths

    def recording(*args, **kwargs):
        depth, cue = original(*args, **kwargs)
        cues["cue"] = cue
        return depth, cue

    reconstructor.object_depths = recording
    try:
        est = process_clip(clip, config, backends={key: _CachedTracker(tracks)}).scene
    finally:
        reconstructor.object_depths = original
    return est, cues.get("cue", np.zeros(est.visible.shape, np.int8))


def diagnose(seed: int, kind: str) -> dict:
    from recon4d.pipeline import ProcessConfig
    from recon4d.store import open_scene

    _, store = scene_paths(seed, kind)
    est, cue = process_with_cues(seed, kind, ProcessConfig(tracker="classic", recon="classic", orient="motion"))
    full = open_scene(store)
    gt = fm.gt_on_frames(full, est.frame_index)
    if os.environ.get("RECON4D_PLACEMENT_KEEP"):  # the estimate and truth, for offline studies of the gate
        from recon4d.synth.scene import SynthConfig, generate_scene

        poses = generate_scene(SynthConfig(seed=seed, n_frames=60, fps=12.0, width=640, height=360, camera=kind,
                                           varied=True)).object_to_world[:, est.frame_index]
        (CACHE / f"{seed}_{kind}" / "scenes.pkl").write_bytes(pickle.dumps((est, gt, poses)))
    matching = fm.match_tracks(gt, est, fm.iou_table(gt, est))
    spread = fm.scene_spread(gt, matching.counted)
    gt_cam = fm.camera_frame(gt.cam_to_world, gt.center_world)
    est_cam = fm.camera_frame(est.cam_to_world, est.center_world)
    pairs = []
    for g, e in matching.pairs:
        if not matching.counted[g]:
            continue
        both = (gt.visible[g] & est.visible[e] & np.isfinite(est_cam[e]).all(axis=-1)
                & np.isfinite(gt_cam[g]).all(axis=-1))
        if both.any():
            pairs.append((g, e, both))
    if not pairs:
        return {"seed": seed, "camera": kind, "objects": [], "spread_m": spread}
    ratio = np.concatenate([np.linalg.norm(gt_cam[g, b], axis=1) / np.maximum(np.linalg.norm(est_cam[e, b], axis=1),
                                                                             1e-12) for g, e, b in pairs])
    scale = float(np.median(ratio))
    quality = est.object_quality
    rows = []
    for g, e, both in pairs:
        truth, guess = gt_cam[g, both], scale * est_cam[e, both]
        ray = truth / np.linalg.norm(truth, axis=1, keepdims=True)
        error = guess - truth
        along = np.einsum("ni,ni->n", error, ray)
        across = np.linalg.norm(error - along[:, None] * ray, axis=1)
        frames_cue = cue[e, both]
        good = fm.box_iou(gt.box_xyxy[g, both], est.box_xyxy[e, both]) >= GOOD_BOX_IOU
        bottom = est.box_xyxy[e, both, 3] - gt.box_xyxy[g, both, 3]
        covers = fm.box_iou(gt.box_xyxy[g, both], est.box_xyxy[e, both]) >= fm.MIN_IOU
        trusted = np.ones(len(truth), bool) if quality is None else quality.frame_ok[e, both]
        checked = trusted & good
        noise = None if quality is None else scale * float(quality.noise_m[e])
        calibrated = checked.sum() >= 3 and noise is not None and np.isfinite(noise) and noise > 0
        rows.append({
            "seed": seed, "camera": kind, "g": g, "e": e, "gt_cat": gt.categories[g], "est_cat": est.categories[e],
            "frames": int(both.sum()), "gt_dist_m": round(float(np.median(np.linalg.norm(truth, axis=1))), 2),
            "dist_ratio": round(float(np.median(np.linalg.norm(guess, axis=1) / np.linalg.norm(truth, axis=1))), 3),
            "depth_sq": float(np.sum(along ** 2)) / spread ** 2, "across_sq": float(np.sum(across ** 2)) / spread ** 2,
            "rms_rel": float(np.sqrt(np.mean(np.sum(error ** 2, axis=1)))) / spread,
            "vertical_m": round(float(np.median(error[:, 1])), 2),
            "depth_bias_m": round(float(np.median(along)), 2),
            "bad_box_frames": int((~good).sum()), "bad_box_sq": float(np.sum(np.sum(error[~good] ** 2, axis=1))) / spread ** 2,
            "good_box_depth_sq": float(np.sum(along[good] ** 2)) / spread ** 2,
            "covered_frames": int(covers.sum()), "covered_sq": float(np.sum(error[covers] ** 2)) / spread ** 2,
            "ok_frames": int(trusted.sum()), "ok_sq": float(np.sum(error[trusted] ** 2)) / spread ** 2,
            "bottom_px_median": round(float(np.median(bottom)), 1),
            "cues": {CUES[c]: int(n) for c, n in zip(*np.unique(frames_cue, return_counts=True))},
            "score": None if quality is None else round(float(quality.score[e]), 3),
            "noise_m": noise,
            "trusted_along_over_noise": float(np.sqrt(np.mean(along[checked] ** 2)) / noise) if calibrated else None,
            "trusted_across_over_noise": float(np.sqrt(np.mean(across[checked] ** 2)) / noise) if calibrated else None,
        })
    tracks_rows = []
    iou = fm.iou_table(gt, est)
    covered = fm.covered_objects(iou, est.visible)
    matched = matching.est_to_gt
    for e in range(est.n_objects):
        g = matched.get(e)
        row = {"seed": seed, "camera": kind, "e": e, "label": est.categories[e], "matched": g is not None,
               "counted": bool(g is not None and matching.counted[g]),
               "covers_own": float(np.mean(covered[e][est.visible[e]] == g)) if g is not None and est.visible[e].any()
               else 0.0,
               "rms_rel": next((r["rms_rel"] for r in rows if r["e"] == e), None)}
        if quality is not None:
            for name in quality.FIELDS:
                value = getattr(quality, name)
                row[name] = None if value is None or not np.isfinite(value[e]) else float(value[e])
            row["frame_ok_fraction"] = float(quality.frame_ok[e][est.visible[e]].mean()) if est.visible[e].any() else 0.0
            distance = np.linalg.norm(est_cam[e], axis=-1)
            row["relative_noise"] = (float(quality.noise_m[e] / np.nanmedian(distance))
                                     if np.isfinite(distance).any() and np.isfinite(quality.noise_m[e]) else None)
        tracks_rows.append(row)
    n = sum(r["frames"] for r in rows)
    total = sum(r["depth_sq"] + r["across_sq"] for r in rows)
    return {"seed": seed, "camera": kind, "scale": scale, "spread_m": spread,
            "centre_error_rel": float(np.sqrt(total / n)), "objects": rows, "tracks": tracks_rows,
            "unit": getattr(est, "unit", None),
            "scale_source": None if est.camera_quality is None else est.camera_quality.scale_source}


def summarise(scenes: list[dict]) -> dict:
    rows = [r for s in scenes for r in s["objects"]]
    total = sum(r["depth_sq"] + r["across_sq"] for r in rows) or 1.0

    def share(group):
        return {"depth": round(sum(r["depth_sq"] for r in group) / total, 3),
                "across": round(sum(r["across_sq"] for r in group) / total, 3),
                "bad_box_frames": round(sum(r["bad_box_sq"] for r in group) / total, 3),
                "good_box_depth": round(sum(r["good_box_depth_sq"] for r in group) / total, 3), "objects": len(group)}

    by_cat = {c: share([r for r in rows if r["gt_cat"] == c]) for c in sorted({r["gt_cat"] for r in rows})}
    main_cue = {c: share([r for r in rows if r["cues"] and max(r["cues"], key=r["cues"].get) == c])
                for c in CUES.values()}
    def rms(frames, squared):
        values = [math.sqrt(sum(r[squared] for r in s["objects"]) / max(1, sum(r[frames] for r in s["objects"])))
                  for s in scenes if s["objects"]]
        return float(np.mean(values)) if values else None

    tracks = [t for s in scenes for t in s.get("tracks", [])]
    matched = [t for t in tracks if t["counted"]]
    false = [t for t in tracks if not t["matched"]]
    fields = {}
    for name in sorted({k for t in tracks for k, v in t.items() if isinstance(v, float) and k not in ("rms_rel", "covers_own")}):
        a = np.array([t[name] for t in matched if t.get(name) is not None], float)
        b = np.array([t[name] for t in false if t.get(name) is not None], float)
        if len(a) and len(b):  # AUC: chance that a matched track's value exceeds an unmatched one's
            auc = float(np.mean((a[:, None] > b[None]) + 0.5 * (a[:, None] == b[None])))
            fields[name] = {"auc_matched_over_unmatched": round(auc, 3), "median_matched": float(np.median(a)),
                            "median_unmatched": float(np.median(b))}

    def median_of(name):
        values = [r[name] for r in rows if r.get(name) is not None]
        return float(np.median(values)) if values else None

    return {"tracks": {"matched": len(matched), "unmatched": len(false), "fields": fields},
            "noise_calibration": {"objects": sum(r.get("trusted_along_over_noise") is not None for r in rows),
                                  "along_over_noise_median": median_of("trusted_along_over_noise"),
                                  "across_over_noise_median": median_of("trusted_across_over_noise")},
            "centre_error_rel_mean": float(np.mean([s["centre_error_rel"] for s in scenes if "centre_error_rel" in s])),
            "centre_error_rel_covered_frames_mean": rms("covered_frames", "covered_sq"),
            "centre_error_rel_ok_frames_mean": rms("ok_frames", "ok_sq"),
            "share_of_squared_error": share(rows), "by_category": by_cat, "by_main_cue": main_cue,
            "dist_ratio_median": float(np.median([r["dist_ratio"] for r in rows])) if rows else None,
            "dist_ratio_by_category": {c: float(np.median([r["dist_ratio"] for r in rows if r["gt_cat"] == c]))
                                       for c in by_cat}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="seed_set", choices=sorted(SEED_SETS), default="dev")
    parser.add_argument("--seeds", nargs="+", default=None, help="SEED or SEED:KIND, instead of --set")
    parser.add_argument("--brief", action="store_true", help="totals only")
    args = parser.parse_args()
    specs = parse_specs(args.seeds if args.seeds else list(SEED_SETS[args.seed_set]))
    scenes = [diagnose(seed, kind) for seed, kind in specs]
    out = {"benchmark": "placement_diagnose", "overall": summarise(scenes)}
    if not args.brief:
        out["scenes"] = scenes
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
