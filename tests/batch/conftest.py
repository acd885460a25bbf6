"""Fixtures of the batch tests: a few tiny synthetic videos and a manifest over them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FRAMES = "6"
"""Frames sampled per video: enough for the classic pipeline, quick on two loaded cores."""


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> list[Path]:
    """Three 10-frame 160×96 synthetic videos, each named video.mp4 in its own folder."""
    from recon4d.synth.scene import SynthConfig, write_synthetic

    root = tmp_path_factory.mktemp("batch_videos")
    return [write_synthetic(root / f"s{seed}", SynthConfig(seed=seed, n_frames=10, width=160, height=96,
                                                           n_objects=2)).video
            for seed in range(3)]


def write_manifest(path: Path, videos, extra: str = "") -> Path:
    path.write_text("video,id\n" + "".join(f"{v},\n" for v in videos) + extra)
    return path


def states(outdir: Path) -> dict[str, dict]:
    found = {}
    for file in sorted((outdir / "state").glob("*.json")):
        try:
            found[file.stem] = json.loads(file.read_text())
        except ValueError:  # a record being replaced right now
            continue
    return found


def wait_for(condition, timeout_s: float = 120.0, step_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def running_worker(outdir: Path):
    """(id, pid) of an entry whose record says a worker is processing it now, else None."""
    for video_id, state in states(outdir).items():
        if state.get("status") == "running" and state.get("host"):
            return video_id, int(state["host"].rsplit(":", 1)[1])
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


_GROUPS: list[int] = []


def start_driver(args: list[str]) -> subprocess.Popen:
    """The batch command in a process group of its own (see :func:`_reap_killed_drivers`)."""
    process = subprocess.Popen([sys.executable, "-m", "recon4d.cli.main", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    _GROUPS.append(process.pid)
    return process


@pytest.fixture(autouse=True)
def _reap_killed_drivers():
    """After each test, end what a driver killed with -9 left in its group (a local Ray's agent
    processes outlive it), so the suite leaves nothing running."""
    yield
    while _GROUPS:
        try:
            os.killpg(_GROUPS.pop(), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_exactly_once(outdir: Path, ids: list[str]) -> None:
    """Every id done once: one verified store each, no temporaries, each question once."""
    from recon4d.outputs import stale_temporaries
    from recon4d.qa_compiler.export import read_jsonl
    from recon4d.store import store_checksum, verify_scene

    found = states(outdir)
    assert sorted(found) == sorted(ids)
    assert sorted(p.name for p in (outdir / "stores").iterdir()) == sorted(f"{i}.zarr" for i in ids)
    for video_id, state in found.items():
        store = outdir / "stores" / f"{video_id}.zarr"
        assert state["status"] == "done", state
        assert store_checksum(store) == state["store_sha256"] and verify_scene(store).ok
        assert not stale_temporaries(store) and not stale_temporaries(outdir / "state" / f"{video_id}.json")
    merged = read_jsonl(outdir / "qa.jsonl")
    per_video = {i: read_jsonl(outdir / "qa" / f"{i}.jsonl") for i in ids}
    assert [r.to_json() for r in merged] == [r.to_json() for i in ids for r in per_video[i]]
    keys = [(r.video_id, r.question, r.options) for r in merged]
    assert len(keys) == len(set(keys))
    assert sum(state["qa_count"] for state in found.values()) == len(merged)
    assert [p.name for p in outdir.iterdir() if p.name.startswith(".")] == []
