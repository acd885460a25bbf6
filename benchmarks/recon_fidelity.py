"""The weights-free reconstruction and trajectory step against ground truth, tracking taken out. One JSON object.

`benchmarks/pipeline_fidelity.py` measures the whole pipeline, where tracking errors dominate;
this one feeds the *ground-truth* tracks (masks and boxes at the sampled frames) to the
`classic` reconstructor, lifts them, runs the trajectory step (`recon4d.lift.quality`) and
the motion orienter, and compares with the synthetic scene's ground truth:

- camera: ATE after a Sim(3) fit of the camera centres, over the ground-truth path length;
  on a still camera, the estimated path length (it must be exactly 0);
- centres: RMSE of all object centres after one Sim(3) fit, over the RMS spread of the
  true centres;
- questions: compiled from the estimate without the quality gate, each re-answered on the
  ground truth (same ids): agreement over all of them, and over those the default gate
  keeps (the question's plan holds on the gated scene and its answer is stable under the
  recorded trajectory noise), with the kept fraction; and how many kept questions involve a
  target stepping faster than its category's limit or jumping over 1 m in depth (must be 0).

    python benchmarks/recon_fidelity.py [--seeds 0 1 2 3 4 5 6 7] [--static-seeds 0 1 2] [--frames 32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from recon4d.geometry import umeyama_sim3
from recon4d.lift.lifting import LiftConfig, lift_objects
from recon4d.lift.quality import refine_objects
from recon4d.orient.motion import MotionOrienter
from recon4d.qa_compiler.compiler import (CompileConfig, answer_stability, compile_scene, gate_scene, plan_from_record,
                                          reanswer)
from recon4d.qa_compiler.questions import Skip, get_type
from recon4d.qa_compiler.rules import get_profile
from recon4d.quality import MAX_DEPTH_JUMP_M, motion_limits
from recon4d.recon.classic.reconstructor import ClassicReconstructor
from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.types import Scene, Tracks2D
from recon4d.video import read_clip


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(K, T, h, w) bool → (K, T, height, width) by nearest pixel centres."""
    rows = ((np.arange(height) + 0.5) * masks.shape[2] / height).astype(int)
    cols = ((np.arange(width) + 0.5) * masks.shape[3] / width).astype(int)
    return masks[:, :, rows][:, :, :, cols] if masks.size else np.zeros(masks.shape[:2] + (height, width), bool)


