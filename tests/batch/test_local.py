"""`recon4d batch --engine local`: stores, questions, state records, resume, and kills at any moment."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from recon4d.batch.manifest import read_manifest
from recon4d.cli.main import main
from tests.batch.conftest import (FRAMES, assert_exactly_once, kill, pid_alive, running_worker, start_driver, states,
                                  wait_for, write_manifest)

pytestmark = pytest.mark.slow


def _batch(manifest, outdir, *extra):
    return ["batch", str(manifest), "-o", str(outdir), "--frames", FRAMES, "--qa-per-video", "4", *extra]


def _ids(manifest):
    return [e.id for e in read_manifest(manifest)]


def test_batch_writes_one_store_and_questions_per_video(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    result = CliRunner().invoke(main, _batch(manifest, tmp_path / "out", "--workers", "2"))
    assert result.exit_code == 0, result.output
    assert "3 done, 0 skipped (done earlier), 0 failed of 3 videos" in result.output
    assert_exactly_once(tmp_path / "out", _ids(manifest))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["engine"], summary["workers"]) == (3, 0, "local", 2)
    # three files called video.mp4 get three different stores, none named by the stem alone
    assert len({v["store"] for v in summary["videos"]}) == 3 and "stores/video.zarr" not in summary["videos"]


def test_failures_are_recorded_with_reasons_and_retried_on_resume(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos[:1], extra="missing.mp4,gone\n")
    out = tmp_path / "out"
    first = CliRunner().invoke(main, _batch(manifest, out, "--workers", "1", "--retries", "1"))
    assert first.exit_code == 1 and "1 done, 0 skipped (done earlier), 1 failed" in first.output
    assert "failed gone" in first.output and "missing.mp4' does not exist" in first.output
    gone = states(out)["gone"]
    assert gone["status"] == "failed" and gone["attempt"] == 1 and "does not exist" in gone["reason"]
    # an input error is not retried in the same run, but --resume tries again (attempts left: 1)
    second = CliRunner().invoke(main, _batch(manifest, out, "--workers", "1", "--retries", "1", "--resume"))
    assert second.exit_code == 1 and "0 done, 1 skipped (done earlier), 1 failed" in second.output
    assert states(out)["gone"]["attempt"] == 2 and len(states(out)["gone"]["history"]) == 1
    third = CliRunner().invoke(main, _batch(manifest, out, "--workers", "1", "--retries", "1", "--resume"))
    assert third.exit_code == 1 and "not tried again: 2 attempt(s) used (--retries 1)" in third.output
    assert states(out)["gone"]["attempt"] == 2


def test_refuses_to_mix_runs(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos[:1])
    out = tmp_path / "out"
    assert CliRunner().invoke(main, _batch(manifest, out, "--workers", "1")).exit_code == 0
    again = CliRunner().invoke(main, _batch(manifest, out, "--workers", "1"))
    assert again.exit_code == 1 and "pass --resume" in again.output
    other = CliRunner().invoke(main, _batch(manifest, out, "--workers", "1", "--resume", "--seed", "5"))
    assert other.exit_code == 1 and "qa differ" in other.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    foreign = CliRunner().invoke(main, _batch(manifest, tmp_path / "mine", "--workers", "1"))
    assert foreign.exit_code == 1 and "not a batch output folder" in foreign.output
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_a_killed_worker_is_replaced_and_its_video_done_once(tmp_path, tiny_videos):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    out = tmp_path / "out"
    driver = start_driver(_batch(manifest, out, "--workers", "2"))
    video_id, pid = wait_for(lambda: running_worker(out))
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr
    assert_exactly_once(out, _ids(manifest))
    record = states(out)[video_id]
    assert record["attempt"] == 2 and "killed by signal SIGKILL" in record["history"][0]["reason"]


@pytest.mark.parametrize("moment", ["first-running", "first-done"])
def test_kill_9_of_the_driver_then_resume_processes_each_video_once(tmp_path, tiny_videos, moment):
    manifest = write_manifest(tmp_path / "m.csv", tiny_videos)
    out = tmp_path / "out"
    driver = start_driver(_batch(manifest, out, "--workers", "2"))
    if moment == "first-running":
        _, worker_pid = wait_for(lambda: running_worker(out))
    else:
        wait_for(lambda: any(s["status"] == "done" for s in states(out).values()))
        worker_pid = (running_worker(out) or (None, None))[1]
    kill(driver)
    if worker_pid is not None:  # workers die with their driver: nothing keeps writing into the folder
        wait_for(lambda: not pid_alive(worker_pid), timeout_s=30)
    result = CliRunner().invoke(main, _batch(manifest, out, "--workers", "2", "--resume"))
    assert result.exit_code == 0, result.output
    assert_exactly_once(out, _ids(manifest))
    assert all(s["attempt"] == 1 for s in states(out).values())  # an interrupted attempt is not counted
