"""QA compile throughput: questions per second over ten ground-truth synthetic stores.

Prints one JSON object. The stores (``gt_scenes.py``: synthetic scenes sampled as
``recon4d process --frames 32`` samples them) are written once into ``--stores`` and
reused. Timed: ``compile_scenes`` over all stores (opening each store included) and the
JSONL export, in this process after one warm-up run (numba caches loaded), best of
``--repeats``, serially and with ``--workers`` processes (the headline figure), by wall
clock and by CPU time (this process and its workers; a loaded machine disturbs it less);
and the whole ``recon4d qa`` command in a fresh interpreter. The sha256 of
the JSONL and DSR-JSON outputs pins the bytes: same seed, same digests.

    python benchmarks/qa_compile.py [--stores /tmp/recon4d_qa_stores] [--per-scene 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gt_scenes import gt_stores
from recon4d.qa_compiler.compiler import CompileConfig, compile_scenes, default_workers
from recon4d.qa_compiler.export import export


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=Path, default=Path(tempfile.gettempdir()) / "recon4d_qa_stores")
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--per-scene", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: one per CPU core, at most one per store)")
    args = parser.parse_args()
    args.workers = args.workers or default_workers(args.scenes, args.per_scene)

    paths = gt_stores(args.stores, range(args.scenes))
    config = CompileConfig(n_per_scene=args.per_scene, seed=args.seed)
    out_dir = Path(tempfile.mkdtemp(prefix="recon4d_qa_bench_"))
    try:
        timings = {}
        for workers in (1, args.workers):
            best, best_cpu = math.inf, math.inf
            for run in range(args.repeats + 1):  # run 0 loads numba caches and warms imports
                t0, c0 = time.perf_counter(), _cpu_s()
                records, report = compile_scenes(paths, config, workers=workers)
                export(records, out_dir / f"qa{workers}.jsonl", "jsonl")
                if run:
                    best = min(best, time.perf_counter() - t0)
                    best_cpu = min(best_cpu, _cpu_s() - c0)
            timings[workers] = {"compile_export_s": round(best, 4), "questions_per_s": round(len(records) / best),
                                "cpu_s": round(best_cpu, 4), "questions_per_cpu_s": round(len(records) / best_cpu)}
        if _digest(out_dir / f"qa{args.workers}.jsonl") != _digest(out_dir / "qa1.jsonl"):
            raise SystemExit(f"output with {args.workers} workers differs from the serial output")
        shutil.copy(out_dir / "qa1.jsonl", out_dir / "qa.jsonl")
        export(records, out_dir / "qa.json", "dsr-json")

        cli = [str(Path(sys.executable).with_name("recon4d")), "qa", *map(str, paths), "-o",
               str(out_dir / "cli.jsonl"), "-n", str(args.per_scene), "--seed", str(args.seed)]
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, capture_output=True, env=dict(os.environ))
        cli_s = time.perf_counter() - t0
        same_as_cli = _digest(out_dir / "cli.jsonl") == _digest(out_dir / "qa.jsonl")
        print(json.dumps({
            "benchmark": "qa_compile",
            "scenes": args.scenes,
            "per_scene": args.per_scene,
            "seed": args.seed,
            "questions": len(records),
            "attempts": report.attempts,
            "serial": timings[1],
            f"workers_{args.workers}": timings[args.workers],
            "questions_per_s": timings[args.workers]["questions_per_s"],
            "cli_s": round(cli_s, 3),
            "cli_questions_per_s": round(len(records) / cli_s),
            "cli_output_identical": same_as_cli,
            "cpu_count": os.cpu_count(),
            "sha256_jsonl": _digest(out_dir / "qa.jsonl"),
            "sha256_dsr_json": _digest(out_dir / "qa.json"),
        }))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
