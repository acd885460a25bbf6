"""Fixtures of the training/evaluation tests: a compiled synthetic question set and tiny configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

REPO = Path(__file__).resolve().parents[3]
TINY_YAML = REPO / "configs" / "tiny.yaml"


def run_cli(args: list[str]):
    """`recon4d ARGS` in-process; returns the click result (exit code, output)."""
    from click.testing import CliRunner

    from recon4d.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def qa_set(tmp_path_factory) -> Path:
    """A folder with one synthetic scene (`recon4d synth`: 48 frames of 160×96 at 12 fps) and its
    questions compiled by `recon4d qa`: qa.jsonl (24 questions), qa.json (Qwen conversations), qa.parquet
    and qa_dsr.json (these three name the video "{videoID}.mp4": videos/ holds it under that name), and
    qa_pred.jsonl (4 direction predictions).
    Read-only for the tests. The mix of types varies between runs: the questions are seeded by the
    video's sha256, and the rendered mp4's bytes are not reproducible (x264)."""
    root = tmp_path_factory.mktemp("qa_set")
    result = run_cli(["synth", "-o", root / "scene", "--seed", "1", "--frames", "48", "--size", "160x96"])
    assert result.exit_code == 0, result.output
    for name, fmt in (("qa.jsonl", "jsonl"), ("qa.json", "qwen"), ("qa.parquet", "parquet"),
                      ("qa_dsr.json", "dsr-json")):
        result = run_cli(["qa", root / "scene" / "scene.zarr", "-o", root / name, "--format", fmt, "-n", "24",
                          "--seed", "0"])
        assert result.exit_code == 0, result.output
    # The Qwen, DSR JSON and parquet exports name the video by id ("{videoID}.mp4"), as DSR-Train's
    # video folder does: lay one out.
    import json

    video_id = json.loads((root / "qa.jsonl").read_text().splitlines()[0])["video_id"]
    (root / "videos").mkdir()
    (root / "videos" / f"{video_id}.mp4").symlink_to(root / "scene" / "video.mp4")
    result = run_cli(["qa", root / "scene" / "scene.zarr", "-o", root / "qa_pred.jsonl", "-n", "4",
                      "--types", "abs_dir_pred,rel_dir_pred"])
    assert result.exit_code == 0 and "4/4 questions" in result.output, result.output
    return root


@pytest.fixture()
def qa_copy(qa_set, tmp_path) -> Path:
    """A writable copy of :func:`qa_set` (for tests that write caches or change files)."""
    target = tmp_path / "data"
    shutil.copytree(qa_set, target, ignore=shutil.ignore_patterns("*.geometry-cache.zarr", ".*"))
    return target


def tiny_config(data: Path, output: Path, **sections):
    """configs/tiny.yaml for ``data`` → ``output``, with ``sections`` = {"run": {...}, ...} applied."""
    from recon4d.vlm.train_config import apply_overrides, load_config

    overrides = [f"data.train={data}", f"run.output={output}"]
    for section, values in sections.items():
        overrides += [f"{section}.{key}={'null' if value is None else value}" for key, value in values.items()]
    return apply_overrides(load_config(TINY_YAML), overrides, Path.cwd())