def estimate(video: Path, truth: Scene, n_frames: int) -> tuple[Scene, Scene, float]:
    """(estimated scene, ground truth at the same frames, seconds) with ground-truth tracks."""
    started = time.perf_counter()
    clip = read_clip(video, n_frames=n_frames)
    frames = clip.frame_index
    height, width = clip.frames.shape[1:3]
    masks = resize_masks(np.asarray(truth.masks[:, frames]), height, width) & truth.visible[:, frames, None, None]
    tracks = Tracks2D(truth.ids, truth.categories, truth.is_agent, truth.box_xyxy[:, frames], truth.visible[:, frames],
                      masks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recon = ClassicReconstructor().reconstruct(clip, tracks)
    lifted = lift_objects(masks, recon.local_points, recon.conf, recon.cam_to_world, LiftConfig())
    refined = refine_objects(clip.timestamps_s, recon.cam_to_world, tracks, lifted, recon.intrinsics,
                             clip.source_size, recon.camera_quality)
    orientations = MotionOrienter.from_config({}, "cpu").orient(clip, tracks, recon, refined.lifted)
    visible = tracks.visible & refined.lifted.visible
    agent = truth.is_agent
    est = Scene(timestamps_s=clip.timestamps_s, frame_index=frames, cam_to_world=recon.cam_to_world,
                intrinsics=recon.intrinsics, ids=truth.ids, categories=truth.categories, is_agent=agent,
                visible=visible, box_xyxy=np.where(visible[..., None], tracks.boxes_xyxy, np.nan),
                center_world=np.where(visible[..., None], refined.lifted.center_world, np.nan),
                orientation=np.where(agent[:, None, None] & visible[..., None], orientations.angles_deg, np.nan),
                orient_conf=np.where(agent[:, None] & visible, orientations.conf, np.nan),
                object_quality=refined.quality, camera_quality=recon.camera_quality)
    gt = replace(truth, timestamps_s=clip.timestamps_s, frame_index=frames, cam_to_world=truth.cam_to_world[frames],
                 intrinsics=truth.intrinsics[frames], visible=truth.visible[:, frames],
                 box_xyxy=truth.box_xyxy[:, frames], center_world=truth.center_world[:, frames],
                 orientation=truth.orientation[:, frames], orient_conf=truth.orient_conf[:, frames], extent=None,
                 local_points=None, conf=None, masks=None)
    return est, gt, time.perf_counter() - started


def camera_figures(gt: Scene, est: Scene) -> dict:
    truth, found = gt.cam_to_world[:, :3, 3], est.cam_to_world[:, :3, 3]
    path = float(np.linalg.norm(np.diff(truth, axis=0), axis=1).sum())
    est_path = float(np.linalg.norm(np.diff(found, axis=0), axis=1).sum())
    out = {"camera_path_m": path, "camera_path_est": est_path, "camera_ate_over_path": None,
           "camera_motion": est.camera_quality.motion, "camera_frames_trusted": int(est.camera_quality.frame_ok.sum())}
    if path > 1e-6 and est_path > 1e-9:
        scale, rotation, translation = umeyama_sim3(found, truth)
        aligned = scale * found @ rotation.T + translation
        out["camera_ate_over_path"] = float(np.sqrt(np.mean(np.sum((aligned - truth) ** 2, axis=1)))) / path
    return out


def centre_figures(gt: Scene, est: Scene) -> dict:
    both = np.isfinite(est.center_world).all(-1) & np.isfinite(gt.center_world).all(-1)
    if both.sum() < 3:
        return {"centre_error_over_spread": None}
    found, truth = est.center_world[both], gt.center_world[both]
    scale, rotation, translation = umeyama_sim3(found, truth)
    rmse = np.sqrt(np.mean(np.sum((scale * found @ rotation.T + translation - truth) ** 2, axis=1)))
    spread = np.sqrt(np.mean(np.sum((truth - truth.mean(0)) ** 2, axis=1)))
    return {"centre_error_over_spread": float(rmse / spread), "centres_lifted": float(both.sum() / gt.visible.sum())}


def implausible(scene: Scene, record) -> bool:
    """Whether a kept question has a target whose step breaks a limit inside its interval."""
    first, last = record.frame_range
    frames = np.arange(first, last + 1)
    for label in record.targets:
        if label == "camera":
            continue
        k = scene.object_index(int(label))
        center = scene.center_world[k, frames]
        speed = np.linalg.norm(np.diff(center, axis=0), axis=1) / np.diff(scene.timestamps_s[frames])
        distance = np.linalg.norm(center - scene.cam_to_world[frames, :3, 3], axis=1)
        if (speed > motion_limits(scene.categories[k]).max_speed_mps).any() or (
                np.abs(np.diff(distance)) > MAX_DEPTH_JUMP_M).any():
            return True
    return False


def question_figures(gt: Scene, est: Scene, seed: int, per_scene: int) -> dict:
    config = CompileConfig(n_per_scene=per_scene, seed=seed)
    records, _ = compile_scene(est, replace(config, min_quality=None), video_id=f"synth{seed}")
    gate, noisy = gate_scene(est, config, np.random.default_rng(seed))
    gated = gate.scene
    profile = get_profile(config.profile)
    outcome = defaultdict(list)
    for record in records:
        try:
            right = reanswer(gt, record).description.text == record.answer_text
        except (Skip, ValueError, IndexError):
            right = False
        outcome["all"].append(right)
        try:
            text = reanswer(gated, record).description.text
        except (Skip, ValueError, IndexError):
            continue
        if answer_stability(get_type(record.qtype), noisy, plan_from_record(gated, record), profile,
                            text) >= config.min_stability:
            outcome["gated"].append(right)
            outcome[f"gated:{record.qtype}"].append(right)
            outcome["implausible"].append(implausible(est, record))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(8)), help="moving-camera scenes")
    parser.add_argument("--static-seeds", type=int, nargs="*", default=[0, 1, 2], help="still-camera scenes")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled from each 48-frame video")
    parser.add_argument("--per-scene", type=int, default=60, help="questions compiled per scene")
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    scenes, outcome = [], defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(seed, False) for seed in args.seeds] + [(seed, True) for seed in args.static_seeds]
        for seed, static in runs:
            paths = write_synthetic(Path(tmp) / f"{seed}{'s' if static else 'm'}", SynthConfig(
                seed=seed, n_frames=48, width=width, height=height, static_camera=static))
            est, gt, seconds = estimate(paths.video, open_scene(paths.scene), args.frames)
            scene_outcome = question_figures(gt, est, seed, args.per_scene)
            for key, flags in scene_outcome.items():
                outcome[key].extend(flags)
            scenes.append({"seed": seed, "static_camera": static, "seconds": round(seconds, 2),
                           **camera_figures(gt, est), **centre_figures(gt, est),
                           "qa_all": float(np.mean(scene_outcome["all"])) if scene_outcome["all"] else None,
                           "qa_gated": float(np.mean(scene_outcome["gated"])) if scene_outcome["gated"] else None,
                           "qa_kept": len(scene_outcome["gated"]) / max(len(scene_outcome["all"]), 1)})

    def mean(key, where=lambda s: True):
        values = [s[key] for s in scenes if where(s) and s[key] is not None]
        return float(np.mean(values)) if values else None

    print(json.dumps({
        "benchmark": "recon_fidelity",
        "what": "classic recon + lift + trajectory step + motion orient, ground-truth tracks",
        "video": f"{width}x{height}, 48 frames at 12 fps; {args.frames} sampled",
        "camera_ate_over_path_mean": mean("camera_ate_over_path", lambda s: not s["static_camera"]),
        "static_camera_path_max": max((s["camera_path_est"] for s in scenes if s["static_camera"]), default=None),
        "centre_error_over_spread_mean": mean("centre_error_over_spread"),
        "qa_agreement_all": float(np.mean(outcome["all"])) if outcome["all"] else None,
        "qa_agreement_gated": float(np.mean(outcome["gated"])) if outcome["gated"] else None,
        "qa_gated_kept_fraction": len(outcome["gated"]) / max(len(outcome["all"]), 1),
        "qa_questions": len(outcome["all"]),
        "kept_questions_with_implausible_steps": int(np.sum(outcome["implausible"])),
        "qa_gated_by_type": {key.split(":", 1)[1]: {"n": len(v), "agreement": round(float(np.mean(v)), 3)}
                             for key, v in sorted(outcome.items()) if key.startswith("gated:")},
        "scenes": scenes,
    }, indent=2))


if __name__ == "__main__":
    main()
