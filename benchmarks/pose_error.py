"""Error of the classic tracker's per-pair camera pose against the ground truth, per camera kind. Prints one JSON object.

The motion test of the classic tracker (:mod:`recon4d.tracking.classic.background`) compares
dense flow with the flow a static scene would show under the relative pose (R, t) of each
frame pair t → t+1; a wrong translation direction lays movers along their epipolar lines,
where they look like parallax. On the scenes of ``track_diagnose.py`` (32 frames decoded as
``recon4d process`` does, at the tracker's working resolution) this fits each pair's
background model from its corner matches and dense flow as the tracker does (``motion.pair_motion``), and for the pairs
fitted ``epipolar`` reports the angle between the fitted and the true translation direction
(``t_deg``, degrees; the sign matters; pairs whose true baseline is 0, a pan, have none) and between the rotations (``r_deg``); per camera
kind the median and the share of pairs with ``t_deg`` above 30 (``t_bad``), and the share of
pairs fitted ``epipolar`` (the others are planar: no translation to be wrong).

    python benchmarks/pose_error.py [--set dev] [--seeds 103 110:follow] [-O key=value ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from motion_evidence import working_parser, working_scene, working_specs  # noqa: E402


def true_relative(cam_to_world: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of camera b relative to camera a (x_b = R x_a + t) from OpenCV cam_to_world (T, 4, 4)."""
    rot_a, rot_b = cam_to_world[a, :3, :3], cam_to_world[b, :3, :3]
    return rot_b.T @ rot_a, rot_b.T @ (cam_to_world[a, :3, 3] - cam_to_world[b, :3, 3])


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two vectors, degrees."""
    cosine = float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def rotation_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> float:
    """Angle of rot_a · rot_bᵀ, degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(rot_a @ rot_b.T) - 1.0) / 2.0, -1.0, 1.0))))


def scene_errors(seed: int, kind: str, options: dict[str, str]) -> dict:
    """Per-pair pose errors of one scene (see the module docstring)."""
    from recon4d.tracking.classic.background import consistent_flow, fit_background
    from recon4d.tracking.classic.motion import corner_matches, dense_flow
    from recon4d.tracking.classic.pose import resolve_pose

    config, clip, scene, gray = working_scene(seed, kind, options)
    size = (gray.shape[2], gray.shape[1])  # working (w, h)
    cameras = np.asarray(scene.cam_to_world)[np.asarray(clip.frame_index)]
    dis, models, seconds = dense_flow(config), [], 0.0
    for t in range(len(gray) - 1):  # as motion.pair_motion fits them, timing only the fits
        points_a, points_b = corner_matches(gray[t], gray[t + 1])
        flow_ab, flow_ba = dis.calc(gray[t], gray[t + 1], None), dis.calc(gray[t + 1], gray[t], None)
        start = time.process_time()
        model = fit_background(points_a, points_b, size, config)
        models.append(resolve_pose(model, flow_ab, consistent_flow(flow_ab, flow_ba), config))
        seconds += time.process_time() - start
    pairs = []
    for t, model in enumerate(models):
        rotation, translation = true_relative(cameras, t, t + 1)
        entry = {"t": t, "kind": model.kind, "baseline_m": round(float(np.linalg.norm(translation)), 3)}
        if model.kind == "epipolar" and np.linalg.norm(translation) > 1e-6:
            entry["t_deg"] = round(angle_deg(model.translation, translation), 1)
            entry["r_deg"] = round(rotation_deg(model.rotation, rotation), 2)
        pairs.append(entry)
    return {"seed": seed, "camera": kind, "pairs": pairs, "fit_cpu_s": round(seconds, 3)}


def main() -> None:
    parser = working_parser(__doc__)
    parser.add_argument("--pairs", action="store_true", help="list every pair, not only the summaries")
    args = parser.parse_args()
    options, specs = working_specs(args)
    scenes = [scene_errors(seed, kind, options) for seed, kind in specs]
    by_camera: dict[str, dict] = {}
    for scene in scenes:
        entry = by_camera.setdefault(scene["camera"], {"pairs": 0, "epipolar": 0, "t_deg": [], "r_deg": []})
        entry["pairs"] += len(scene["pairs"])
        entry["epipolar"] += sum(p["kind"] == "epipolar" for p in scene["pairs"])
        entry["t_deg"] += [p["t_deg"] for p in scene["pairs"] if "t_deg" in p]
        entry["r_deg"] += [p["r_deg"] for p in scene["pairs"] if "r_deg" in p]
    summary = {kind: {"epipolar": round(e["epipolar"] / max(e["pairs"], 1), 3),
                      "t_deg_median": round(float(np.median(e["t_deg"])), 1) if e["t_deg"] else None,
                      "t_bad": round(float(np.mean(np.asarray(e["t_deg"]) > 30)), 3) if e["t_deg"] else None,
                      "r_deg_median": round(float(np.median(e["r_deg"])), 2) if e["r_deg"] else None}
               for kind, e in by_camera.items()}
    for scene in scenes:
        t_deg = [p["t_deg"] for p in scene["pairs"] if "t_deg" in p]
        scene["t_deg_median"] = round(float(np.median(t_deg)), 1) if t_deg else None
        scene["t_bad"] = round(float(np.mean(np.asarray(t_deg) > 30)), 3) if t_deg else None
        if not args.pairs:
            del scene["pairs"]
    print(json.dumps({"benchmark": "pose_error", "options": options, "by_camera": summary,
                      "fit_cpu_s": round(sum(s["fit_cpu_s"] for s in scenes), 1), "scenes": scenes}, indent=1))


if __name__ == "__main__":
    main()
