"""`recon4d process` and its output path: locked against a second run, checked before any stage."""

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from recon4d.cli.main import main


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from recon4d.synth.scene import SynthConfig, write_synthetic

    folder = tmp_path_factory.mktemp("video")
    return write_synthetic(folder / "s", SynthConfig(seed=1, n_frames=8, width=160, height=96)).video


_HOLD = textwrap.dedent("""
    import sys, time
    from recon4d.outputs import output_lock
    with output_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_run_on_the_same_output_refuses_at_once(tmp_path, video):
    out = tmp_path / "out.zarr"
    first = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(main, ["process", str(video), "-o", str(out), "--frames", "4"])
    finally:
        first.kill()
        first.wait()
    assert result.exit_code == 1
    assert f"being written by another recon4d run (process {first.pid})" in result.output
    assert "track" not in result.output  # refused before any stage ran
    assert not out.exists()


@pytest.mark.parametrize("setup, words", [
    ("file", "is a file, but the scene store is a folder"),
    ("folder", "not a scene store written by recon4d"),
    ("parent-file", "is a file, not a folder"),
])
def test_bad_output_path_is_refused_before_any_stage(tmp_path, video, setup, words):
    if setup == "file":
        out = tmp_path / "out.zarr"
        out.write_text("mine")
    elif setup == "folder":
        out = tmp_path / "docs"
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
    else:
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out.zarr"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(out), "--frames", "4", "--overwrite"])
    assert result.exit_code == 1 and words in result.output and "decode" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_summary_names_an_object_the_lift_never_located(capsys):
    from types import SimpleNamespace

    from recon4d.cli.process import _print_summary

    summary = {"n_frames": 4, "duration_s": 0.3, "camera_path_length": 0.0, "objects": [
        {"id": 0, "category": "person", "is_agent": True, "visible_spans_s": [[0.0, 0.2]], "path_length": 1.0},
        {"id": 1, "category": "object", "is_agent": False, "visible_spans_s": [], "path_length": 0.0}]}
    _print_summary("scene.zarr", summary, SimpleNamespace(stages=[], seconds=1.0, warnings=[]))
    lines = capsys.readouterr().out.splitlines()
    assert "visible 0.0-0.2s" in lines[2]
    assert "never located in 3D" in lines[3] and "visible" not in lines[3]
