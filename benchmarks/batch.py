"""Batch throughput: videos/min of `recon4d batch` with the local pool and with Ray on the same batch.

Renders N synthetic videos (default 8, 160×96... see --size), then runs the batch four times into
fresh folders: local with 1 and 2 workers, Ray (a local instance) with 1 and 2 workers. Prints one
JSON object: videos/min of each run, the parallel efficiency of each engine
(rate with 2 workers / (2 × rate with 1 worker)), whether all runs wrote byte-identical stores, and
the machine's load average before and after (other jobs on the machine lower the efficiency).
Every worker runs one compute thread, so the 1-worker run is the serial reference.

Wall-clock efficiency on a shared, loaded machine mostly measures the other jobs, so the workers'
CPU time (each state record's ``cpu_seconds``) is reported too: ``cpu_efficiency`` is the CPU
time per video with 1 worker over that with 2 (1.0: running two at once costs no extra work),
``busy`` the share of each worker's wall time it spent computing videos
(CPU seconds / (workers × run seconds); below 1 from start-up, the driver, waiting for a core).

    .venv/bin/python benchmarks/batch.py [--videos 8] [--frames 12] [--size 320x192]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _videos(root: Path, count: int, width: int, height: int, n_frames: int) -> list[Path]:
    from recon4d.synth.scene import SynthConfig, write_synthetic

    return [write_synthetic(root / f"v{seed}", SynthConfig(seed=seed, n_frames=n_frames, width=width, height=height,
                                                          n_objects=2)).video for seed in range(count)]


def _run(manifest: Path, outdir: Path, engine: str, workers: int, frames: int) -> tuple[float, float, dict]:
    from recon4d.batch.local import LocalEngine
    from recon4d.batch.ray_engine import RayEngine
    from recon4d.batch.runner import run_batch
    from recon4d.batch.state import BatchSettings
    from recon4d.pipeline import ProcessConfig

    settings = BatchSettings(process=ProcessConfig(n_frames=frames))
    runner = LocalEngine(workers, threads=1) if engine == "local" else RayEngine(workers, threads=1)
    started = time.perf_counter()
    summary = run_batch(manifest, outdir, settings, runner)
    seconds = time.perf_counter() - started
    if summary.count("done") != len(summary.videos):
        raise SystemExit(f"{engine} x{workers}: {summary.count('failed')} videos failed: {summary.to_json()}")
    checksums, cpu_seconds = {}, 0.0
    for video in summary.videos:
        state = json.loads((outdir / "state" / f"{video.id}.json").read_text())
        checksums[video.id] = state["store_sha256"]
        cpu_seconds += state["cpu_seconds"]
    return seconds, cpu_seconds, checksums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=12, help="frames sampled per video")
    parser.add_argument("--video-frames", type=int, default=24, help="frames rendered per video")
    parser.add_argument("--size", default="320x192")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = _videos(root / "videos", args.videos, width, height, args.video_frames)
        manifest = root / "manifest.csv"
        manifest.write_text("video\n" + "".join(f"{v}\n" for v in videos))
        runs, checksums = {}, []
        for engine in ("local", "ray"):
            for workers in (1, 2):
                seconds, cpu, sums = _run(manifest, root / f"{engine}{workers}", engine, workers, args.frames)
                runs[f"{engine}_{workers}"] = {"seconds": round(seconds, 2),
                                               "videos_per_min": round(60 * args.videos / seconds, 2),
                                               "cpu_seconds_per_video": round(cpu / args.videos, 3),
                                               "busy": round(cpu / (workers * seconds), 3)}
                checksums.append(sums)

    def efficiency(engine: str) -> float:
        return round(runs[f"{engine}_2"]["videos_per_min"] / (2 * runs[f"{engine}_1"]["videos_per_min"]), 3)

    def cpu_efficiency(engine: str) -> float:
        return round(runs[f"{engine}_1"]["cpu_seconds_per_video"] / runs[f"{engine}_2"]["cpu_seconds_per_video"], 3)

    print(json.dumps({
        "videos": args.videos, "frames_per_video": args.frames, "size": args.size, "cpu_count": os.cpu_count(),
        "runs": runs,
        "parallel_efficiency": {"local": efficiency("local"), "ray": efficiency("ray")},
        "cpu_efficiency": {"local": cpu_efficiency("local"), "ray": cpu_efficiency("ray")},
        "ray_vs_local_2_workers": round(runs["ray_2"]["videos_per_min"] / runs["local_2"]["videos_per_min"], 3),
        "identical_stores_across_runs": all(c == checksums[0] for c in checksums),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
