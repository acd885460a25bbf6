"""Motion evidence of the classic tracker against ground-truth masks, per scene. Prints one JSON object.

What the tracker's first step (``compute_motion``: background model, residual, moving
pixels) sees, before segmentation and association group it into tracks: on the scenes of
``track_diagnose.py`` (pipeline_fidelity's ``varied`` scenes, 32 frames decoded as ``recon4d
process`` does, at the tracker's working resolution), for every ground-truth object the mean
fraction of its mask flagged as moving (``pixels``) and the fraction of its visible frames
where at least 30 % of it is (``frames``); for the scene, the fraction of the other pixels
flagged (``false``: off every object's mask dilated by 3 px, so mask edges and the flow's
blur past them do not count; an object's shadow does). Per camera kind, the means of both.
A change to the background model shows here without the noise of grouping (a mover flagged
in more frames need not yet make a longer track).

    python benchmarks/motion_evidence.py [--set dev] [--seeds 101 102:follow] [-O key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_fidelity import SEED_SETS, parse_options, parse_specs  # noqa: E402
from track_diagnose import scene_paths  # noqa: E402

MIN_VISIBLE_PX = 20
"""An object covering fewer working pixels than this in a frame is not counted there."""


def working_scene(seed: int, kind: str, options: dict[str, str]):
    """(tracker config, the 32-frame clip, its ground-truth scene, (T, h, w) working-size grey frames)
    of one synthetic scene, as the classic tracker sees it (this benchmark and pose_error)."""
    from recon4d.store import open_scene
    from recon4d.tracking.classic.motion import to_working, working_size
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.video import read_clip

    config = ClassicTracker.from_config(options).config
    video, store = scene_paths(seed, kind)
    clip, scene = read_clip(video, n_frames=32), open_scene(store)
    _, gray = to_working(clip.frames, working_size(*clip.image_size, config.work_long_side))
    return config, clip, scene, gray


def working_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of the working-frame benchmarks (this one, pose_error, detection_audit): --set,
    --seeds and -O; each adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="seed_set", choices=sorted(SEED_SETS), default="dev")
    parser.add_argument("--seeds", nargs="+", default=None, help="SEED or SEED:KIND, instead of --set")
    parser.add_argument("-O", dest="options", action="append", default=[], help="tracker option key=value")
    return parser


def working_specs(args: argparse.Namespace) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """(tracker options, (seed, camera kind) of every scene) that :func:`working_parser`'s arguments name."""
    return parse_options(args.options), parse_specs(args.seeds if args.seeds else list(SEED_SETS[args.seed_set]))


def evidence(seed: int, kind: str, options: dict[str, str]) -> dict:
    """Per-object and background figures of one scene (see the module docstring)."""
    from recon4d.tracking.classic.motion import compute_motion

    config, clip, full, gray = working_scene(seed, kind, options)
    size = (gray.shape[2], gray.shape[1])  # working (w, h)
    start = time.process_time()
    moving = np.asarray(compute_motion(gray, config).moving)
    seconds = time.process_time() - start
    masks = np.asarray(full.masks[:, clip.frame_index])
    small = np.zeros((masks.shape[0], len(gray), size[1], size[0]), bool)
    for k in range(masks.shape[0]):
        for t in range(len(gray)):
            small[k, t] = cv2.resize(masks[k, t].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    grown = np.stack([cv2.dilate(frame.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0 for frame in small.any(0)])
    objects = []
    for k in range(small.shape[0]):
        seen = [t for t in range(len(gray)) if small[k, t].sum() >= MIN_VISIBLE_PX]
        if not seen:
            continue
        flagged = np.array([moving[t][small[k, t]].mean() for t in seen])
        objects.append({"g": k, "cat": full.categories[k], "frames_seen": len(seen),
                        "pixels": round(float(flagged.mean()), 3), "frames": round(float(np.mean(flagged >= 0.3)), 3)})
    return {"seed": seed, "camera": kind, "false": round(float(moving[~grown].mean()), 4), "objects": objects,
            "motion_cpu_s": round(seconds, 2)}


def main() -> None:
    parser = working_parser(__doc__)
    args = parser.parse_args()
    options, specs = working_specs(args)
    scenes = [evidence(seed, kind, options) for seed, kind in specs]
    by_camera: dict[str, dict] = {}
    for scene in scenes:
        entry = by_camera.setdefault(scene["camera"], {"pixels": [], "frames": [], "false": []})
        entry["pixels"] += [o["pixels"] for o in scene["objects"]]
        entry["frames"] += [o["frames"] for o in scene["objects"]]
        entry["false"].append(scene["false"])
    summary = {kind: {name: round(float(np.mean(values)), 3) if values else None for name, values in entry.items()}
               for kind, entry in by_camera.items()}
    print(json.dumps({"benchmark": "motion_evidence", "options": options, "by_camera": summary,
                      "motion_cpu_s": round(sum(s["motion_cpu_s"] for s in scenes), 1), "scenes": scenes}, indent=1))


if __name__ == "__main__":
    main()
