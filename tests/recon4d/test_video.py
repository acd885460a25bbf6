"""Tests of recon4d/video.py on tiny videos written by write_video (or raw PyAV for broken ones)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recon4d import video
from recon4d.errors import ShapeError, VideoError
from recon4d.video import (
    ReleasableFrames,
    VideoInfo,
    indices_for_interval,
    iter_frames,
    probe,
    read_clip,
    resize_to_budget,
    sample_indices,
    sample_indices_fps,
    write_video,
)

from tests.conftest import SHARED_DATA, missing_shared_data

WIDTH, HEIGHT, N_FRAMES, FPS = 80, 48, 30, 10.0
N_BITS = 5
REAL_VIDEO = SHARED_DATA / "videos" / "01_dog.mp4"


def coded_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(H, W, 3) uint8 frame whose top half spells ``index`` in 5 white/black column blocks.

    The bottom half is seeded noise so inter frames are large enough that cutting the file
    lands in the middle of the stream rather than in its first frame.
    """
    frame = np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame[: height // 2] = 0
    block = width // N_BITS
    for bit in range(N_BITS):
        if index >> bit & 1:
            frame[: height // 2, bit * block : (bit + 1) * block] = 255
    return frame


def read_code(rgb: np.ndarray) -> int:
    """Index spelled by a decoded (possibly resized) :func:`coded_frame`."""
    height, width = rgb.shape[:2]
    rows = rgb[: height // 4]
    centres = ((np.arange(N_BITS) + 0.5) * width / N_BITS).astype(int)
    return sum(int(rows[:, x].mean() > 128) << bit for bit, x in enumerate(centres))


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory) -> Path:
    """30 frames of 80x48 at 10 fps, frame i spelling i."""
    path = tmp_path_factory.mktemp("video") / "coded.mp4"
    return write_video(path, (coded_frame(i) for i in range(N_FRAMES)), FPS)


@pytest.fixture(scope="module")
def info(coded_video) -> VideoInfo:
    return probe(coded_video)


def write_raw_mp4(path: Path, n_frames: int) -> None:
    """An mp4 written by plain PyAV, with its index (moov) at the end, FFmpeg's default."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(n_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(coded_frame(index), format="rgb24")))
        container.mux(stream.encode())


def remux(source: Path, target: Path) -> Path:
    """Copy the video packets of ``source`` into ``target`` (container from its suffix)."""
    with av.open(str(source)) as reader, av.open(str(target), mode="w") as writer:
        out = writer.add_stream_from_template(reader.streams.video[0])
        for packet in reader.demux(reader.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                writer.mux(packet)
    return target


def truncate(source: Path, target: Path, fraction: float = 0.6) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


# --- write_video and probe -------------------------------------------------------------


def test_write_video_leaves_only_the_final_file(coded_video, info):
    assert sorted(p.name for p in coded_video.parent.iterdir()) == ["coded.mp4"]
    assert (info.fps, info.n_frames, info.width, info.height) == (FPS, N_FRAMES, WIDTH, HEIGHT)
    assert info.duration_s == pytest.approx(N_FRAMES / FPS)
    assert info.codec == ("h264" if "libx264" in av.codecs_available else "mpeg4")
    assert info.path == str(coded_video)


@pytest.mark.parametrize("encoder", ["libx264", "mpeg4"])
def test_write_video_quality_and_fallback(tmp_path, monkeypatch, encoder):
    if encoder not in av.codecs_available:
        pytest.skip(f"this PyAV's FFmpeg has no {encoder} encoder")
    monkeypatch.setattr(video, "_pick_encoder", lambda: encoder)
    frames = [coded_frame(i) for i in range(6)]
    fine = write_video(tmp_path / "fine.mp4", frames, 5.0, quality=10)
    coarse = write_video(tmp_path / "coarse.mp4", frames, 5.0, quality=40)
    assert fine.stat().st_size > 2 * coarse.stat().st_size
    assert probe(fine).codec == {"libx264": "h264", "mpeg4": "mpeg4"}[encoder]
    assert [read_code(rgb) for _, _, rgb in iter_frames(fine, range(6))] == list(range(6))


def test_write_video_overwrites_and_accepts_non_integer_rate(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, [coded_frame(0)] * 2, 10.0)
    write_video(path, [coded_frame(i) for i in range(4)], 30000 / 1001)
    assert probe(path).n_frames == 4
    assert probe(path).fps == pytest.approx(29.97, abs=1e-3)


def test_write_video_rejects_odd_size(tmp_path):
    with pytest.raises(VideoError, match=r"81x48.*even width and height"):
        write_video(tmp_path / "odd.mp4", [coded_frame(0, width=81)], FPS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("frames", "fps", "error", "words"),
    [
        ([], FPS, VideoError, "no frames"),
        ([coded_frame(0)], 0.0, VideoError, "positive frame rate"),
        ([coded_frame(0).astype(np.float32)], FPS, ShapeError, "uint8"),
        ([coded_frame(0)[..., 0]], FPS, ShapeError, r"frames\[0\] must have shape"),
    ],
)
def test_write_video_rejects_bad_input(tmp_path, frames, fps, error, words):
    with pytest.raises(error, match=words):
        write_video(tmp_path / "bad.mp4", frames, fps)
    assert list(tmp_path.iterdir()) == []


def test_write_video_crash_midway_leaves_nothing(tmp_path):
    def frames():
        yield coded_frame(0)
        yield coded_frame(1)
        yield coded_frame(2, width=40)

    with pytest.raises(ShapeError, match=r"frames\[2\].*along axis 1 \(W\)"):
        write_video(tmp_path / "crash.mp4", frames(), FPS)
    assert list(tmp_path.iterdir()) == []


def test_write_video_needs_existing_folder_and_valid_quality(tmp_path):
    with pytest.raises(VideoError, match="does not exist; create it"):
        write_video(tmp_path / "missing" / "v.mp4", [coded_frame(0)], FPS)
    with pytest.raises(VideoError, match=r"CRF and must lie in 0\.\.51"):
        write_video(tmp_path / "v.mp4", [coded_frame(0)], FPS, quality=60)
    assert list(tmp_path.iterdir()) == []


def test_probe_counts_packets_when_container_states_no_count(coded_video, tmp_path):
    mkv = remux(coded_video, tmp_path / "coded.mkv")
    with av.open(str(mkv)) as container:
        assert container.streams.video[0].frames == 0
    assert probe(mkv).n_frames == N_FRAMES


# --- sampling ---------------------------------------------------------------------------


def test_sample_indices_examples():
    np.testing.assert_array_equal(sample_indices(30, 5), [0, 7, 14, 22, 29])
    np.testing.assert_array_equal(sample_indices(30, 1), [0])
    np.testing.assert_array_equal(sample_indices(30, 3, start=10, end=20), [10, 15, 20])
    np.testing.assert_array_equal(sample_indices(30, 50, start=25), [25, 26, 27, 28, 29])
    assert sample_indices(30, 5).dtype == np.int64


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 400), st.data())
def test_sample_indices_properties(n_frames, n, data):
    first = data.draw(st.integers(0, n_frames - 1))
    last = data.draw(st.integers(first, n_frames - 1))
    indices = sample_indices(n_frames, n, first, last)
    assert len(indices) == min(n, last - first + 1)
    assert indices[0] == first and (n == 1 or indices[-1] == last)
    assert np.all(np.diff(indices) > 0)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((30, 0), "at least 1"),
        ((0, 5), "at least 1"),
        ((30, 5, 10, 30), r"0\.\.29"),
        ((30, 5, 12, 11), "start <= end"),
    ],
)
def test_sample_indices_rejects_bad_ranges(args, words):
    with pytest.raises(VideoError, match=words):
        sample_indices(*args)


def test_indices_for_interval(info):
    assert indices_for_interval(info) == (0, 29)
    assert indices_for_interval(info, 1.0, 2.0) == (10, 20)
    assert indices_for_interval(info, 0.95, 1.25) == (10, 12)
    assert indices_for_interval(info, 2.5, 99.0) == (25, 29)
    assert indices_for_interval(info, end_s=0.0) == (0, 0)


@pytest.mark.parametrize(
    ("start_s", "end_s", "words"),
    [
        (3.5, None, "starts after the video ends.*3.000 s"),
        (2.0, 1.0, "0 <= start_s <= end_s.*3.000 s"),
        (-1.0, 1.0, "0 <= start_s"),
        (0.01, 0.05, "holds none.*3.000 s"),
        (float("nan"), 1.0, "finite"),
    ],
)
def test_indices_for_interval_rejects_empty_or_outside(info, start_s, end_s, words):
    with pytest.raises(VideoError, match=words):
        indices_for_interval(info, start_s, end_s)


def test_sample_indices_fps(info):
    np.testing.assert_array_equal(sample_indices_fps(info, 5.0), np.arange(0, 30, 2))
    np.testing.assert_array_equal(sample_indices_fps(info, 3.0), [0, 3, 7, 10, 13, 17, 20, 23, 27])
    np.testing.assert_array_equal(sample_indices_fps(info, 60.0), np.arange(30))
    np.testing.assert_array_equal(sample_indices_fps(info, 2.0, 1.0, 2.0), [10, 15, 20])
    with pytest.raises(VideoError, match="positive"):
        sample_indices_fps(info, 0.0)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([24.0, 25.0, 30000 / 1001, 60.0]), st.integers(1, 2000), st.floats(0.1, 100.0))
def test_sample_indices_fps_properties(source_fps, n_frames, fps):
    info = VideoInfo("x.mp4", source_fps, n_frames, 64, 48, n_frames / source_fps, "h264")
    indices = sample_indices_fps(info, fps)
    assert indices[0] == 0 and indices[-1] < n_frames
    assert np.all(np.diff(indices) > 0)
    expected = min(n_frames, int(np.floor((n_frames - 1) / source_fps * fps + 1e-6)) + 1)
    assert abs(len(indices) - expected) <= 1


# --- resize_to_budget -------------------------------------------------------------------


def test_resize_to_budget_examples():
    assert resize_to_budget(1920, 1080) == (672, 378)
    assert resize_to_budget(640, 360) == (672, 378)
    assert resize_to_budget(1001, 777) == (574, 434)
    assert resize_to_budget(3, 5, pixel_budget=10) == (14, 14)
    with pytest.raises(VideoError, match="positive"):
        resize_to_budget(0, 10)


@settings(max_examples=300, deadline=None)
@given(st.integers(16, 5000), st.integers(16, 5000), st.sampled_from([255_000, 100_000, 20_000]))
def test_resize_to_budget_properties(width, height, budget):
    assume(1 / 4 <= width / height <= 4)
    new_w, new_h = resize_to_budget(width, height, budget)
    assert new_w % 14 == 0 and new_h % 14 == 0 and min(new_w, new_h) >= 14
    assert new_w * new_h <= budget
    assert abs(new_w - new_h * width / height) <= 14 or abs(new_h - new_w * height / width) <= 14


# --- iter_frames ------------------------------------------------------------------------


def test_iter_frames_returns_requested_frames(coded_video):
    wanted = [0, 1, 7, 16, 29]
    out = list(iter_frames(coded_video, wanted))
    assert [index for index, _, _ in out] == wanted
    assert [read_code(rgb) for _, _, rgb in out] == wanted
    np.testing.assert_allclose([t for _, t, _ in out], np.array(wanted) / FPS, atol=1e-6)
    assert all(rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8 for _, _, rgb in out)


def test_iter_frames_resizes(coded_video):
    out = list(iter_frames(coded_video, np.array([3, 21]), size=(42, 28)))
    assert [rgb.shape for _, _, rgb in out] == [(28, 42, 3), (28, 42, 3)]
    assert [read_code(rgb) for _, _, rgb in out] == [3, 21]


def test_iter_frames_stops_early_and_accepts_empty(coded_video):
    frames = iter_frames(coded_video, range(N_FRAMES))
    assert next(frames)[0] == 0
    frames.close()
    assert list(iter_frames(coded_video, [])) == []


@pytest.mark.parametrize(
    ("indices", "size"), [([3, 1], None), ([2, 2], None), ([-1, 4], None), ([0], (0, 10))]
)
def test_iter_frames_rejects_bad_arguments(coded_video, indices, size):
    with pytest.raises(VideoError, match="strictly increasing|positive sides"):
        list(iter_frames(coded_video, indices, size))


def test_iter_frames_past_the_end(coded_video):
    with pytest.raises(VideoError, match="ended after 30 decodable frames but frame 31"):
        list(iter_frames(coded_video, [5, 31]))


# --- read_clip --------------------------------------------------------------------------


def test_read_clip_uniform(coded_video):
    clip = read_clip(coded_video, n_frames=8, pixel_budget=2_000)
    np.testing.assert_array_equal(clip.frame_index, sample_indices(N_FRAMES, 8))
    assert clip.frames.shape == (8, *resize_to_budget(WIDTH, HEIGHT, 2_000)[::-1], 3)
    assert [read_code(rgb) for rgb in clip.frames] == clip.frame_index.tolist()
    np.testing.assert_allclose(clip.timestamps_s, clip.frame_index / FPS, atol=1e-6)
    assert (clip.fps, clip.source, clip.source_size) == (FPS, str(coded_video), (WIDTH, HEIGHT))


def test_read_clip_fps_interval_without_resize(coded_video):
    clip = read_clip(coded_video, fps=5.0, start_s=1.0, end_s=2.0, resize=False)
    assert clip.frame_index.tolist() == [10, 12, 14, 16, 18, 20]
    assert clip.frames.shape == (6, HEIGHT, WIDTH, 3)
    assert [read_code(rgb) for rgb in clip.frames] == clip.frame_index.tolist()


def test_released_frames_are_decoded_again_with_the_same_pixels(coded_video):
    """Issue 12: ``read_clip(releasable=True)`` frames can be dropped and read back from the video,
    forwards (one pass), backwards (a new pass, seeking past 2 s) and by slices."""
    held = read_clip(coded_video, n_frames=20, pixel_budget=2_000)
    clip = read_clip(coded_video, n_frames=20, pixel_budget=2_000, releasable=True)
    assert isinstance(clip.frames, ReleasableFrames) and not clip.frames.released
    np.testing.assert_array_equal(np.asarray(clip.frames), held.frames)
    clip.frames.release()
    assert clip.frames.released and clip.frames.shape == held.frames.shape and clip.n_frames == 20
    for t in (0, 1, 2, 19, 18, 5, 15, 16, 3, 3):
        np.testing.assert_array_equal(clip.frames[t], held.frames[t])
    np.testing.assert_array_equal(clip.frames[4:9], held.frames[4:9])
    assert [read_code(rgb) for rgb in clip.frames] == clip.frame_index.tolist()


def test_read_clip_default_takes_every_frame_of_a_short_video(coded_video):
    clip = read_clip(coded_video, pixel_budget=5_000)
    assert clip.frame_index.tolist() == list(range(N_FRAMES))


def test_real_video():
    if not REAL_VIDEO.exists():
        missing_shared_data(f"the sample video {REAL_VIDEO}")
    info = probe(REAL_VIDEO)
    assert (info.n_frames, info.width, info.height, info.codec) == (289, 1280, 720, "h264")
    assert info.fps == pytest.approx(30000 / 1001)
    clip = read_clip(REAL_VIDEO, n_frames=8)
    assert clip.frames.shape == (8, 378, 672, 3)
    np.testing.assert_array_equal(clip.frame_index, sample_indices(289, 8))
    np.testing.assert_allclose(clip.timestamps_s, clip.frame_index * 1001 / 30000, atol=1e-6)
    assert clip.frames.std() > 10


# --- bad files --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="does not exist; check the path"):
        probe(tmp_path / "nope.mp4")


def test_directory(tmp_path):
    with pytest.raises(VideoError, match="is a directory, not a video file"):
        probe(tmp_path)


def test_unreadable_file(coded_video, monkeypatch):
    """An unreadable file is named as such. Permissions cannot deny root (CI containers run as root),
    so the access check is faked for this one file rather than chmod-ed (which would skip under root)."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != coded_video and real_access(p, mode))
    with pytest.raises(VideoError, match="not readable.*permission"):
        probe(coded_video)


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(VideoError, match=r"is empty \(0 bytes\)"):
        probe(tmp_path / "empty.mp4")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(VideoError, match="could not be opened as a video.*corrupt, truncated"):
        probe(path)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.75, 0.9, 0.98])
