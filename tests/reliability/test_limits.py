"""Inputs that used to be accepted silently: boxes outside the frame, requests that cannot fit in
memory; and what is still accepted says so (boxes crossing the border are clamped with a warning)."""

from __future__ import annotations

import pytest

from recon4d.pipeline import PipelineError, ProcessConfig, check_memory, process_video
from recon4d.tracking.classic.user_boxes import UserBoxesError, fit_boxes_to_frame


def _box(x1, y1, x2, y2):
    return {"category": "person", "is_agent": True, "box": [x1, y1, x2, y2], "frame": 0}


def test_boxes_inside_pass_crossing_are_clamped_outside_are_refused():
    inside, notes = fit_boxes_to_frame([_box(10, 10, 50, 80)], (160, 96))
    assert inside[0]["box"] == [10, 10, 50, 80] and notes == []
    clamped, notes = fit_boxes_to_frame([_box(-20, 5, 40, 120)], (160, 96))
    assert clamped[0]["box"] == [0.0, 5.0, 40.0, 96.0] and "clamped to [0.0, 5.0, 40.0, 96.0]" in notes[0]
    for box, words in ((_box(200, 10, 260, 50), "outside the 160x96 frame"),
                       (_box(0, 0, 1e308, 50), "outside the 160x96 frame"),
                       (_box(-90, -60, -10, -5), "outside the 160x96 frame"),
                       (_box(159, 10, 200, 50), "less than 2 pixels")):
        with pytest.raises(UserBoxesError, match=words):
            fit_boxes_to_frame([box], (160, 96))


def test_a_request_that_cannot_fit_in_memory_is_refused_before_decoding(monkeypatch, tmp_path):
    import recon4d.pipeline as pipeline

    monkeypatch.setattr(pipeline, "available_memory_bytes", lambda: 2 * 2**30)
    with pytest.raises(PipelineError, match=r"2000 frames .* at 672x378 needs about 11.4 GiB but 2.0 GiB"):
        check_memory(2000, (672, 378), tmp_path / "long.mp4")
    check_memory(32, (672, 378), tmp_path / "short.mp4")  # 0.2 GiB: fine


def test_clamped_boxes_and_a_rotated_video_are_reported_as_warnings(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "phone.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:  # a portrait phone clip: landscape frames + "rotate 90° clockwise"
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.set_display_rotation(-90)
        for index in range(8):
            frame = av.VideoFrame.from_ndarray((rng.random((64, 96, 3)) * 255).astype(np.uint8), format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    config = ProcessConfig(n_frames=4, tracker="classic", recon="classic", orient="motion",
                           boxes=(_box(-5, 10, 40, 50),))
    result = process_video(path, config)
    assert any("turned upright" in w and "64x96" in w for w in result.warnings)
    assert any("clamped to [0.0, 10.0, 40.0, 50.0]" in w for w in result.warnings)
    assert result.scene.source.size == (64, 96)
