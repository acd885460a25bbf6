"""Video I/O on PyAV: probing, frame sampling, streaming decode, π³-style resizing, mp4 writing.

Frames are RGB ``uint8`` arrays of shape (H, W, 3). Frame ``i`` of a video is the ``i``-th
frame its decoder outputs (presentation order). Sampling by time assumes a constant frame
rate, i.e. frame ``i`` shows the scene at ``i / fps`` seconds, which holds for camera and
phone footage and for the synthetic scenes recon4d renders.

Every bad input (missing, unreadable, empty, corrupt, truncated or audio-only file, an
empty interval) raises :class:`~recon4d.errors.VideoError` with a message that says what
was wrong and what to do; frames of the wrong shape or dtype given to :func:`write_video`
raise :class:`~recon4d.errors.ShapeError`.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import av
import numpy as np

from recon4d.checks import check_shape
from recon4d.errors import ShapeError, VideoError

if TYPE_CHECKING:
    from recon4d.types import Clip

PathLike = str | os.PathLike

PI3_PIXEL_BUDGET = 255_000
"""Default pixels per frame of the π³ image loader."""

PI3_PATCH = 14
"""Patch size of π³'s DINOv2 encoder; both image sides must be multiples of it."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without decoding it."""

    path: str
    """Path of the video file, as given."""
    fps: float
    """Average frame rate of the first video stream (frames per second)."""
    n_frames: int
    """Exact number of frames: the container's count, or the number of demuxed packets."""
    width: int
    """Frame width in pixels, as the video is displayed (after its rotation)."""
    height: int
    """Frame height in pixels, as the video is displayed (after its rotation)."""
    duration_s: float
    """``n_frames / fps``: the span the frames cover at a constant frame rate."""
    codec: str
    """FFmpeg name of the video codec (``"h264"``, ``"mpeg4"``, ``"vp9"``...)."""
    rotation_deg: int = 0
    """Counter-clockwise rotation the file asks players to display it with (its display matrix:
    0, 90, 180 or 270; phones record portrait video as landscape frames plus a rotation). Decoded
    frames are turned upright by it, so pixels, sizes and boxes are those a viewer sees."""


def _open_video(path: PathLike) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return the container and its first video stream (caller closes)."""
    path = Path(path)
    if not path.exists():
        raise VideoError(
            f"Video file '{path}' does not exist; check the path (relative paths are resolved "
            f"from {Path.cwd()})."
        )
    if path.is_dir():
        raise VideoError(f"'{path}' is a directory, not a video file; pass the path of a video file.")
    if not os.access(path, os.R_OK):
        raise VideoError(
            f"Video file '{path}' is not readable (permission denied); give this user read "
            f"permission (e.g. `chmod a+r`) or copy the file somewhere readable."
        )
    if path.stat().st_size == 0:
        raise VideoError(
            f"Video file '{path}' is empty (0 bytes); it was probably not fully written or "
            f"copied. Export or copy it again."
        )
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(
            f"'{path}' could not be opened as a video ({exc}); the file is corrupt, truncated or "
            f"not in a format FFmpeg reads. Check that it plays in a video player, or re-encode "
            f"it (e.g. `ffmpeg -i in -c:v libx264 out.mp4`)."
        ) from exc
    if not container.streams.video:
        kinds = ", ".join(stream.type for stream in container.streams)
        container.close()
        what = f"only {kinds} streams" if kinds else "no streams at all (nothing was recorded)"
        raise VideoError(f"'{path}' has no video stream: it holds {what}. Pass a file that contains video.")
    return container, container.streams.video[0]


def _stream_fps(stream: av.video.stream.VideoStream, path: PathLike) -> float:
    """Average frame rate of ``stream``, falling back to FFmpeg's guessed and base rates."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    raise VideoError(
        f"'{path}' does not state a frame rate and FFmpeg cannot guess one; re-encode it with "
        f"an explicit rate (e.g. `ffmpeg -i in -r 30 out.mp4`)."
    )