def test_truncated_file_decodes_a_correct_prefix_then_errors(coded_video, tmp_path, suffix, fraction):
    """write_video puts the mp4 index first and mkv needs none, so a cut file still probes;
    decoding must yield only correctly numbered frames, then say the rest is missing."""
    whole = coded_video if suffix == ".mp4" else remux(coded_video, tmp_path / "whole.mkv")
    path = truncate(whole, tmp_path / f"cut{suffix}", fraction)
    decoded = []
    missing = r"ended after \d+ decodable frames but frame \d+ was requested.*truncated"
    with pytest.raises(VideoError, match=missing):
        for index, _, rgb in iter_frames(path, range(N_FRAMES)):
            decoded.append((index, read_code(rgb)))
    assert len(decoded) < N_FRAMES
    assert decoded == [(i, i) for i in range(len(decoded))]


def test_read_clip_of_truncated_mp4(coded_video, tmp_path):
    path = truncate(coded_video, tmp_path / "cut.mp4")
    assert probe(path).n_frames == N_FRAMES
    missing = r"ended after \d+ decodable frames but frame (19|29) was requested \(last requested: 29\)"
    with pytest.raises(VideoError, match=missing):
        read_clip(path, n_frames=4, pixel_budget=2_000)


def test_truncated_mp4_with_index_last(tmp_path):
    whole = tmp_path / "raw.mp4"
    write_raw_mp4(whole, N_FRAMES)
    assert probe(whole).n_frames == N_FRAMES
    with pytest.raises(VideoError, match="could not be opened as a video.*truncated"):
        probe(truncate(whole, tmp_path / "cut.mp4"))


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.m4a"
    rate = 16_000
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="fltp", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoError, match="no video stream: it holds only audio streams"):
        probe(path)


