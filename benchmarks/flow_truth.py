"""Dense flow and background model of the classic tracker against the true static flow, per frame pair. Prints one JSON object.

Tells which part of the motion test fails on a scene: on the scenes of ``track_diagnose.py`` (32
frames decoded as ``recon4d process`` does, at the tracker's working resolution), each pair t → t+1
as ``motion.pair_motion`` computes it is compared with the flow a static scene shows, from the
store's true point map of frame t and the true relative camera pose (working px). Per pair:
``flow_px`` (median error of the dense flow on static pixels: off every object's mask dilated by
3 px), ``model_px`` (median error of the background model's predicted flow there, where the flow
is forward–backward consistent), ``turn_deg`` and ``static_px`` (the camera's turn and the static
pixels' median displacement), the frame's motion threshold (``motion.compute_motion``) and, per
object seen, the share of its pixels flagged moving and its median residual over that threshold.
A pair whose ``flow_px`` is near ``static_px`` lost the background (DIS followed what stays put);
a small ``flow_px`` with a large ``model_px`` is the background model's error. Per camera kind:
the share of pairs with ``flow_px`` > 5 (``flow_lost``), and medians of the two errors.

    python benchmarks/flow_truth.py [--set dev] [--seeds 115:follow 104:walk] [-O key=value ...] [--pairs]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from motion_evidence import MIN_VISIBLE_PX, working_parser, working_scene, working_specs  # noqa: E402
from pose_error import true_relative  # noqa: E402

LOST_PX = 5.0
"""A pair whose dense flow misses the static pixels by more than this (median, working px) lost the background."""


def static_flow_truth(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, intrinsics: np.ndarray,
                      size: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 flow at the working ``size`` = (w, h) that a static scene shows from a frame whose
    camera-frame point map is ``points`` (H, W, 3) to a camera at (``rotation``, ``translation``) relative to
    it (x_b = R x_a + t), under the store's ``intrinsics`` (3, 3); NaN where the point goes behind it."""
    height, width = points.shape[:2]
    moved = points.reshape(-1, 3).astype(np.float64) @ rotation.T + translation
    projected = moved @ intrinsics.T
    pixels = projected[:, :2] / np.maximum(projected[:, 2:3], 1e-9)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    flow = (pixels - np.stack([xs.ravel(), ys.ravel()], 1)).reshape(height, width, 2).astype(np.float32)
    flow[(moved[:, 2] <= 0).reshape(height, width)] = np.nan
    return cv2.resize(flow, size, interpolation=cv2.INTER_NEAREST) * np.float32(size[0] / width)


def scene_truth(seed: int, kind: str, options: dict[str, str]) -> dict:
    """Per-pair figures of one scene (see the module docstring)."""
    from recon4d.tracking.classic.motion import compute_motion, dense_flow, pair_motion

    config, clip, scene, gray = working_scene(seed, kind, options)
    size = (gray.shape[2], gray.shape[1])
    index = np.asarray(clip.frame_index)
    cameras, intrinsics = np.asarray(scene.cam_to_world)[index], np.asarray(scene.intrinsics)[index]
    masks = np.asarray(scene.masks[:, index])
    small = np.array([[cv2.resize(masks[k, t].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
                       for t in range(len(gray))] for k in range(masks.shape[0])], bool).reshape(
        masks.shape[0], len(gray), size[1], size[0])
    grown = np.stack([cv2.dilate(frame.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0 for frame in small.any(0)])
    motion = compute_motion(gray, config)
    dis = dense_flow(config)
    pairs = []
    for t in range(len(gray) - 1):
        pair = pair_motion(gray[t], gray[t + 1], config, dis)
        rotation, translation = true_relative(cameras, t, t + 1)
        truth = static_flow_truth(np.asarray(scene.local_points[index[t]]), rotation, translation,
                                  intrinsics[t].astype(np.float64), size)
        static = ~grown[t] & np.isfinite(truth[..., 0])
        trusted = static & pair.consistent[0]
        predicted = pair.flow_ab - pair.object_flow[0]
        turn = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)))
        entry = {"t": t, "kind": pair.background.kind, "turn_deg": round(float(turn), 1),
                 "static_px": round(float(np.median(np.linalg.norm(truth[static], axis=1))), 1) if static.any() else None,
                 "flow_px": round(float(np.median(np.linalg.norm(pair.flow_ab[static] - truth[static], axis=1))), 2)
                 if static.any() else None,
                 "model_px": round(float(np.median(np.linalg.norm(predicted[trusted] - truth[trusted], axis=1))), 2)
                 if trusted.any() else None,
                 "threshold": round(float(motion.thresholds[t]), 2), "objects": []}
        for k in range(small.shape[0]):
            mask = small[k, t]
            if mask.sum() >= MIN_VISIBLE_PX:
                entry["objects"].append({"g": k, "cat": scene.categories[k],
                                         "flagged": round(float(np.asarray(motion.moving[t])[mask].mean()), 2),
                                         "residual": round(float(np.median(motion.residual[t][mask])
                                                                 / motion.thresholds[t]), 2)})
        pairs.append(entry)
    return {"seed": seed, "camera": kind, "pairs": pairs}


def main() -> None:
    parser = working_parser(__doc__)
    parser.add_argument("--pairs", action="store_true", help="list every pair, not only the summaries")
    args = parser.parse_args()
    options, specs = working_specs(args)
    scenes = [scene_truth(seed, kind, options) for seed, kind in specs]
    by_camera: dict[str, dict] = {}
    for scene in scenes:
        flow = [p["flow_px"] for p in scene["pairs"] if p["flow_px"] is not None]
        model = [p["model_px"] for p in scene["pairs"] if p["model_px"] is not None]
        scene["flow_lost"] = round(float(np.mean(np.asarray(flow) > LOST_PX)), 3) if flow else None
        scene["flow_px_median"] = round(float(np.median(flow)), 2) if flow else None
        scene["model_px_median"] = round(float(np.median(model)), 2) if model else None
        entry = by_camera.setdefault(scene["camera"], {"flow": [], "model": []})
        entry["flow"] += flow
        entry["model"] += model
        if not args.pairs:
            del scene["pairs"]
    summary = {kind: {"flow_lost": round(float(np.mean(np.asarray(e["flow"]) > LOST_PX)), 3) if e["flow"] else None,
                      "flow_px_median": round(float(np.median(e["flow"])), 2) if e["flow"] else None,
                      "model_px_median": round(float(np.median(e["model"])), 2) if e["model"] else None}
               for kind, e in by_camera.items()}
    print(json.dumps({"benchmark": "flow_truth", "options": options, "by_camera": summary, "scenes": scenes},
                     indent=1))


if __name__ == "__main__":
    main()
