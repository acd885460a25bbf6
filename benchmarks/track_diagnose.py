"""Per-scene diagnosis of the tracking stage on pipeline_fidelity's scenes. Prints one JSON object.

Renders (and caches) the same footage-like synthetic scenes as ``pipeline_fidelity.py``
(``varied`` scenes, one camera kind each, 60 frames at 12 fps, 640 × 360), decodes them as
``recon4d process`` does (32 uniform samples, π³ pixel budget) and runs only the tracker. With
pipeline_fidelity's matching (``fidelity_metrics.match_tracks``) it lists, per scene, every
ground-truth object (category, sampled frames visible, how far it travels in the world, whether
it is counted and matched, its best track's mean IoU and coverage) and every track (label,
frames, median box size, the GT object it covers best and how well), so one sees which objects
are missed and what each false track is. Totals: recall, precision, identity switches and
per-camera recall, as pipeline_fidelity computes them (the tracker alone, no recon or QA).

    python benchmarks/track_diagnose.py [--set dev] [--seeds 101 102:follow] [--jobs 2] [--brief]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
from pipeline_fidelity import SEED_SETS, parse_options, parse_specs  # noqa: E402

CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "recon4d_track_diagnose"


def scene_paths(seed: int, kind: str) -> tuple[Path, Path]:
    """video.mp4 and scene.zarr of one pipeline_fidelity scene, rendered once into the cache."""
    from recon4d.synth.scene import SynthConfig, write_synthetic

    folder = CACHE / f"{seed}_{kind}"
    if not (folder / "scene.zarr" / "zarr.json").exists():
        write_synthetic(folder, SynthConfig(seed=seed, n_frames=60, fps=12.0, width=640, height=360, camera=kind,
                                            varied=True), overwrite=True)
    return folder / "video.mp4", folder / "scene.zarr"


def cache_motion(folder: Path) -> None:
    """Make the tracker reuse the scene's motion field from ``folder`` (computed once per motion
    setting): for iterating on the steps after it. Only valid while the motion code is unchanged.

    Wraps the tracker's ``stream_motion``: the first run streams as usual and writes the field when
    its last frame is finished; later runs read it and hand association every frame at once (the
    tracks are the same: association links frames in order either way)."""
    import hashlib
    import pickle

    from recon4d.tracking.classic import tracker as module

    stream = getattr(module.stream_motion, "original", module.stream_motion)

    def cached(gray, config, progress=None, compact=False):
        fields = ("work_long_side", "flow_finest_scale", "flow_patch_stride", "flow_descent_iterations",
                  "flow_refine_iterations", "max_planes", "plane_min_fraction",
                  "plane_min_spread", "ransac_px", "essential_px", "still_px", "planar_inlier_ratio", "fov_deg",
                  "turn_max_stretch", "aperture_window", "aperture_corner",
                  "pose_steps", "pose_span_deg", "pose_grid_px", "pose_behind_weight", "pose_margin",
                  "depth_block_px", "depth_window", "depth_passes", "plane_bound_planes", "plane_bound_columns",
                  "flow_error_fraction",
                  "residual_sigma", "residual_floor_px", "border_fraction", "min_texture", "long_baseline_decay",
                  "long_baseline_sigma", "long_baseline_floor_px", "long_baseline_support")
        key = hashlib.sha1(repr([getattr(config, f) for f in fields]).encode()).hexdigest()[:12]
        path = folder / f"motion_{key}_{int(compact)}.pkl"
        if path.exists():
            motion = pickle.loads(path.read_bytes())
            return motion, iter(range(len(motion.moving)))
        motion, finished = stream(gray, config, progress, compact=compact)

        def saved():
            yield from finished
            path.write_bytes(pickle.dumps(motion))  # backgrounds and moving points are filled at the end

        return motion, saved()

    cached.original = stream
    module.stream_motion = cached


def match_scene(full, clip, tracks) -> tuple:
    """The GT objects on the clip's sampled frames and how the tracks match them, as
    ``pipeline_fidelity.py`` scores them: (gt, est (the tracks' boxes and visibility), iou (G, K, T),
    matching, covered (K, T) GT index or -1, switches (K,)). full: the GT store's scene; clip: the
    sampled clip; tracks: the tracker's Tracks2D."""
    gt = fm.gt_on_frames(full, clip.frame_index)
    est = SimpleNamespace(box_xyxy=tracks.boxes_xyxy.astype(np.float64), visible=tracks.visible)
    iou = fm.iou_table(gt, est)
    covered = fm.covered_objects(iou, tracks.visible)
    return gt, est, iou, fm.match_tracks(gt, est, iou), covered, fm.identity_switches(covered)


def diagnose(seed: int, kind: str, options: dict, reuse_motion: bool = False) -> dict:
    from recon4d.store import open_scene
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.video import read_clip

    video, store = scene_paths(seed, kind)
    if reuse_motion:
        cache_motion(video.parent)
    clip, full = read_clip(video, n_frames=32), open_scene(store)
    tracker = ClassicTracker.from_config(options)
    tracks = tracker.track(clip)
    gt, est, iou, matching, covered, switches = match_scene(full, clip, tracks)
    gt_to_est = matching.gt_to_est
    area = 640 * 360
    objects = []
    for g in range(gt.n_objects):
        seen = gt.visible[g]
        centres = gt.center_world[g][seen]
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1) if len(centres) > 1 else np.zeros(0)
        best = int(np.argmax(matching.mean_iou[g])) if tracks.n_objects else -1
        boxes = gt.box_xyxy[g][seen]
        objects.append({
            "g": g, "cat": gt.categories[g], "frames": int(seen.sum()), "counted": bool(matching.counted[g]),
            "travel_m": round(float(steps.sum()), 2), "still_frac": round(float(np.mean(steps < 0.02)), 2)
            if len(steps) else None,
            "box_frac": round(float(np.median(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1))) / area, 4)
            if len(boxes) else 0,
            "matched": gt_to_est.get(g),
            "best": None if best < 0 else {"k": best, "iou": round(float(matching.mean_iou[g, best]), 2),
                                           "cov": round(float(matching.coverage[g, best]), 2)},
        })
    est_to_gt = matching.est_to_gt
    track_rows = []
    for k in range(tracks.n_objects):
        seen = tracks.visible[k]
        boxes = est.box_xyxy[k][seen]
        best = int(np.argmax(matching.mean_iou[:, k])) if gt.n_objects else -1
        covers = covered[k][covered[k] >= 0]
        track_rows.append({
            "k": k, "label": tracks.categories[k], "frames": int(seen.sum()),
            "box_frac": round(float(np.median(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1))) / area, 4),
            "matched": est_to_gt.get(k), "switches": int(switches[k]),
            "covers": sorted({int(c) for c in covers}), "covered_frames": int(len(covers)),
            "best": None if best < 0 else {"g": best, "cat": gt.categories[best],
                                           "iou": round(float(matching.mean_iou[best, k]), 2),
                                           "cov": round(float(matching.coverage[best, k]), 2)},
        })
    return {"seed": seed, "camera": kind, "recall": matching.recall(), "precision": matching.precision(tracks.n_objects),
            "switches": int(switches.sum()), "tracks": tracks.n_objects,
            "props": None, "objects": objects, "track_rows": track_rows,
            "seconds": {k: round(v, 2) for k, v in tracker.last_stage_seconds.items()}}