def test_mp4_without_streams(tmp_path):
    path = tmp_path / "nothing.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoError, match="no video stream: it holds no streams at all"):
        probe(path)


def test_video_with_no_decodable_frame(coded_video, tmp_path):
    """Headers of a real h264 stream, packets of noise: probes fine, decodes nothing."""
    path = tmp_path / "garbage.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(coded_video)) as source, av.open(str(path), mode="w", format="mp4") as target:
        template = source.streams.video[0]
        stream = target.add_stream_from_template(template)
        for index in range(10):
            packet = av.Packet(rng.bytes(300))
            packet.pts = packet.dts = index * 1024
            packet.time_base = template.time_base
            packet.stream = stream
            target.mux(packet)
    assert probe(path).n_frames == 10
    with pytest.raises(VideoError, match="failed after 0 frames.*corrupt or truncated"):
        read_clip(path, n_frames=4)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """20 s at 30 fps, 32×32: x264's default keyframe interval (250) puts keyframes at 0, 250, 500."""
    rng = np.random.default_rng(7)
    frames = (rng.random((600, 32, 32, 3)) * 255).astype(np.uint8)
    return video.write_video(tmp_path_factory.mktemp("long") / "long.mp4", iter(frames), 30.0)


def _decode_calls(monkeypatch):
    calls = []
    original = video._decode_wanted

    def counting(path, wanted, size, seek):
        calls.append(seek)
        return original(path, wanted, size, seek)

    monkeypatch.setattr(video, "_decode_wanted", counting)
    return calls


