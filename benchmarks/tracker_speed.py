"""Classic tracker speed against a baseline revision, at the same recall. Prints one JSON object.

The scenes are those of ``benchmarks/pipeline_fidelity.py`` (``recon4d synth`` varied
scenes, camera kind i mod 5; ``--set dev`` seeds 101–110 by default, ``--set test`` the
held-out ones), rendered to mp4 once and cached in ``--cache``, decoded as ``recon4d
process`` decodes them (``--process-frames`` uniform samples, its pixel budget). On every
clip the tracker of this checkout and the baseline tracker (``tracking/classic`` of git
revision ``--baseline``, extracted under another package name) run in turns (who goes first
alternates), so both see the same machine load; each is timed in CPU seconds of this
process (all threads: OpenCV's and the motion workers' included) and wall seconds; the CPUs
this process may use, the tracker's motion threads and the 1-minute load average are printed. Object recall, precision and
identity switches are computed from the tracks' boxes with the definitions of
``benchmarks/fidelity_metrics.py`` (what ``pipeline_fidelity`` reports: its store holds the
tracker's boxes), for both trackers, with the speed-ups baseline / this checkout.

    python benchmarks/tracker_speed.py [--set dev|test] [--seeds S[:KIND] ...] [--baseline 7015090]
        [--threads N] [-O key=value ...] [--no-baseline] [--profile N]

``--profile N`` then runs this checkout's tracker once more on every clip under cProfile
(timed in CPU seconds of the process; after the timed runs, so their figures are unchanged) and
adds ``profile``: the N functions with the most CPU time of their own, with their calls,
seconds and share of the profiled total.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import pickle
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity_metrics as fm  # noqa: E402
from pipeline_fidelity import SEED_SETS, parse_options, parse_specs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def cached_clip(cache: Path, seed: int, kind: str, frames: int, fps: float, size: tuple[int, int],
                process_frames: int):
    """(clip, ground truth on its sampled frames) of one pipeline_fidelity scene, rendered once."""
    from recon4d.pipeline import ProcessConfig
    from recon4d.synth.scene import SynthConfig, generate_scene
    from recon4d.video import read_clip, write_video

    path = cache / f"{seed}_{kind}_{size[0]}x{size[1]}_{frames}_{fps:g}_{process_frames}.pkl"
    if not path.exists():
        config = SynthConfig(seed=seed, n_frames=frames, fps=fps, width=size[0], height=size[1], camera=kind,
                             varied=True)
        synthetic = generate_scene(config)
        with tempfile.TemporaryDirectory() as tmp:
            video = write_video(Path(tmp) / "video.mp4", synthetic.frames, config.fps)
            clip = read_clip(video, n_frames=process_frames, pixel_budget=ProcessConfig().pixel_budget)
        gt = fm.gt_on_frames(synthetic.scene, clip.frame_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as handle:
            pickle.dump((clip, gt), handle)
        path.with_suffix(".tmp").rename(path)
    with open(path, "rb") as handle:
        return pickle.load(handle)


def baseline_package(revision: str, folder: Path) -> str:
    """Extract ``tracking/classic`` of ``revision`` into ``folder`` as a package; returns its name."""
    name = "baseline_classic_" + "".join(c for c in revision if c.isalnum())
    package = folder / name
    package.mkdir(parents=True)
    files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", revision, "tracking/classic/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for file in files:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{file}"], check=True,
                                capture_output=True, text=True).stdout
        (package / Path(file).name).write_text(source.replace("recon4d.tracking.classic", name))
    return name


class _Boxes:
    """The two fields of a Scene that object matching reads."""

    def __init__(self, tracks) -> None:
        self.box_xyxy = tracks.boxes_xyxy.astype(np.float64)
        self.visible = tracks.visible


def run(tracker, clip, gt) -> dict:
    """Seconds and matching counts of one tracker on one clip."""
    started, started_cpu = time.perf_counter(), time.process_time()
    tracks = tracker.track(clip)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    est = _Boxes(tracks)
    iou = fm.iou_table(gt, est)
    matching = fm.match_tracks(gt, est, iou)
    switches = fm.identity_switches(fm.covered_objects(iou, est.visible))
    return {"recall": matching.recall(), "precision": matching.precision(tracks.n_objects),
            "id_switches": int(switches.sum()), "tracks": tracks.n_objects,
            "seconds": seconds, "cpu_seconds": cpu_seconds,
            "stages_s": {k: round(v, 3) for k, v in getattr(tracker, "last_stage_seconds", {}).items()}}


def profile_top(profiler: cProfile.Profile, count: int) -> dict:
    """The ``count`` functions of a profile with the most time of their own: [name, calls, seconds, share]."""
    stats = pstats.Stats(profiler).stats
    total = sum(entry[2] for entry in stats.values())
    rows = []
    for (file, line, function), (_, calls, own, *_) in sorted(stats.items(), key=lambda item: -item[1][2])[:count]:
        name = function if file == "~" else f"{Path(file).name}:{line}({function})"
        rows.append([name, calls, round(own, 3), round(own / max(total, 1e-12), 4)])
    return {"total_cpu_s": round(total, 3), "top": rows}


def summary(entries: list[dict]) -> dict:
    recall = [sum(e["recall"][i] for e in entries) for i in (0, 1)]
    precision = [sum(e["precision"][i] for e in entries) for i in (0, 1)]
    stages: dict[str, float] = {}
    for entry in entries:
        for key, value in entry["stages_s"].items():
            stages[key] = stages.get(key, 0.0) + value
    return {
        "recall": recall[0] / max(recall[1], 1), "recall_counts": recall,
        "precision": precision[0] / max(precision[1], 1), "precision_counts": precision,
        "id_switches": sum(e["id_switches"] for e in entries), "tracks": sum(e["tracks"] for e in entries),
        "cpu_seconds": round(sum(e["cpu_seconds"] for e in entries), 3),
        "seconds": round(sum(e["seconds"] for e in entries), 3),
        "stages_wall_s": {k: round(v, 3) for k, v in stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="seed_set", choices=sorted(SEED_SETS), default="dev")
    parser.add_argument("--seeds", nargs="+", default=None, help="SEED or SEED:KIND, instead of --set")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--process-frames", type=int, default=32)
    parser.add_argument("--baseline", default="7015090", help="git revision of the baseline tracker")
    parser.add_argument("--no-baseline", action="store_true", help="time this checkout's tracker only")
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads for both trackers")
    parser.add_argument("-O", dest="options", action="append", default=[], help="tracker option key=value")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile this checkout's tracker after the timed runs; report the N costliest functions")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "recon4d_tracker_speed")
    args = parser.parse_args()
    import cv2

    from recon4d.tracking.classic.motion import motion_threads
    from recon4d.tracking.classic.tracker import ClassicTracker
    from recon4d.workers import usable_cpus

    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    specs = parse_specs(args.seeds if args.seeds else list(SEED_SETS[args.seed_set]))
    options = parse_options(args.options)
    trackers = {"tracker": ClassicTracker.from_config(options)}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_baseline:
            sys.path.insert(0, tmp)
            name = baseline_package(args.baseline, Path(tmp))
            trackers["baseline"] = importlib.import_module(f"{name}.tracker").ClassicTracker()
        entries: dict[str, list] = {key: [] for key in trackers}
        load = []
        for i, (seed, kind) in enumerate(specs):
            clip, gt = cached_clip(args.cache, seed, kind, args.frames, args.fps, size, args.process_frames)
            order = list(trackers) if i % 2 == 0 else list(trackers)[::-1]
            for key in order:
                entries[key].append({"seed": seed, "camera": kind, **run(trackers[key], clip, gt)})
            load.append(os.getloadavg()[0])
        profiler = cProfile.Profile(time.process_time) if args.profile > 0 else None
        if profiler is not None:
            for seed, kind in specs:
                clip, _ = cached_clip(args.cache, seed, kind, args.frames, args.fps, size, args.process_frames)
                profiler.runcall(trackers["tracker"].track, clip)
    result = {
        "benchmark": "tracker_speed",
        "scenes": [f"{seed}:{kind}" for seed, kind in specs],
        "clip": f"{size[0]}x{size[1]}, {args.frames} frames at {args.fps:g} fps; {args.process_frames} sampled",
        "options": options, "threads": args.threads if args.threads is not None else cv2.getNumThreads(),
        "cpu_count": os.cpu_count(), "usable_cpus": usable_cpus(),
        "motion_threads": motion_threads(trackers["tracker"].config),
        "load_average_1min": [round(v, 2) for v in load],
        **{key: summary(value) for key, value in entries.items()},
    }
    if "baseline" in entries:
        result["baseline_revision"] = args.baseline
        for key in ("cpu_seconds", "seconds"):
            result[f"speedup_{key}"] = round(result["baseline"][key] / max(result["tracker"][key], 1e-9), 3)
        result["per_scene_cpu_s"] = [[e["seed"], e["camera"], round(b["cpu_seconds"], 2), round(e["cpu_seconds"], 2)]
                                     for e, b in zip(entries["tracker"], entries["baseline"])]
    if profiler is not None:
        result["profile"] = profile_top(profiler, args.profile)
    result["per_scene_recall"] = {key: [[e["seed"], *e["recall"], e["tracks"]] for e in value]
                                  for key, value in entries.items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