def scene_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of the per-scene tracker benchmarks (this one, false_tracks): --set, --seeds,
    --jobs, --reuse-motion and -O."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="seed_set", choices=sorted(SEED_SETS), default="dev")
    parser.add_argument("--seeds", nargs="+", default=None)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--reuse-motion", action="store_true",
                        help="cache each scene's motion field and reuse it (only while the motion code is unchanged)")
    parser.add_argument("-O", dest="options", action="append", default=[], help="tracker option key=value")
    return parser


def run_scenes(function, args: argparse.Namespace) -> tuple[dict[str, str], list]:
    """(tracker options, ``function(seed, kind, options, reuse_motion)`` of every scene args name, in
    order), over ``args.jobs`` spawned processes when more than one."""
    options = parse_options(args.options)
    specs = parse_specs(args.seeds if args.seeds else list(SEED_SETS[args.seed_set]))
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            return options, list(pool.map(function, *zip(*specs), [options] * len(specs),
                                          [args.reuse_motion] * len(specs)))
    return options, [function(seed, kind, options, args.reuse_motion) for seed, kind in specs]


def main() -> None:
    parser = scene_parser(__doc__)
    parser.add_argument("--brief", action="store_true", help="totals and one line per scene only")
    args = parser.parse_args()
    options, results = run_scenes(diagnose, args)
    recall = [sum(r["recall"][i] for r in results) for i in (0, 1)]
    precision = [sum(r["precision"][i] for r in results) for i in (0, 1)]
    tracks = sum(r["tracks"] for r in results)
    by_camera: dict[str, list] = {}
    for r in results:
        by_camera.setdefault(r["camera"], [0, 0])
        by_camera[r["camera"]][0] += r["recall"][0]
        by_camera[r["camera"]][1] += r["recall"][1]
    summary = {
        "recall": recall[0] / max(recall[1], 1), "precision": precision[0] / max(precision[1], 1),
        "counted": recall[1], "tracks": tracks,
        "id_switches_per_10_tracks": 10 * sum(r["switches"] for r in results) / max(tracks, 1),
        "recall_by_camera": {k: round(v[0] / max(v[1], 1), 2) for k, v in by_camera.items()},
        "options": options,
    }
    if args.brief:
        results = [{k: r[k] for k in ("seed", "camera", "recall", "precision", "switches", "tracks")} for r in results]
    print(json.dumps({"benchmark": "track_diagnose", "overall": summary, "scenes": results}, indent=1))


if __name__ == "__main__":
    main()