@pytest.mark.parametrize("indices", [[520, 599], [260, 261, 400], [5, 590], [70], [250], [499, 500]])
def test_seeking_gives_the_frames_decoding_from_the_start_gives(long_video, indices, monkeypatch):
    calls = _decode_calls(monkeypatch)
    sought = list(iter_frames(long_video, indices, size=(16, 16)))
    assert calls == [True]  # the seek held: no fallback
    plain = list(iter_frames(long_video, indices, size=(16, 16), seek=False))
    assert [f[0] for f in sought] == [f[0] for f in plain] == indices
    for (_, t_a, rgb_a), (_, t_b, rgb_b) in zip(sought, plain):
        assert t_a == pytest.approx(t_b, abs=1e-9) and np.array_equal(rgb_a, rgb_b)


def test_seek_that_lands_off_the_grid_falls_back(tmp_path, monkeypatch):
    """Irregular timestamps (a variable-rate file): a forced seek is detected and redone from 0."""
    path = tmp_path / "vfr.mp4"
    rng = np.random.default_rng(8)
    frames = (rng.random((200, 32, 32, 3)) * 255).astype(np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 300)
        pts = np.cumsum(rng.choice([7, 10, 13], size=200)) - 7
        for frame, stamp in zip(frames, pts):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = int(stamp), Fraction(1, 300)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    plain = list(iter_frames(path, [150, 199], seek=False))
    monkeypatch.setattr(video, "_constant_rate", lambda stream, fps: True)
    calls = _decode_calls(monkeypatch)
    sought = list(iter_frames(path, [150, 199]))
    assert calls == [True, False]
    assert [f[0] for f in sought] == [150, 199]
    for a, b in zip(sought, plain):
        assert a[1] == pytest.approx(b[1]) and np.array_equal(a[2], b[2])
