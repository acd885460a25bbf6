"""Per-frame detections of the classic tracker against ground truth: merges, splits, halo. Prints one JSON object.

Between the motion evidence of ``motion_evidence.py`` (which pixels are flagged) and the tracks
of ``track_diagnose.py`` (what association made of them) lie the detections of each frame
(``segment.detect_moving_regions``). On the scenes of ``track_diagnose.py`` (32 frames decoded
as ``recon4d process`` does, at the tracker's working resolution) every detection of every
frame is judged against the ground-truth objects of that frame (:func:`judge_frame`):

- ``good``: its box has IoU ≥ 0.3 with some object's box;
- ``merge``: it holds two or more objects (at least half of each one's box inside its box);
- ``halo``: the share of its pixels off every object's mask grown by 3 px (flow smeared past
  a mover, the background around a group the camera follows, a shadow);

and every object visible in the frame as ``found`` (some detection good on it), ``merged``
(held by a merge) or ``split`` (two or more detections each lying at least half inside its box,
none good on it). Per scene and per camera kind: those counts and the pixel-weighted halo; per
object of a scene (``per_object``): its frames visible, found, merged and split (an object
found in few frames is lost at the motion step; one found in many yet unmatched by
``track_diagnose.py`` is lost by association or clean-up).

Every object of every frame also gets a ``cause`` (:func:`miss_cause`): ``found``, else
``merged`` or ``split`` as above, else ``untextured`` (under ``UNTEXTURED`` of its pixels have
the texture the motion test needs), ``weak`` (under ``WEAK`` of its pixels flagged as moving:
its residual stays under the frame's threshold) or ``segment`` (flagged, yet no detection of its
own: lost to the opening, the minimum area or the cut to the core speed). Counts per scene, per
camera kind and per object (``causes``), with ``weak_ratio`` per scene: the median over its
weak object-frames of the 75th percentile of the object's residual over the frame's threshold
(near 1: a lower threshold would find it; well under 1: the motion is not there to find).

``--panels DIR`` also writes, for the frames of ``--frames`` (default 4 spread over the clip),
a PNG per frame: the frame with the objects' outlines, the residual (scaled to 3× the
frame's threshold), the moving mask, the detections, the compensated speed (0–8 px/step) and
the image speed (0–15 px/step).

    python benchmarks/detection_audit.py [--set dev] [--seeds 110:follow 108] [-O pose_steps=17]
        [--panels /tmp/panels --frames 5 15 25]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from motion_evidence import working_parser, working_scene, working_specs  # noqa: E402

MIN_IOU = 0.3
"""A detection box is good on an object with this IoU (pipeline_fidelity's matching bar)."""
HOLD = 0.5
"""An object is held by a detection when this share of its box lies inside the detection's box."""
HALO_PX = 3
"""Object masks are grown by this many pixels before a detection's pixels are called off them."""
UNTEXTURED = 0.3
"""An object missed with fewer of its pixels textured than this is ``untextured`` (see miss_cause)."""
WEAK = 0.15
"""An object missed with fewer of its pixels flagged as moving than this is ``weak`` (see miss_cause)."""
CAUSES = ("found", "merged", "split", "untextured", "weak", "segment")
"""The causes of :func:`miss_cause`, in the order they are tested."""


def miss_cause(judged: dict, textured: float, flagged: float) -> str:
    """Why an object of a frame has no good detection (one of ``CAUSES``; ``found`` when it has one).

    judged: the object's row of :func:`judge_frame` (``found``, ``merged``, ``split``);
    textured: the fraction of its pixels with the texture the motion test needs; flagged: the
    fraction of its pixels flagged as moving. Tested in the order of ``CAUSES``: a detection good
    on it, one holding it with another object, several pieces of it, too little texture
    (``UNTEXTURED``), too little flagged (``WEAK``: its residual is under the threshold), else
    ``segment`` (flagged, but segmentation left it no detection of its own).
    """
    for key in ("found", "merged", "split"):
        if judged[key]:
            return key
    if textured < UNTEXTURED:
        return "untextured"
    return "weak" if flagged < WEAK else "segment"


def _inside(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(N, M) share of each box of ``inner`` (N, 4) lying inside each box of ``outer`` (M, 4), xyxy."""
    a, b = inner[:, None], outer[None]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = np.maximum((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]), 1e-9)
    return width * height / area


def judge_frame(detections: list[np.ndarray], objects: list[np.ndarray]) -> dict:
    """How one frame's detections meet its objects.

    detections: (h, w) bool masks; objects: (h, w) bool masks of the objects visible in the
    frame (empty ones are ignored). Returns per detection ``good`` (bool), ``holds`` (indices
    into ``objects``), ``halo`` (share of its pixels off every object grown by ``HALO_PX``) and
    ``pixels``; per non-empty object its index ``g`` and ``found``, ``merged``, ``split`` (see
    the module docstring).
    """
    from recon4d.tracking.classic.boxes import box_iou, mask_box

    index = [g for g, o in enumerate(objects) if o.any()]
    objects = [objects[g] for g in index]
    det_boxes = np.array([mask_box(d) for d in detections]).reshape(-1, 4)
    obj_boxes = np.array([mask_box(o) for o in objects]).reshape(-1, 4)
    iou = box_iou(det_boxes, obj_boxes) if len(detections) and objects else np.zeros((len(detections), len(objects)))
    held = _inside(obj_boxes, det_boxes).T >= HOLD  # (D, O)
    parts = _inside(det_boxes, obj_boxes) >= HOLD  # (D, O): detection lies inside the object's box
    on_objects = np.zeros(detections[0].shape if detections else (1, 1), bool)
    if objects:
        grown = np.logical_or.reduce(objects).astype(np.uint8)
        on_objects = cv2.dilate(grown, np.ones((2 * HALO_PX + 1,) * 2, np.uint8)) > 0
    rows = []
    for d, mask in enumerate(detections):
        pixels = int(np.count_nonzero(mask))
        rows.append({"good": bool((iou[d] >= MIN_IOU).any()), "holds": [index[o] for o in np.flatnonzero(held[d])],
                     "halo": round(1.0 - np.count_nonzero(mask & on_objects) / max(pixels, 1), 3), "pixels": pixels})
    merges = [len(row["holds"]) >= 2 for row in rows]
    per_object = []
    for o in range(len(objects)):
        found = bool((iou[:, o] >= MIN_IOU).any())
        per_object.append({"g": index[o], "found": found, "merged": bool(any(m and held[d, o] for d, m in enumerate(merges))),
                           "split": bool(not found and np.count_nonzero(parts[:, o]) >= 2)})
    return {"detections": rows, "objects": per_object}


def audit(seed: int, kind: str, options: dict[str, str], panels: Path | None, frames: list[int] | None) -> dict:
    """Counts of one scene (see the module docstring); writes its panels when ``panels`` is given."""
    from recon4d.tracking.classic.motion import compute_motion, textured
    from recon4d.tracking.classic.segment import detect_moving_regions

    config, clip, full, gray = working_scene(seed, kind, options)
    n_frames, height, width = gray.shape
    motion = compute_motion(gray, config)
    masks = np.asarray(full.masks[:, clip.frame_index])
    totals = dict.fromkeys(("detections", "good", "merges", "objects", "found", "merged", "split"), 0)
    causes = dict.fromkeys(CAUSES, 0)
    weak_ratios = []
    halo = on = 0
    per_object = {}  # g -> [visible, found, merged, split] frames
    object_causes = {}  # g -> cause -> frames
    wanted = set(frames if frames is not None else np.linspace(0, n_frames - 1, 6).round().astype(int)[1:-1])
    for t in range(n_frames):
        objects = [cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
                   for m in masks[:, t]]
        moving = np.asarray(motion.moving[t])
        detections = [d.mask for d in detect_moving_regions(moving, config, motion.image_flow[t], motion.velocity[t])]
        judged = judge_frame(detections, objects)
        rows = judged["detections"]
        totals["detections"] += len(rows)
        totals["good"] += sum(row["good"] for row in rows)
        totals["merges"] += sum(len(row["holds"]) >= 2 for row in rows)
        for key in ("found", "merged", "split"):
            totals[key] += sum(o[key] for o in judged["objects"])
        observable = textured(gray[t], config.min_texture)
        for o in judged["objects"]:
            mask = objects[o["g"]]
            cause = miss_cause(o, float(observable[mask].mean()), float(moving[mask].mean()))
            causes[cause] += 1
            object_causes.setdefault(o["g"], dict.fromkeys(CAUSES, 0))[cause] += 1
            if cause == "weak" and (mask & observable).any():
                weak_ratios.append(float(np.percentile(motion.residual[t][mask & observable], 75))
                                   / max(float(motion.thresholds[t]), 1e-9))
            counts = per_object.setdefault(o["g"], [0, 0, 0, 0])
            for i, key in enumerate(("found", "merged", "split")):
                counts[i + 1] += o[key]
            counts[0] += 1
        totals["objects"] += len(judged["objects"])
        halo += sum(row["halo"] * row["pixels"] for row in rows)
        on += sum(row["pixels"] for row in rows)
        if panels is not None and t in wanted:
            _write_panel(panels / f"{seed}_{kind}_{t:02d}.png", clip.frames[t], (width, height), motion, t,
                         moving, detections, objects)
    rows = [{"g": g, "cat": full.categories[g], "visible": counts[0], "found": counts[1], "merged": counts[2],
             "split": counts[3], "causes": object_causes[g]} for g, counts in sorted(per_object.items())]
    return {"seed": seed, "camera": kind, **totals, "halo": round(halo / max(on, 1), 3), "causes": causes,
            "weak_ratio": round(float(np.median(weak_ratios)), 3) if weak_ratios else None, "per_object": rows}


def _write_panel(path: Path, frame: np.ndarray, size: tuple[int, int], motion, t: int, moving: np.ndarray,
                 detections: list[np.ndarray], objects: list[np.ndarray]) -> None:
    """Six views of frame t in a 3 × 2 grid (see the module docstring)."""
    image = cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)

    def heat(values: np.ndarray, top: float) -> np.ndarray:
        return cv2.applyColorMap(np.clip(values / max(top, 1e-6) * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)

    views = [image.copy(), heat(motion.residual[t], 3 * float(motion.thresholds[t])),
             np.repeat(moving[..., None].astype(np.uint8) * 255, 3, axis=2), image.copy(),
             heat(np.linalg.norm(motion.velocity[t], axis=-1), 8.0),
             heat(np.linalg.norm(motion.image_flow[t], axis=-1), 15.0)]
    colours = np.random.default_rng(0).integers(64, 256, (max(len(detections), 1), 3))
    for mask, colour in zip(detections, colours):
        views[3][mask] = (0.5 * views[3][mask] + 0.5 * colour).astype(np.uint8)
    for mask in objects:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for view in views:
            cv2.drawContours(view, contours, -1, (0, 255, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([np.hstack(views[i:i + 2]) for i in range(0, 6, 2)]))


def main() -> None:
    parser = working_parser(__doc__)
    parser.add_argument("--panels", type=Path, default=None, help="write PNG panels of some frames here")
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="frames of the panels")
    args = parser.parse_args()
    options, specs = working_specs(args)
    scenes = [audit(seed, kind, options, args.panels, args.frames) for seed, kind in specs]
    by_camera: dict[str, dict] = {}
    for scene in scenes:
        entry = by_camera.setdefault(scene["camera"], {})
        for key, value in scene.items():
            if key not in ("seed", "camera", "halo", "causes", "weak_ratio", "per_object"):
                entry[key] = entry.get(key, 0) + value
        entry.setdefault("halo", []).append(scene["halo"])
        counts = entry.setdefault("causes", dict.fromkeys(CAUSES, 0))
        for key, value in scene["causes"].items():
            counts[key] += value
    for entry in by_camera.values():
        entry["halo"] = round(float(np.mean(entry["halo"])), 3)
    print(json.dumps({"benchmark": "detection_audit", "options": options, "by_camera": by_camera,
                      "panels": None if args.panels is None else str(args.panels), "scenes": scenes}, indent=1))


if __name__ == "__main__":
    main()
