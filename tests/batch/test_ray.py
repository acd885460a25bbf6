"""`recon4d batch --engine ray` on a local Ray instance with 2 CPUs: a batch, a killed worker actor,
a killed driver, and the same bytes as the local engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from recon4d.batch.manifest import read_manifest
from recon4d.cli.main import main
from tests.batch.conftest import (FRAMES, assert_exactly_once, kill, running_worker, start_driver, states, wait_for,
                                  write_manifest)

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'recon4d[ray]')")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _batch(manifest, outdir, *extra):
    return ["batch", str(manifest), "-o", str(outdir), "--engine", "ray", "--workers", "2", "--frames", FRAMES,
            "--qa-per-video", "4", *extra]


def _ids(manifest):
    return [e.id for e in read_manifest(manifest)]


def test_ray_batch_on_two_cores_matches_the_local_engine_on_one_byte_for_byte(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    result = CliRunner().invoke(main, _batch(manifest, tmp_path / "ray"))
    assert result.exit_code == 0, result.output
    assert "(ray, 2 workers" in result.output
    assert_exactly_once(tmp_path / "ray", _ids(manifest))
    # the local engine with one worker pinned to one core: the same bytes as Ray's two workers on two
    local = subprocess.run([sys.executable, "-m", "recon4d.cli.main", "batch", str(manifest), "-o",
                            str(tmp_path / "local"), "--workers", "1", "--frames", FRAMES, "--qa-per-video", "4"],
                           capture_output=True, text=True, timeout=600, env={**os.environ, "NUMBA_NUM_THREADS": "1"},
                           preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert local.returncode == 0, local.stderr[-3000:]
    ray_states, local_states = states(tmp_path / "ray"), states(tmp_path / "local")
    assert {k: v["store_sha256"] for k, v in ray_states.items()} == {k: v["store_sha256"] for k, v in local_states.items()}
    assert {k: v["qa_sha256"] for k, v in ray_states.items()} == {k: v["qa_sha256"] for k, v in local_states.items()}
    assert (tmp_path / "ray" / "qa.jsonl").read_bytes() == (tmp_path / "local" / "qa.jsonl").read_bytes()


def test_a_killed_ray_worker_is_restarted_and_the_run_completes(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    out = tmp_path / "out"
    driver = start_driver(_batch(manifest, out))
    video_id, pid = wait_for(lambda: running_worker(out), timeout_s=180)
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr[-2000:]
    assert_exactly_once(out, _ids(manifest))
    record = states(out)[video_id]
    assert record["attempt"] == 2 and "Ray worker died" in record["history"][0]["reason"], record["history"]


def test_kill_9_of_the_ray_driver_then_resume(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    out = tmp_path / "out"
    driver = start_driver(_batch(manifest, out))
    wait_for(lambda: any(s["status"] == "done" for s in states(out).values()), timeout_s=180)
    kill(driver)
    result = CliRunner().invoke(main, _batch(manifest, out, "--resume"))
    assert result.exit_code == 0, result.output
    assert_exactly_once(out, _ids(manifest))