def _count_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: PathLike
) -> int:
    """Frames of ``stream`` counted by demuxing (no decoding): one packet per frame."""
    try:
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.FFmpegError as exc:
        raise VideoError(
            f"'{path}' could not be read to the end while counting its frames ({exc}); the file "
            f"is corrupt or truncated. Re-export or re-copy it."
        ) from exc


def _display_rotation(path: PathLike) -> int:
    """The display rotation (0, 90, 180, 270, counter-clockwise) of the first decodable frame."""
    container, stream = _open_video(path)
    with container:
        try:
            for frame in container.decode(stream):
                return int(round((frame.rotation or 0) / 90.0)) % 4 * 90
        except av.FFmpegError:
            pass  # a file that cannot be decoded is reported when its frames are read
    return 0


def probe(path: PathLike) -> VideoInfo:
    """Frame rate, exact frame count, displayed size, codec and rotation of the first video
    stream of ``path``.

    The frame count is the one the container states (mp4/mov do) or, when it states none
    (mkv, webm, raw streams), the number of packets found by demuxing the whole file, which
    reads the file but decodes nothing. The rotation is read from the first frame's display
    matrix; width and height are those of the frames once turned upright.
    """
    container, stream = _open_video(path)
    with container:
        fps = _stream_fps(stream, path)
        n_frames = stream.frames or _count_packets(container, stream, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        rotation = _display_rotation(path) if n_frames else 0
        if rotation in (90, 270):
            width, height = height, width
        if n_frames == 0:
            raise VideoError(
                f"'{path}' has a video stream but no frames; the recording or export probably "
                f"failed. Re-export the video."
            )
        if width == 0 or height == 0:
            raise VideoError(
                f"The video stream of '{path}' states no frame size: FFmpeg could not parse its "
                f"{stream.codec_context.name} headers, so the file is damaged. Re-export or re-copy it."
            )
        return VideoInfo(
            path=str(path),
            fps=fps,
            n_frames=int(n_frames),
            width=width,
            height=height,
            duration_s=n_frames / fps,
            codec=stream.codec_context.name,
            rotation_deg=rotation,
        )


def sample_indices(n_frames: int, n: int, start: int | None = None, end: int | None = None) -> np.ndarray:
    """``n`` frame indices spread uniformly over frames ``start..end`` (inclusive) of a video.

    Returns (n,) int64 ``round(linspace(start, end, n))``: sorted, unique, both ends
    included (``start`` alone when ``n == 1``). ``start``/``end`` default to the first and
    last frame of the video. When ``n`` exceeds the ``end - start + 1`` available frames,
    every available frame is returned once, so the result is shorter than ``n``.
    """
    first = 0 if start is None else int(start)
    last = n_frames - 1 if end is None else int(end)
    if n_frames < 1 or n < 1:
        raise VideoError(
            f"Cannot sample {n} frames from a video of {n_frames} frames; both must be at least 1."
        )
    if not 0 <= first <= last < n_frames:
        raise VideoError(
            f"Frame range {first}..{last} is not inside the video's frames 0..{n_frames - 1}; "
            f"pass 0 <= start <= end <= {n_frames - 1}."
        )
    if n >= last - first + 1:
        return np.arange(first, last + 1, dtype=np.int64)
    # Steps are >= 1 frame here, so rounding never merges two samples.
    return np.rint(np.linspace(first, last, n)).astype(np.int64)


def indices_for_interval(
    info: VideoInfo, start_s: float | None = None, end_s: float | None = None
) -> tuple[int, int]:
    """First and last frame index (inclusive) whose time ``i / fps`` lies in [start_s, end_s].

    ``start_s`` defaults to 0 and ``end_s`` to the end of the video; an ``end_s`` past the
    end is clamped to the last frame. Raises :class:`VideoError` when the interval is
    negative, reversed, starts after the video ends, or holds no frame.
    """
    start = 0.0 if start_s is None else float(start_s)
    end = info.duration_s if end_s is None else float(end_s)
    where = f"'{info.path}' lasts {info.duration_s:.3f} s ({info.n_frames} frames at {info.fps:.3f} fps)"
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
        raise VideoError(
            f"Interval start_s={start_s}, end_s={end_s} is not valid: times must be finite with "
            f"0 <= start_s <= end_s. {where}."
        )
    if start >= info.duration_s:
        raise VideoError(
            f"Interval start_s={start:.3f} s starts after the video ends; {where}. "
            f"Pass a start_s below {info.duration_s:.3f}."
        )
    if end < start:
        raise VideoError(
            f"Interval end_s={end_s} comes before start_s={start_s}; pass 0 <= start_s <= end_s. {where}."
        )
    # A millionth of a frame absorbs float error when a bound is meant to fall on a frame.
    first = math.ceil(start * info.fps - 1e-6)
    last = min(info.n_frames - 1, math.floor(end * info.fps + 1e-6))
    if first > last:
        raise VideoError(
            f"Interval [{start:.3f} s, {end:.3f} s] falls between two frames and holds none; "
            f"{where}. Widen it to at least {1 / info.fps:.3f} s."
        )
    return first, last


def sample_indices_fps(
    info: VideoInfo, fps: float, start_s: float | None = None, end_s: float | None = None
) -> np.ndarray:
    """Frame indices that sample [start_s, end_s] at ``fps`` samples per second.

    Sample times start at the interval's first frame and step by ``1 / fps``; each takes the
    nearest source frame. Returns (M,) int64, sorted and unique: a target rate at or above
    the video's own returns every frame of the interval once.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise VideoError(f"Sampling rate fps={fps} must be a positive number of frames per second.")
    first, last = indices_for_interval(info, start_s, end_s)
    span_s = (last - first) / info.fps
    times_s = first / info.fps + np.arange(math.floor(span_s * fps + 1e-6) + 1) / fps
    indices = np.clip(np.rint(times_s * info.fps), first, last).astype(np.int64)
    return np.unique(indices)


def resize_to_budget(
    width: int, height: int, pixel_budget: int = PI3_PIXEL_BUDGET, multiple: int = PI3_PATCH
) -> tuple[int, int]:
    """Frame size (new_w, new_h) for π³: aspect kept, sides multiples of ``multiple``, area ≤ budget.

    As π³'s image loader does: scale both sides by sqrt(budget / (w * h)) (up or down),
    round each to a multiple, then take one multiple at a time off the side that makes the
    frame wider or taller than the source until the area fits. Each side is at least one
    ``multiple``, so a budget below ``multiple**2`` still gives ``(multiple, multiple)``.
    """
    if min(width, height, pixel_budget, multiple) <= 0:
        raise VideoError(
            f"resize_to_budget needs positive sizes, got {width}x{height}, budget {pixel_budget}, "
            f"multiple {multiple}."
        )
    scale = math.sqrt(pixel_budget / (width * height))
    target_w, target_h = width * scale, height * scale
    cols, rows = max(1, round(target_w / multiple)), max(1, round(target_h / multiple))
    while cols * rows * multiple**2 > pixel_budget and cols * rows > 1:
        if rows == 1 or (cols > 1 and cols / rows > target_w / target_h):
            cols -= 1
        else:
            rows -= 1
    return cols * multiple, rows * multiple


def _check_indices(indices: Iterable[int]) -> np.ndarray:
    """(N,) int64 copy of ``indices`` after checking they are non-negative and increasing."""
    wanted = np.asarray(list(indices))
    if wanted.size == 0:
        return wanted.astype(np.int64).reshape(0)
    if wanted.ndim != 1 or wanted.dtype.kind not in "iu":
        raise VideoError(
            f"Frame indices must be a 1-D sequence of integers, got {wanted.dtype} of shape {wanted.shape}."
        )
    if wanted[0] < 0 or np.any(np.diff(wanted) <= 0):
        raise VideoError(
            "Frame indices must be non-negative and strictly increasing (decoding is one "
            "forward pass); sort them and drop duplicates, e.g. with np.unique."
        )
    return wanted.astype(np.int64)


def _decode_intact(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float,
    from_start: bool = True,
) -> Iterator[av.VideoFrame]:
    """Frames of ``stream`` in presentation order, up to the first sign of a damaged file.

    Frames the decoder outputs while packets are still arriving form a gap-free prefix of
    the video. The frames it still holds at the end (B-frames are reordered) may come after
    frames whose packets never arrived, so when the file looks cut short they are not
    drained: a file ending in a packet the demuxer flags corrupt, or with fewer packets than
    the container lists (mp4/mov do), or, for containers that list no count (mkv, webm),
    a drained frame further after the previous one than 1.5 times the longest step between
    frames seen while packets were arriving (at least one frame interval): a variable-rate
    file's own long steps are not taken for missing frames. After a seek (``from_start``
    False) packets cannot be counted, so the last rule applies to every file.
    """
    listed = stream.frames if from_start else 0
    longest_step = 1.0 / (fps * stream.time_base)
    fed = 0
    previous_pts = None
    for packet in container.demux(stream):
        draining = packet.size == 0  # demux ends with an empty packet that flushes the decoder
        if packet.is_corrupt or (draining and fed < listed):
            return
        fed += not draining
        for frame in packet.decode():
            step = None if None in (frame.pts, previous_pts) else frame.pts - previous_pts
            if draining and not listed and step is not None and step > 1.5 * longest_step:
                return
            if not draining and step is not None:
                longest_step = max(longest_step, step)
            previous_pts = frame.pts
            yield frame


_SEEK_MIN_S = 2.0
"""Seek only when the first wanted frame is at least this far in: closer, decoding from the
start costs about as much as the seek and its checks."""


def _constant_rate(stream: av.video.stream.VideoStream, fps: float) -> bool:
    """Whether frame i's timestamp is start + i/fps, so an index can be read off a timestamp:
    the container lists a frame count that matches its duration at ``fps`` (mp4/mov do)."""
    if not stream.frames or stream.duration is None or stream.start_time is None:
        return False
    return abs(float(stream.duration * stream.time_base) * fps - stream.frames) <= 1.0


class _SeekFailed(Exception):
    """The seek did not land on the frame grid; decode from the start instead."""


def _indexed_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: float, first_wanted: int,
    allow_seek: bool = True,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) for the frames of ``stream`` in order, from frame 0 or, for a
    constant-rate video whose first wanted frame is ``_SEEK_MIN_S`` or more in, from the
    keyframe before it. The seek is checked before anything is yielded: the frames from the
    one it lands on up to ``first_wanted`` must sit on the frame grid, one after another;
    otherwise :class:`_SeekFailed` is raised and the caller decodes from frame 0.
    """
    if not (allow_seek and first_wanted / fps >= _SEEK_MIN_S and _constant_rate(stream, fps)):
        yield from enumerate(_decode_intact(container, stream, fps))
        return
    ticks_per_frame = 1.0 / (fps * float(stream.time_base))
    start = stream.start_time
    container.seek(start + int(first_wanted * ticks_per_frame), stream=stream, backward=True, any_frame=False)
    frames = _decode_intact(container, stream, fps, from_start=False)
    checked: list[tuple[int, av.VideoFrame]] = []
    for frame in frames:
        position = None if frame.pts is None else (frame.pts - start) / ticks_per_frame
        index = None if position is None else round(position)
        if (index is None or abs(position - index) > 0.01 or index > first_wanted
                or (checked and index != checked[-1][0] + 1)):
            raise _SeekFailed
        checked.append((index, frame))
        if index == first_wanted:
            break
    else:
        raise _SeekFailed
    yield from checked
    yield from enumerate(frames, start=first_wanted + 1)


