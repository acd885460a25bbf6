"""Audit the QA quality gate on processed scene stores (real clips: no ground truth needed). One JSON object.

For each store written by ``recon4d process``, per object: the depth range (distance from the
camera), the stored top speed and largest depth step between consecutive frames, the quality
score, and the same two figures over the steps the default gate keeps (both frames kept).
Then questions are compiled twice, with the default gate and without it, and each question
is checked on the *stored* trajectory: does one of its targets step faster than its
category's speed limit, or change its distance from the camera by more than 1 m between
consecutive frames, inside the question's interval? The issue's target is 0 such gated
questions.

    python benchmarks/gate_audit.py STORE [STORE ...] [--per-scene 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from recon4d.qa_compiler.compiler import CompileConfig, compile_scene, gate_scene
from recon4d.quality import MAX_DEPTH_JUMP_M, motion_limits
from recon4d.store import open_scene
from recon4d.types import Scene


def steps(scene: Scene, k: int, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speeds (m/s) and |distance-from-camera changes| (m) of object k over steps t-1 → t, t in ``pairs``."""
    center = scene.center_world[k]
    distance = np.linalg.norm(center - scene.cam_to_world[:, :3, 3], axis=-1)
    speed = np.linalg.norm(center[pairs] - center[pairs - 1], axis=1) / np.diff(scene.timestamps_s)[pairs - 1]
    return speed, np.abs(distance[pairs] - distance[pairs - 1])


def rounded_max(values: np.ndarray) -> float | None:
    return round(float(values.max()), 2) if len(values) else None


def object_rows(scene: Scene, keep: np.ndarray) -> list[dict]:
    rows = []
    lifted = scene.visible & np.isfinite(scene.center_world).all(axis=-1)
    quality = scene.object_quality
    for k in range(scene.n_objects):
        distance = np.linalg.norm(scene.center_world[k] - scene.cam_to_world[:, :3, 3], axis=-1)[lifted[k]]
        stored = np.flatnonzero(lifted[k, 1:] & lifted[k, :-1]) + 1
        kept = np.flatnonzero(keep[k, 1:] & keep[k, :-1]) + 1
        speed, jump = steps(scene, k, stored)
        kept_speed, kept_jump = steps(scene, k, kept)
        rows.append({
            "id": int(scene.ids[k]), "category": scene.categories[k],
            "speed_limit_mps": motion_limits(scene.categories[k]).max_speed_mps,
            "quality": None if quality is None else round(float(quality.score[k]), 3),
            "lifted_frames": int(lifted[k].sum()), "kept_frames": int(keep[k].sum()),
            "depth_m_min_median_max": [round(float(f(distance)), 2) for f in (np.min, np.median, np.max)]
            if len(distance) else None,
            "stored_top_speed_mps": rounded_max(speed), "stored_max_depth_step_m": rounded_max(jump),
            "kept_top_speed_mps": rounded_max(kept_speed), "kept_max_depth_step_m": rounded_max(kept_jump),
        })
    return rows


def implausible(scene: Scene, record) -> bool:
    """Whether a target of the question steps over its limit inside the question's interval."""
    first, last = record.frame_range
    pairs = np.arange(first + 1, last + 1)
    for label in record.targets:
        if label == "camera":
            continue
        k = scene.object_index(int(label))
        speed, jump = steps(scene, k, pairs)
        with np.errstate(invalid="ignore"):
            if (speed > motion_limits(scene.categories[k]).max_speed_mps).any() or (jump > MAX_DEPTH_JUMP_M).any():
                return True
    return False


def audit(path: str, per_scene: int, seed: int) -> dict:
    scene = open_scene(path)
    config = CompileConfig(n_per_scene=per_scene, seed=seed)
    gate, _ = gate_scene(scene, config)
    out = {"store": path, "camera_path": round(float(np.linalg.norm(np.diff(scene.cam_to_world[:, :3, 3], axis=0),
                                                                       axis=1).sum()), 3),
           "camera_motion": None if scene.camera_quality is None else scene.camera_quality.motion,
           "gate": gate.report.counts, "warnings": list(scene.warnings), "objects": object_rows(scene, gate.object_ok)}
    for name, min_quality in (("ungated", None), ("gated", config.min_quality)):
        records, _ = compile_scene(scene, replace(config, min_quality=min_quality))
        out[f"questions_{name}"] = len(records)
        out[f"questions_{name}_with_implausible_steps"] = sum(implausible(scene, r) for r in records)
        out[f"questions_{name}_about_objects"] = sum(any(t != "camera" for t in r.targets) for r in records)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--per-scene", type=int, default=60, help="questions compiled per store and setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenes = [audit(path, args.per_scene, args.seed) for path in args.stores]
    print(json.dumps({
        "benchmark": "gate_audit",
        "what": "stored vs gate-kept steps per object; questions whose targets step over a speed limit or a 1 m "
                "depth jump inside their interval, with and without the default gate",
        "gated_questions_with_implausible_steps": sum(s["questions_gated_with_implausible_steps"] for s in scenes),
        "ungated_questions_with_implausible_steps": sum(s["questions_ungated_with_implausible_steps"] for s in scenes),
        "scenes": scenes,
    }, indent=1))


if __name__ == "__main__":
    main()
