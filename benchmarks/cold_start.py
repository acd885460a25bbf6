"""First vs second `recon4d process` in fresh interpreters, from an empty numba cache.

Prints one JSON object. A synthetic clip (``recon4d synth`` defaults: 48 frames at
640×360) is rendered first (not timed); then, each in its own empty ``NUMBA_CACHE_DIR``:

- ``no_warmup``: ``recon4d process`` twice (the first compiles every numba kernel);
- ``install_warmup``: ``python -m recon4d.warmup`` (what ``scripts/install.sh`` runs after
  installing), then ``recon4d process`` twice.

Every run is a fresh interpreter; each reports wall seconds and CPU seconds (user + system
of the child: a loaded machine stretches wall time, CPU time much less), and the
first/second ratios. ``import_s``: a fresh interpreter importing what ``process`` runs (the
pipeline and the classic backends).

    python benchmarks/cold_start.py [--frames 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROCESS_IMPORTS = (
    "import recon4d.pipeline, recon4d.tracking.classic.tracker, recon4d.recon.classic.reconstructor, "
    "recon4d.lift.lifting, recon4d.orient.motion"
)


def _run(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall and CPU seconds (raises if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames `recon4d process` samples")
    args = parser.parse_args()
    recon4d = str(Path(sys.executable).with_name("recon4d"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ)
        subprocess.run([recon4d, "synth", "-o", str(tmp / "clip"), "--seed", "0"], check=True, capture_output=True,
                       env=env)
        video = tmp / "clip" / "video.mp4"
        report: dict = {"benchmark": "cold_start", "clip": "recon4d synth --seed 0 (48 frames, 640x360)",
                        "frames": args.frames, "cpu_count": os.cpu_count()}
        for scenario in ("no_warmup", "install_warmup"):
            env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / f"cache_{scenario}"))
            runs: dict = {}
            if scenario == "install_warmup":
                runs["warmup"] = _run([sys.executable, "-m", "recon4d.warmup"], env)
            for run in ("first", "second"):
                runs[run] = _run([recon4d, "process", str(video), "-o", str(tmp / f"{scenario}_{run}.zarr"),
                                  "--frames", str(args.frames)], env)
            runs["first_over_second_wall"] = round(runs["first"]["wall_s"] / runs["second"]["wall_s"], 2)
            runs["first_over_second_cpu"] = round(runs["first"]["cpu_s"] / runs["second"]["cpu_s"], 2)
            report[scenario] = runs
        report["import_s"] = _run([sys.executable, "-c", PROCESS_IMPORTS], dict(os.environ))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
