"""Peak memory of `recon4d process` against the number of frames. Prints one JSON object.

A synthetic 640×360 video of ``--video-frames`` frames is rendered first (not measured); then
``recon4d process`` runs on it in a fresh interpreter per frame count (``--frames N`` samples N
frames uniformly; default 32, 150 and 300), with the weights-free backends unless told
otherwise, and the child's peak resident set size is read from the kernel (``wait4``'s
``ru_maxrss``). Reported: peak RSS per frame count, the growth per frame between the smallest
and the largest count, and the issue 12 targets (≤ 1 GiB at 300 frames, ≤ 2 MiB per frame).

    python benchmarks/memory.py [--frames 32,150,300] [--video-frames 300] [--keep-points] [-- EXTRA CLI ARGS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MIB = 1 << 20


def peak_rss_mib(command: list[str], env: dict) -> tuple[float, float, int]:
    """(peak RSS MiB, wall seconds, exit code) of a child process, from the kernel's rusage."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{error[-3000:]}")
    return usage.ru_maxrss * 1024 / _MIB, time.perf_counter() - started, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default="32,150,300", help="comma-separated frame counts")
    parser.add_argument("--video-frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-points", action="store_true", help="also store point maps and masks")
    parser.add_argument("extra", nargs="*", help="more `recon4d process` arguments (after --)")
    args = parser.parse_args()
    counts = [int(n) for n in args.frames.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "RECON4D_HOME": str(tmp / "home")}
        synth = [sys.executable, "-m", "recon4d.cli.main", "synth", "-o", str(tmp / "clip"), "--seed", str(args.seed),
                 "--frames", str(args.video_frames), "--size", "640x360"]
        subprocess.run(synth, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        video = tmp / "clip" / "video.mp4"
        # One warm-up run so numba's cache is filled: compilation memory is not what is measured.
        process = [sys.executable, "-m", "recon4d.cli.main", "process", str(video), "--overwrite"]
        peak_rss_mib([*process, "--frames", "8", "-o", str(tmp / "warm.zarr"), *args.extra], env)
        runs = {}
        for n in counts:
            command = [*process, "--frames", str(n), "-o", str(tmp / f"s{n}.zarr"), *args.extra]
            if args.keep_points:
                command += ["--keep-points", "--keep-masks"]
            peak, seconds, _ = peak_rss_mib(command, env)
            runs[str(n)] = {"peak_rss_mib": round(peak, 1), "seconds": round(seconds, 1)}
    low, high = min(counts), max(counts)
    growth = (runs[str(high)]["peak_rss_mib"] - runs[str(low)]["peak_rss_mib"]) / (high - low) if high > low else None
    print(json.dumps({
        "benchmark": "memory",
        "video": f"640x360 synthetic, {args.video_frames} frames (seed {args.seed})",
        "command": "recon4d process VIDEO --frames N" + (" --keep-points --keep-masks" if args.keep_points else "")
                   + (" " + " ".join(args.extra) if args.extra else ""),
        "peak_rss_mib": {n: r["peak_rss_mib"] for n, r in runs.items()},
        "seconds": {n: r["seconds"] for n, r in runs.items()},
        "growth_mib_per_frame": None if growth is None else round(growth, 2),
        "targets": {"peak_at_300_mib": 1024, "growth_mib_per_frame": 2.0},
        "cpu_count": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