def iter_frames(
    path: PathLike, indices: Iterable[int], size: tuple[int, int] | None = None, seek: bool = True
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode the frames at ``indices`` (strictly increasing) of ``path``, one at a time.

    Yields ``(frame_index, timestamp_s, rgb)`` with ``rgb`` a (H, W, 3) uint8 array, resized
    to ``size = (width, height)`` when given (FFmpeg's area filter, which is bilinear when
    enlarging). ``timestamp_s`` is the frame's presentation time relative to the start of
    the stream (``index / fps`` when the file carries no timestamps).

    The video is decoded in a single forward pass and frames that were not asked for are
    dropped without conversion, so memory stays flat however long the video is. When the
    first requested frame lies more than ``_SEEK_MIN_S`` into a constant-rate video, decoding
    starts at the keyframe before it (:func:`_indexed_frames`) instead of at frame 0;
    ``seek=False`` always decodes from frame 0. A file that
    ends (or breaks) before the last requested frame raises :class:`VideoError` naming how
    many frames were decoded; frames already yielded were correct.
    """
    wanted = _check_indices(indices)
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise VideoError(f"size must be (width, height) with positive sides, got {size}.")
    try:
        yield from _decode_wanted(path, wanted, size, seek)
    except _SeekFailed:  # raised before any frame was yielded
        yield from _decode_wanted(path, wanted, size, False)


def _decode_wanted(path: PathLike, wanted: np.ndarray, size: tuple[int, int] | None,
                   seek: bool) -> Iterator[tuple[int, float, np.ndarray]]:
    container, stream = _open_video(path)
    with container:
        if len(wanted) == 0:
            return
        fps = _stream_fps(stream, path)
        stream.thread_type = "AUTO"
        start_pts = stream.start_time
        decoded = 0
        position = 0
        try:
            for index, frame in _indexed_frames(container, stream, fps, int(wanted[0]), seek):
                decoded = index + 1
                if start_pts is None:
                    start_pts = frame.pts
                if index != wanted[position]:
                    continue
                if frame.pts is None or start_pts is None:
                    timestamp_s = index / fps
                else:
                    timestamp_s = float((frame.pts - start_pts) * stream.time_base)
                quarter = int(round((frame.rotation or 0) / 90.0)) % 4
                upright = (frame.height, frame.width) if quarter % 2 else (frame.width, frame.height)
                width, height = size if size is not None else upright
                coded = (height, width) if quarter % 2 else (width, height)
                rgb = frame.reformat(width=coded[0], height=coded[1], format="rgb24", interpolation="AREA")
                position += 1
                yield index, timestamp_s, _upright(rgb.to_ndarray(), quarter)
                if position == len(wanted):
                    return
        except av.FFmpegError as exc:
            raise VideoError(
                f"Decoding '{path}' failed after {decoded} frames ({exc}); the file is corrupt "
                f"or truncated. Re-export or re-copy it."
            ) from exc
    raise VideoError(
        f"'{path}' ended after {decoded} decodable frames but frame {wanted[position]} was "
        f"requested (last requested: {wanted[-1]}); the file is probably truncated or damaged. "
        f"Re-export or re-copy it, or request only frames that exist."
    )


def _upright(rgb: np.ndarray, quarter_turns: int) -> np.ndarray:
    """Turn a decoded (H, W, 3) frame counter-clockwise by ``quarter_turns`` × 90° as its display
    matrix asks (phones store portrait video as landscape frames plus a rotation)."""
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


class ReleasableFrames:
    """A clip's (T, H, W, 3) uint8 frames, held decoded until :meth:`release`, then decoded again
    from the video when read (issue 12: a pipeline stage that reads the frames once, in order,
    need not have the whole clip in memory).

    Indexed like a :class:`~recon4d.types.FrameSequence` (``frames[t]``, ``frames[a:b]``,
    iteration, ``np.asarray``). After :meth:`release`, reading forward continues one decoding
    pass (:func:`iter_frames` over the clip's frame indices, the same pixels as the first
    decode); reading an earlier frame starts a new pass at it; the last
    :data:`~recon4d.types.FRAME_BATCH` frames read are kept.
    """

    def __init__(self, path: PathLike, indices: np.ndarray, size: tuple[int, int], frames: np.ndarray) -> None:
        from recon4d.types import FRAME_BATCH, FrameSequence

        self._path, self._indices, self._size = path, np.asarray(indices), size
        self._held: np.ndarray | None = frames
        self._decoder: Iterator | None = None
        self._next = 0
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._keep = FRAME_BATCH
        self._sequence = FrameSequence(len(frames), frames.shape[1:], np.uint8, self._frame)
        self.shape, self.dtype, self.ndim = self._sequence.shape, self._sequence.dtype, self._sequence.ndim

    @property
    def released(self) -> bool:
        """Whether the decoded frames were dropped (frames are decoded again when read)."""
        return self._held is None

    def release(self) -> None:
        """Drop the decoded frames; later reads decode them again from the video."""
        self._held = None

    def _frame(self, t: int) -> np.ndarray:
        if self._held is not None:
            return self._held[t]
        if t in self._recent:
            self._recent.move_to_end(t)
            return self._recent[t]
        if self._decoder is None or t < self._next:
            self._decoder = iter_frames(self._path, self._indices[t:], self._size)
            self._next = t
        while self._next <= t:
            _, _, rgb = next(self._decoder)
            self._recent[self._next] = rgb
            if len(self._recent) > self._keep:
                self._recent.popitem(last=False)
            self._next += 1
        return self._recent[t]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        return self._sequence[index]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._sequence)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self._sequence.__array__(dtype)


def read_clip(
    path: PathLike,
    n_frames: int = 32,
    fps: float | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    pixel_budget: int = PI3_PIXEL_BUDGET,
    resize: bool = True,
    releasable: bool = False,
) -> Clip:
    """Sample a :class:`~recon4d.types.Clip` from ``path``.

    Takes ``n_frames`` frames uniformly over [start_s, end_s] (the whole video by default;
    fewer when the interval holds fewer), or, when ``fps`` is given, samples at that rate
    instead. With ``resize`` the frames are scaled to :func:`resize_to_budget` of the
    source size (what π³ expects); otherwise they keep the source size.
    Clip.frames is (T, H, W, 3) uint8 RGB; timestamps_s and frame_index are (T,). With
    ``releasable`` Clip.frames is a :class:`ReleasableFrames` (the same frames, which a caller
    may drop from memory once it only reads them in order).
    """
    from recon4d.types import Clip

    info = probe(path)
    if fps is None:
        first, last = indices_for_interval(info, start_s, end_s)
        indices = sample_indices(info.n_frames, n_frames, first, last)
    else:
        indices = sample_indices_fps(info, fps, start_s, end_s)
    width, height = (info.width, info.height)
    if resize:
        width, height = resize_to_budget(width, height, pixel_budget)
    frames = np.empty((len(indices), height, width, 3), dtype=np.uint8)
    timestamps_s = np.empty(len(indices), dtype=np.float64)
    for slot, (_, timestamp_s, rgb) in enumerate(iter_frames(path, indices, (width, height))):
        frames[slot] = rgb
        timestamps_s[slot] = timestamp_s
    return Clip(
        frames=ReleasableFrames(path, indices, (width, height), frames) if releasable else frames,
        timestamps_s=timestamps_s,
        frame_index=indices,
        fps=info.fps,
        source=str(path),
        source_size=(info.width, info.height),
    )


def _pick_encoder() -> str:
    """libx264 when this PyAV's FFmpeg has it (the PyPI wheels do), else FFmpeg's own MPEG-4."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _check_frame(frame, dims: dict[str, int] | None, slot: int) -> tuple[np.ndarray, dict[str, int]]:
    """``frame`` as a contiguous (H, W, 3) uint8 array whose H, W match the earlier frames."""
    frame = np.asarray(frame)
    dims = check_shape(f"frames[{slot}]", frame, ("H", "W", 3), dims)
    if frame.dtype != np.uint8:
        raise ShapeError(
            f"frames[{slot}] has dtype {frame.dtype} but write_video needs uint8 RGB; convert "
            f"with (np.clip(x, 0, 1) * 255).round().astype(np.uint8) for [0, 1] floats."
        )
    return np.ascontiguousarray(frame), dims


def write_video(path: PathLike, frames: Iterable[np.ndarray], fps: float, quality: int = 18) -> Path:
    """Encode RGB frames, each (H, W, 3) uint8, into an H.264 mp4 at ``path``; return the path.

    ``frames`` may be a generator, so nothing holds the whole video. H and W must be even
    (yuv420p stores colour at half resolution); frames are never padded or cropped
    silently, so pixel coordinates in the video equal those in ``frames``. ``quality`` is
    x264's constant rate factor, 0 (lossless) to 51 (worst); 18 looks lossless. Without
    libx264 the MPEG-4 Part 2 encoder is used with a matching quantiser. The same frames give
    the same bytes on every run and core count: the encoder uses one thread (x264's frame
    threads make the output depend on the core count) and that thread is a fresh one started
    for this call (:func:`_encode_in_fresh_thread`). The file is written
    through :func:`recon4d.outputs.atomic_output` (unique temporary, locked, renamed when
    complete), so a crash never leaves a truncated mp4 under the final name.
    """
    from recon4d.outputs import atomic_output, check_output

    path = Path(path)
    if not (math.isfinite(fps) and fps > 0):
        raise VideoError(f"write_video needs a positive frame rate, got fps={fps}.")
    if not 0 <= quality <= 51:
        raise VideoError(f"quality is x264's CRF and must lie in 0..51 (lower is better), got {quality}.")
    if not path.parent.is_dir():
        raise VideoError(f"Cannot write '{path}': folder '{path.parent}' does not exist; create it first.")
    check_output(path, "file", what="video")
    remaining = iter(frames)
    first = next(remaining, None)
    if first is None:
        raise VideoError(f"write_video got no frames for '{path}'; pass at least one (H, W, 3) uint8 frame.")
    first, dims = _check_frame(first, None, 0)
    if dims["H"] % 2 or dims["W"] % 2:
        raise VideoError(
            f"Frames are {dims['W']}x{dims['H']} but H.264/yuv420p needs an even width and "
            f"height; crop or pad them first, e.g. frames[:, :H // 2 * 2, :W // 2 * 2]."
        )
    rate = Fraction(fps).limit_denominator(1001)

    def checked():
        for slot, frame in enumerate(itertools.chain([first], remaining)):
            yield frame if slot == 0 else _check_frame(frame, dims, slot)[0]

    with atomic_output(path, "file", what="video") as partial:
        _encode_in_fresh_thread(partial, checked(), rate, dims["W"], dims["H"], quality)
    return path


def _encode(path: Path, frames: queue.Queue, rate: Fraction, width: int, height: int, quality: int) -> None:
    codec = _pick_encoder()
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": str(quality), "threads": "1"}
        else:
            # x264's CRF +6 roughly halves the bit rate, as doubling MPEG-4's quantiser does.
            quantiser = min(31, max(1, round(2 ** ((quality - 12) / 6))))
            stream.codec_context.qmin = stream.codec_context.qmax = quantiser
        slot = 0
        while (frame := frames.get()) is not None:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = slot
            video_frame.time_base = 1 / rate
            container.mux(stream.encode(video_frame))
            slot += 1
        container.mux(stream.encode())


def _encode_in_fresh_thread(path: Path, frames: Iterator[np.ndarray], rate: Fraction, width: int, height: int,
                            quality: int) -> None:
    """Encode ``frames`` (produced in this thread) on a new thread.

    x264's rate control uses floating point, and the calling thread may carry a floating-point
    environment other libraries changed (Open3D's ray caster sets flush-to-zero/denormals-are-
    zero on the threads it runs on, depending on scheduling), which made one scene's mp4 differ
    from run to run. A new thread starts with the default environment.
    """
    handoff: queue.Queue = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _encode(path, handoff, rate, width, height, quality)
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)
            while handoff.get() is not None:  # let the producer finish
                pass

    encoder = threading.Thread(target=run, name="recon4d-video-encoder", daemon=True)
    encoder.start()
    try:
        for frame in frames:
            if failure:
                break
            handoff.put(frame)
    finally:
        handoff.put(None)
        encoder.join()
    if failure:
        raise failure[0]
