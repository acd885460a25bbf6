"""Videos as players show them: a display rotation turns frames upright; a variable-rate mkv
decodes to its end instead of being called truncated; a cut-off stream still is."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from recon4d.errors import VideoError
from recon4d.video import iter_frames, probe, read_clip


def _write(path, frames, rotation=None, container="mp4", steps_ms=None):
    out = av.open(str(path), "w", format="matroska" if container == "mkv" else container)
    stream = out.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    stream.codec_context.time_base = Fraction(1, 1000)
    if rotation is not None:
        stream.set_display_rotation(rotation)
    pts = 0
    for index, frame in enumerate(frames):
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts, video_frame.time_base = pts, Fraction(1, 1000)
        pts += steps_ms[index % len(steps_ms)] if steps_ms else 33
        out.mux(stream.encode(video_frame))
    out.mux(stream.encode())
    out.close()
    return path


def _marked(n=6, height=32, width=64):
    """Frames with a white strip along the left edge (columns 0-7)."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    frames[:, :, :8] = 255
    return list(frames)


@pytest.mark.parametrize("rotation, edge", [(-90, "top"), (90, "bottom"), (180, "right"), (0, "left")])
def test_display_rotation_turns_frames_upright(tmp_path, rotation, edge):
    # A phone holds portrait video as landscape frames plus "rotate 90° clockwise" (-90).
    path = _write(tmp_path / "r.mp4", _marked(), rotation=rotation)
    info = probe(path)
    assert info.rotation_deg == rotation % 360
    assert (info.width, info.height) == ((32, 64) if rotation % 180 else (64, 32))
    clip = read_clip(path, n_frames=3, resize=False)
    assert clip.source_size == (info.width, info.height)
    red = clip.frames[0][..., 0].astype(float)
    strips = {"top": red[:6].mean(), "bottom": red[-6:].mean(), "left": red[:, :6].mean(),
              "right": red[:, -6:].mean()}
    assert max(strips, key=strips.get) == edge and strips[edge] > 200
    _, _, resized = next(iter_frames(path, [0], size=(16, 32) if rotation % 180 else (32, 16)))
    assert resized.shape == ((32, 16, 3) if rotation % 180 else (16, 32, 3))


def test_variable_frame_rate_mkv_decodes_to_its_end(tmp_path):
    rng = np.random.default_rng(0)
    frames = list((rng.random((40, 48, 64, 3)) * 255).astype(np.uint8))
    path = _write(tmp_path / "vfr.mkv", frames, container="mkv", steps_ms=[33, 33, 100, 17, 250])
    info = probe(path)
    assert info.n_frames == 40
    clip = read_clip(path, n_frames=40, resize=False)
    assert clip.n_frames == 40 and np.all(np.diff(clip.timestamps_s) > 0)


def test_a_cut_off_mkv_never_gives_a_frame_under_another_index(tmp_path):
    # Cut mid-stream, the decoder still holds reordered frames whose predecessors never arrived;
    # drained, they would take the index of a missing frame. Either the read stops with an error
    # or every frame it returns is the source frame of its index.
    rng = np.random.default_rng(1)
    frames = (rng.random((40, 48, 64, 3)) * 255).astype(np.uint8)
    whole = _write(tmp_path / "w.mkv", list(frames), container="mkv")
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    try:
        info = probe(cut)
        decoded = list(iter_frames(cut, range(info.n_frames)))
    except VideoError as exc:
        assert "truncated" in str(exc) or "damaged" in str(exc) or "corrupt" in str(exc)
        return
    for index, _, rgb in decoded:
        errors = np.abs(frames.astype(int) - rgb.astype(int)).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == index
