import numpy as np
import pytest

from recon4d.summary import path_length, summarize_scene, visible_spans


def test_visible_spans():
    assert visible_spans(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 2), (4, 4), (7, 7)]
    assert visible_spans(np.zeros(4, bool)) == []
    assert visible_spans(np.ones(3, bool)) == [(0, 2)]


def test_path_length_skips_gaps():
    pts = np.array([[0, 0, 0], [3, 4, 0], [np.nan] * 3, [10, 10, 10], [10, 10, 11]], float)
    assert path_length(pts) == pytest.approx(6.0)


def test_summary_fields(small_scene):
    summary = summarize_scene(small_scene)
    assert summary["n_frames"] == 5 and summary["duration_s"] == pytest.approx(0.4)
    assert summary["backends"] == {"recon": "test"}
    first = summary["objects"][0]
    assert set(first) >= {"id", "category", "is_agent", "visible_frames", "path_length"}
    assert first["visible_frames"] == int(small_scene.visible[0].sum())


def test_summary_carries_quality_and_warnings(small_scene):
    from dataclasses import replace

    from tests.conftest import make_quality

    objects, camera = make_quality(small_scene.n_objects, small_scene.n_frames)
    summary = summarize_scene(replace(small_scene, object_quality=objects, camera_quality=camera,
                                      warnings=("recon: something",)))
    assert summary["warnings"] == ["recon: something"]
    assert summary["camera_quality"]["trusted_frames"] == int(camera.frame_ok.sum())
    record = summary["objects"][1]["quality"]
    assert record["issues"] == "issue 1" and record["depth_jumps"] == int(objects.depth_jumps[1])
    assert (record["detection_score"] is None) == bool(np.isnan(objects.detection_score[1]))
    plain = summarize_scene(small_scene)
    assert plain["camera_quality"] is None and plain["objects"][0]["quality"] is None and plain["warnings"] == []
