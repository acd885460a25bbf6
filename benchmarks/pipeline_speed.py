"""Frames per second of each `recon4d process` stage on a 640×360 clip. Prints one JSON object.

The clip is a synthetic 640×360 video (rendered first, not timed); the pipeline runs with
the chosen backends (weights-free by default) on --frames sampled frames, twice, and the
second (warm: numba kernels compiled and cached) run is reported: seconds per stage (wall),
frames per second of wall time, and the CPU seconds of the run (this process, all threads:
``time.process_time``) with frames per CPU second, the figure that holds up on a loaded
machine (the 1-minute load average before and after is printed with it, and the CPUs this
process may use). ``-O KEY=VALUE`` sets an option of the track backend (as ``recon4d process -O
track.KEY=VALUE``), e.g. ``-O motion_threads=1`` for the tracker's serial motion.

    python benchmarks/pipeline_speed.py [--frames 32] [--video-frames 96] [-O KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from recon4d.pipeline import ProcessConfig, process_video
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.workers import usable_cpus

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_fidelity import parse_stage_options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--video-frames", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-O", dest="options", action="append", default=[], help="[STAGE.]KEY=VALUE option (track stage without a prefix), as `recon4d process -O`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_synthetic(Path(tmp), SynthConfig(seed=args.seed, n_frames=args.video_frames, width=640,
                                                       height=360))
        options = parse_stage_options(args.options)
        config = ProcessConfig(n_frames=args.frames, backend_options=options)
        process_video(paths.video, config)
        load_before = os.getloadavg()[0]
        started_cpu = time.process_time()
        result = process_video(paths.video, config)
        cpu_s = time.process_time() - started_cpu
        load_after = os.getloadavg()[0]
    stages = {s.stage: {"backend": s.backend, "seconds": round(s.seconds, 3),
                        "frames_per_s": round(args.frames / s.seconds, 2) if s.seconds > 0 else None}
              for s in result.stages}
    print(json.dumps({
        "benchmark": "pipeline_speed",
        "video": f"640x360, {args.video_frames} frames", "frames_processed": args.frames,
        "clip_size": f"{result.scene.config.get('pixel_budget')} px budget",
        "track_options": options.get("track", {}),
        "backend_options": options,
        "stages": stages,
        "total_s": round(result.seconds, 3),
        "frames_per_s": round(args.frames / result.seconds, 2),
        "cpu_s": round(cpu_s, 3),
        "frames_per_cpu_s": round(args.frames / cpu_s, 2),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
    }, indent=2))


if __name__ == "__main__":
    main()
