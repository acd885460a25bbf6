"""Same inputs and seed → the same bytes: synthetic videos and stores, processed stores and
questions, on one core and on all of them (``synth --seed`` once gave another mp4 on each run
on two cores: the encoder inherited a floating-point mode Open3D's ray caster had set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _cores(one: bool):
    cpus = sorted(os.sched_getaffinity(0))

    def limit():
        if one:
            os.sched_setaffinity(0, {cpus[0]})

    env = {**os.environ}
    if one:
        env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return limit, env


def _recon4d(args, one_core: bool):
    limit, env = _cores(one_core)
    done = subprocess.run([sys.executable, "-m", "recon4d.cli.main", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=limit, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def store_bytes(store: Path) -> dict[str, bytes]:
    """Every file of a store; the root metadata without its creation time."""
    files = {}
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path == store / "zarr.json":
            meta = json.loads(data)
            meta["attributes"].pop("created")
            data = json.dumps(meta, sort_keys=True).encode()
        files[str(path.relative_to(store))] = data
    return files


def test_synth_process_and_qa_are_byte_identical_on_one_and_all_cores(tmp_path):
    runs = {}
    work = tmp_path / "work"  # every run writes the same paths (stores and questions record them)
    for name, one_core in (("all", False), ("again", False), ("one", True)):
        _recon4d(["synth", "-o", work, "--seed", 4, "--frames", 16, "--size", "320x192"], one_core)
        _recon4d(["process", work / "video.mp4", "-o", work / "p.zarr", "--frames", 8], one_core)
        _recon4d(["qa", work / "scene.zarr", work / "p.zarr", "-o", work / "q.jsonl", "-n", 6], one_core)
        runs[name] = work.rename(tmp_path / name)
    reference = runs["all"]
    for name in ("again", "one"):
        other = runs[name]
        assert (other / "video.mp4").read_bytes() == (reference / "video.mp4").read_bytes(), name
        assert store_bytes(other / "scene.zarr") == store_bytes(reference / "scene.zarr"), name
        assert store_bytes(other / "p.zarr") == store_bytes(reference / "p.zarr"), name
        assert (other / "q.jsonl").read_bytes() == (reference / "q.jsonl").read_bytes(), name
