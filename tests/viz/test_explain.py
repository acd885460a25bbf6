"""recon4d.viz.explain on records compiled from a written synthetic scene (so the video exists)."""

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.qa_explain import explain_command
from recon4d.errors import VideoError
from recon4d.viz.explain import ExplainError, distance_spans, explain_figure, explain_record
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.qa_compiler.export import export
from recon4d.qa_compiler.rules import describe_distance
from recon4d.store import open_scene, write_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from tests.conftest import make_scene
from tests.viz.test_plots import png_size


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(scene, records, paths, qa.jsonl) for a 160×96, 24-frame synthetic clip."""
    root = tmp_path_factory.mktemp("explain")
    paths = write_synthetic(root / "clip", SynthConfig(seed=1, n_frames=24, width=160, height=96, n_objects=3))
    scene = open_scene(paths.scene)
    records, _ = compile_scene(scene, CompileConfig(n_per_scene=12, seed=0))
    assert records, "the synthetic scene should give questions"
    qa_path = export(records, root / "qa.jsonl", "jsonl")
    return scene, records, paths, qa_path


def test_distance_spans_example():
    # [1, 1.05, 1.1] steady then 2 breaks it (anchor 3), then 3/2 > 1.2 grows to the end.
    assert distance_spans(np.array([1, 1.05, 1.1, 2, 3]), 0.8, 1.2, 0.1) == [(0, 3), (3, 4)]
    assert distance_spans(np.array([2.0, 2.1]), 0.8, 1.2, 0.1) == [(0, 1)]


def test_distance_spans_count_matches_rules():
    rng = np.random.default_rng(3)
    for _ in range(500):
        n = int(rng.integers(2, 12))
        values = np.abs(np.cumsum(rng.normal(0, 0.5, n)) + rng.uniform(0, 2))
        if rng.random() < 0.3:
            values[rng.integers(0, n)] = 0.05
        spans = distance_spans(values, 0.8, 1.2, 0.1)
        assert len(spans) == len(describe_distance(values).phases), values
        assert spans[0][0] == 0 and spans[-1][1] == n - 1


def test_explain_every_compiled_type(compiled, tmp_path):
    scene, records, paths, _ = compiled
    done = set()
    for record in records:
        if record.qtype in done:
            continue
        done.add(record.qtype)
        out = explain_record(record, scene, paths.video, tmp_path / f"{record.qtype}.png")
        assert out.stat().st_size > 20_000
        assert png_size(out) == (1200, 1000)
    assert len(done) >= 3


def test_explain_shows_the_frames_boxes_series_and_options(compiled, tmp_path):
    """Content, not only size: the figure holds the decoded frames, the targets' boxes, the
    answer's quantity series and every option; the PNG shows the boxes and the series."""
    import matplotlib.image
    from matplotlib.patches import Rectangle

    from recon4d.video import iter_frames

    scene, records, paths, _ = compiled
    # A record that names an object (its boxes are drawn), not only the camera.
    record = next(r for r in records if ("distance" in r.quantities or "speed" in r.quantities)
                  and any(t != "camera" for t in (*r.targets, r.observer)))
    name = "distance" if "distance" in record.quantities else "speed"
    first, last = record.frame_range
    figure = explain_figure(record, scene, paths.video)
    start_axes, end_axes, series_axes, text_axes = figure.axes[:4]
    decoded = {i: rgb for i, _, rgb in iter_frames(paths.video, sorted({int(scene.frame_index[first]),
                                                                         int(scene.frame_index[last])}))}
    for axes, frame in ((start_axes, first), (end_axes, last)):
        np.testing.assert_array_equal(axes.images[0].get_array(), decoded[int(scene.frame_index[frame])])
        boxes = sorted(tuple(np.round([*p.get_xy(), p.get_width(), p.get_height()], 3))
                       for p in axes.patches if isinstance(p, Rectangle))
        expected = []
        for target in (*record.targets, *(() if record.observer in ("camera", *record.targets) else (record.observer,))):
            if target == "camera":
                continue
            x1, y1, x2, y2 = scene.box_xyxy[scene.object_index(int(target)), frame]
            expected.append(tuple(np.round([x1, y1, x2 - x1, y2 - y1], 3)))
        assert boxes == sorted(expected) and boxes, (record.qtype, record.targets, record.observer, frame)
    series = [line.get_ydata() for line in series_axes.get_lines() if len(line.get_ydata()) > 2]
    assert any(np.allclose(y, record.quantities[name]) for y in series)
    text = text_axes.texts[0].get_text()
    assert all(option in text.replace("\n      ", " ") for option in record.options)
    assert f"answer {record.answer}" in figure._suptitle.get_text()

    image = matplotlib.image.imread(explain_record(record, scene, paths.video, tmp_path / "x.png"))[..., :3]
    tab_blue = np.array([0x1F, 0x77, 0xB4]) / 255.0  # box of the first target and the series line
    blue = np.abs(image - tab_blue).max(axis=-1) < 0.03
    height = image.shape[0]
    assert blue[: height * 2 // 5].sum() > 100  # box outlines over the frames (top two fifths)
    assert blue[height * 2 // 5: height * 4 // 5].sum() > 100  # the series in the middle band
    assert image[: height * 2 // 5].std() > 0.05  # the frames are drawn, not a blank panel


def test_video_defaults_to_record_path(compiled, tmp_path):
    scene, records, _, _ = compiled
    out = explain_record(records[0], scene, None, tmp_path / "default.png")
    assert png_size(out) == (1200, 1000)


def test_errors(compiled, tmp_path):
    scene, records, paths, _ = compiled
    record = records[0]
    with pytest.raises(VideoError, match="does not exist"):
        explain_record(record, scene, tmp_path / "missing.mp4", tmp_path / "x.png")
    with pytest.raises(ExplainError, match="frame range"):
        explain_record(replace(record, frame_range=(0, 999)), scene, paths.video, tmp_path / "x.png")
    with pytest.raises(ExplainError, match="not an object"):
        explain_record(replace(record, targets=("42",)), scene, paths.video, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_cli_finds_store_next_to_video(compiled, tmp_path):
    _, records, _, qa_path = compiled
    out = tmp_path / "explain.png"
    result = CliRunner().invoke(explain_command, [str(qa_path), "--id", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert records[1].qtype in result.output and png_size(out) == (1200, 1000)


def test_cli_errors(compiled, tmp_path):
    _, records, paths, qa_path = compiled
    out = tmp_path / "explain.png"
    result = CliRunner().invoke(explain_command, [str(qa_path), "--id", str(len(records)), "-o", str(out)])
    assert isinstance(result.exception, ExplainError) and "out of range" in str(result.exception)
    other = write_scene(make_scene(heavy=False), tmp_path / "other.zarr")
    result = CliRunner().invoke(explain_command, [str(qa_path), "--id", "0", "-o", str(out), "--scene", str(other)])
    assert isinstance(result.exception, ExplainError) and "digest" in str(result.exception)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n")
    result = CliRunner().invoke(explain_command, [str(bad), "--id", "0", "-o", str(out)])
    assert isinstance(result.exception, ExplainError)
    assert not out.exists()
