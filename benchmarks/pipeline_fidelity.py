"""`recon4d process` against synthetic ground truth. Prints one JSON object.

For each seed a synthetic scene is rendered to mp4 (`recon4d.synth.scene`), processed with the
chosen backends (weights-free by default), and compared with its ground truth on the frames
the pipeline sampled:

- camera: rotation error of the relative pose between consecutive frames (deg) and angle
  between the estimated and true camera displacement from the first frame, both expressed
  in the first camera's frame (translation direction, deg, where the camera moved);
- objects: recall (a ground-truth object is found when some track's boxes overlap its boxes
  with mean IoU > 0.3 over the frames both are visible), and the centre trajectory error
  (RMSE) after one Sim(3) alignment of all matched centres, also relative to the scene size;
- questions: templated questions compiled from the ground truth, answered again from the
  estimated scene (matched objects only), agreement per type.

    python benchmarks/pipeline_fidelity.py [--seeds 0 1 2] [--frames 32] [--size 640x360]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from recon4d.geometry import umeyama_sim3
from recon4d.pipeline import ProcessConfig, process_video
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene, reanswer
from recon4d.qa_compiler.questions import Skip
from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) xyxy; NaN where either is NaN."""
    lo, hi = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda box: np.prod(box[..., 2:] - box[..., :2], axis=-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def match_objects(gt, est) -> dict[int, int]:
    """GT row → estimated row, greedily by mean IoU over co-visible frames (> 0.3)."""
    pairs = []
    for g in range(gt.n_objects):
        for e in range(est.n_objects):
            both = gt.visible[g] & est.visible[e]
            if both.sum() >= 2:
                iou = float(np.nanmean(box_iou(gt.box_xyxy[g, both], est.box_xyxy[e, both])))
                if iou > 0.3:
                    pairs.append((iou, g, e))
    matched: dict[int, int] = {}
    for _, g, e in sorted(pairs, reverse=True):
        if g not in matched and e not in matched.values():
            matched[g] = e
    return matched


def rotation_angle_deg(rotation: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((np.trace(rotation, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def camera_errors(gt_poses: np.ndarray, est_poses: np.ndarray) -> dict:
    def relative(poses):
        return np.linalg.inv(poses[:-1]) @ poses[1:]

    rot_err = rotation_angle_deg(np.swapaxes(relative(gt_poses)[:, :3, :3], -1, -2) @ relative(est_poses)[:, :3, :3])
    gt_disp = (np.linalg.inv(gt_poses[0]) @ gt_poses)[:, :3, 3]
    est_disp = (np.linalg.inv(est_poses[0]) @ est_poses)[:, :3, 3]
    moved = np.linalg.norm(gt_disp, axis=-1) > 0.05 * max(np.linalg.norm(gt_disp, axis=-1).max(), 1e-9)
    cos = np.einsum("ti,ti->t", gt_disp, est_disp) / (
        np.linalg.norm(gt_disp, axis=-1) * np.linalg.norm(est_disp, axis=-1) + 1e-12)
    dir_err = np.degrees(np.arccos(np.clip(cos[moved], -1, 1)))
    return {"rotation_err_deg_median": float(np.median(rot_err)), "rotation_err_deg_max": float(rot_err.max()),
            "translation_dir_err_deg_median": float(np.median(dir_err)) if dir_err.size else None,
            "translation_dir_err_deg_max": float(dir_err.max()) if dir_err.size else None}


def centre_errors(gt, est, matched) -> dict:
    src, dst = [], []
    for g, e in matched.items():
        both = np.isfinite(gt.center_world[g]).all(-1) & np.isfinite(est.center_world[e]).all(-1)
        src.append(est.center_world[e, both])
        dst.append(gt.center_world[g, both])
    if not src or sum(len(s) for s in src) < 3:
        return {"centre_rmse_m": None, "centre_rmse_rel": None, "centres_compared": 0}
    src, dst = np.concatenate(src), np.concatenate(dst)
    scale, rotation, translation = umeyama_sim3(src, dst)
    aligned = scale * src @ rotation.T + translation
    rmse = float(np.sqrt(np.mean(np.sum((aligned - dst) ** 2, axis=-1))))
    spread = float(np.sqrt(np.mean(np.sum((dst - dst.mean(0)) ** 2, axis=-1))))
    return {"centre_rmse_m": rmse, "centre_rmse_rel": rmse / max(spread, 1e-9), "centres_compared": int(len(src))}


def qa_agreement(gt, est, matched, seed: int) -> dict[str, list[bool]]:
    records, _ = compile_scene(gt, CompileConfig(n_per_scene=60, seed=seed), video_id=f"synth{seed}")
    remap = {str(int(gt.ids[g])): str(int(est.ids[e])) for g, e in matched.items()}
    remap["camera"] = "camera"
    agreement: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        if record.observer not in remap or any(t not in remap for t in record.targets):
            agreement[record.qtype].append(False)
            continue
        moved = replace(record, observer=remap[record.observer], targets=tuple(remap[t] for t in record.targets))
        try:
            text = reanswer(est, moved).description.text
        except (Skip, ValueError, IndexError):  # the estimate lacks what the question needs
            text = None
        agreement[record.qtype].append(text == record.answer_text)
    return agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=32, help="frames process samples")
    parser.add_argument("--video-frames", type=int, default=48, help="frames of the synthetic video")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--static-camera", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    per_scene, agreement = [], defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            paths = write_synthetic(Path(tmp) / f"s{seed}", SynthConfig(
                seed=seed, n_frames=args.video_frames, width=width, height=height, static_camera=args.static_camera))
            started = time.perf_counter()
            result = process_video(paths.video, ProcessConfig(n_frames=args.frames))
            seconds = time.perf_counter() - started
            est = result.scene
            full = open_scene(paths.scene)
            frames = est.frame_index
            gt = replace(full, timestamps_s=full.timestamps_s[frames], frame_index=frames,
                         cam_to_world=full.cam_to_world[frames], intrinsics=full.intrinsics[frames],
                         visible=full.visible[:, frames], box_xyxy=full.box_xyxy[:, frames],
                         center_world=full.center_world[:, frames], orientation=full.orientation[:, frames],
                         orient_conf=full.orient_conf[:, frames], extent=None, local_points=None, conf=None,
                         masks=None)
            matched = match_objects(gt, est)
            for qtype, flags in qa_agreement(gt, est, matched, seed).items():
                agreement[qtype].extend(flags)
            per_scene.append({"seed": seed, "seconds": round(seconds, 2), "gt_objects": gt.n_objects,
                              "found_objects": est.n_objects, "recall": len(matched) / max(gt.n_objects, 1),
                              **camera_errors(gt.cam_to_world, est.cam_to_world), **centre_errors(gt, est, matched),
                              "stages_s": {s.stage: round(s.seconds, 2) for s in result.stages}})

    def mean(key):
        values = [s[key] for s in per_scene if s[key] is not None]
        return float(np.mean(values)) if values else None

    all_flags = [f for flags in agreement.values() for f in flags]
    print(json.dumps({
        "benchmark": "pipeline_fidelity",
        "backends": "auto (weights-free here: classic/classic/motion)",
        "video": f"{width}x{height}, {args.video_frames} frames; process samples {args.frames}",
        "mean": {k: mean(k) for k in ("recall", "rotation_err_deg_median", "translation_dir_err_deg_median",
                                      "centre_rmse_rel", "seconds")},
        "qa_agreement": float(np.mean(all_flags)) if all_flags else None,
        "qa_agreement_by_type": {t: {"n": len(f), "agreement": float(np.mean(f))} for t, f in sorted(agreement.items())},
        "scenes": per_scene,
    }, indent=2))


if __name__ == "__main__":
    main()
