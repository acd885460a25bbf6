"""Model inputs for the geometry-aware Qwen2.5-VL: pixels, prompt ids with GSM slots, labels, batches.

Training prompts follow DSR's ``data_qwen_packed`` (VLM_FACTS §1.4): every turn is
``<|im_start|>{role}\\n{content}<|im_end|>\\n``, the video becomes ``<|vision_start|>`` +
(N + 32) ``<|video_pad|>`` + ``<|vision_end|>``, and only the assistant answer, its
``<|im_end|>`` and ``\\n`` are supervised. Inference prompts from transformers' processor get
the 32 extra slots with :func:`add_gsm_slots` (as DSR's evaluation does).

Tokenisation is a callable ``tokenize(text) -> list[int]`` (e.g. :func:`tokenizer_encode` of a
Qwen tokenizer), so tests and tools can run without a downloaded tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from recon4d.errors import Recon4dError
from recon4d.vlm.configuration import GeometryConfig, TokenIds

IGNORE_INDEX = -100
BASES = ("qwen2_5_vl", "qwen3_vl")
VIDEO_MARKER = "<video>"
DEFAULT_SYSTEM = "You are a helpful assistant."
TRAIN_MIN_PIXELS = 784
"""Per-frame pixel bounds of the reference training (``video_min/max_frame_pixels``)."""
TRAIN_MAX_PIXELS = 230400

QWEN3_MIN_PIXELS = 128 * 32 * 32
"""Clip-wide pixel bounds of Qwen3-VL's video processor (its defaults)."""
QWEN3_MAX_PIXELS = 768 * 32 * 32

Tokenize = Callable[[str], list[int]]


class ProcessingError(Recon4dError, ValueError):
    """A prompt or video cannot be turned into model inputs."""


@dataclass(frozen=True)
class Encoded:
    """Token ids of one sample and their labels."""

    input_ids: tuple[int, ...]
    """(L,) prompt (and answer) ids."""
    labels: tuple[int, ...]
    """(L,) −100 except the supervised answer tokens."""


@dataclass(frozen=True)
class VideoPixels:
    """One video as Qwen's processor flattens it."""

    pixel_values_videos: object
    """(T·H·W, 3·2·14·14) float32 torch tensor, CLIP-normalised patches."""
    video_grid_thw: tuple[int, int, int]
    """(T, H, W) patch grid (T = frames / 2)."""


@dataclass(frozen=True)
class Sample:
    """Everything one training or inference sample feeds the model."""

    input_ids: tuple[int, ...]
    """(L,) prompt ids with the video span(s) and GSM slots."""
    labels: tuple[int, ...] | None
    """(L,) labels, or None for inference."""
    videos: tuple[VideoPixels, ...] = ()
    """The sample's videos, in prompt order."""
    second_per_grid_ts: tuple[float, ...] = ()
    """Seconds per temporal grid of each video."""
    extra: dict = field(default_factory=dict)
    """Free-form metadata (e.g. the item id) carried along by data loaders."""


def tokenizer_encode(tokenizer) -> Tokenize:
    """The ``tokenize`` callable of a Hugging Face tokenizer (no special tokens added)."""
    return lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])


def visual_token_count(video_grid_thw: Sequence[int], merge_size: int = 2) -> int:
    """Merged visual tokens of one video: T·H·W / merge²."""
    t, h, w = (int(v) for v in video_grid_thw)
    return t * h * w // merge_size ** 2


def second_per_grid(n_frames: int, duration_s: float, temporal_patch_size: int = 2) -> float:
    """Seconds per temporal grid as the reference training computes it: ``2 / (n_frames / duration)``.

    (DSR's evaluation uses 1.0 whatever the clip length, VLM_FACTS §1.8.)
    """
    if n_frames <= 0 or duration_s <= 0:
        raise ProcessingError(f"second_per_grid needs frames > 0 and a positive duration; got {n_frames} frames "
                              f"over {duration_s} s.")
    return temporal_patch_size / (n_frames / duration_s)


def video_span(n_visual: int, gsm_slots: int, ids: TokenIds) -> list[int]:
    """``<|vision_start|>`` + (n_visual + gsm_slots) ``<|video_pad|>`` + ``<|vision_end|>``."""
    return [ids.vision_start] + [ids.video_pad] * (n_visual + gsm_slots) + [ids.vision_end]


def qwen3_timestamps(n_grids: int, second_per_grid: float) -> list[float]:
    """Seconds Qwen3-VL's processor writes before each temporal grid: the mean time of its two frames,
    ``(t + 1/4) · second_per_grid`` for frames sampled every ``second_per_grid / 2`` s."""
    return [(t + 0.25) * second_per_grid for t in range(n_grids)]


def qwen3_video_span(video_grid_thw: Sequence[int], gsm_slots: int, ids: TokenIds, tokenize: Tokenize,
                     second_per_grid: float, merge_size: int = 2) -> list[int]:
    """Qwen3-VL's layout of one video: per temporal grid ``<{s:.1f} seconds>`` + ``<|vision_start|>``
    + its H·W/merge² ``<|video_pad|>`` + ``<|vision_end|>``; the GSM slots follow the last grid's pads."""
    t, h, w = (int(v) for v in video_grid_thw)
    per_grid = h * w // merge_size ** 2
    out: list[int] = []
    for index, seconds in enumerate(qwen3_timestamps(t, second_per_grid)):
        slots = gsm_slots if index == t - 1 else 0
        out += tokenize(f"<{seconds:.1f} seconds>") + [ids.vision_start] + [ids.video_pad] * (per_grid + slots)
        out.append(ids.vision_end)
    return out


def encode_conversation(tokenize: Tokenize, turns: Sequence[tuple[str, str]], video_spans: Sequence[list[int]],
                        ids: TokenIds, system: str | None = DEFAULT_SYSTEM,
                        add_generation_prompt: bool = False) -> Encoded:
    """Ids and labels of a chat; each ``<video>`` marker in the turns takes the next of ``video_spans``.

    ``turns``: (role, content) with role "user" or "assistant". Assistant turns are supervised
    except their first 3 tokens (``<|im_start|>assistant\\n``), as the reference masks them.
    """
    newline = tokenize("\n")
    input_ids: list[int] = []
    labels: list[int] = []
    spans = list(video_spans)
    chat = ([("system", system)] if system is not None else []) + list(turns)
    for role, content in chat:
        if role not in ("system", "user", "assistant"):
            raise ProcessingError(f"chat roles are system, user and assistant; got {role!r}.")
        pieces = content.split(VIDEO_MARKER)
        if len(pieces) - 1 > len(spans):
            raise ProcessingError(f"the chat has more {VIDEO_MARKER} markers than the {len(video_spans)} videos given.")
        turn = [ids.im_start] + tokenize(f"{role}\n{pieces[0]}")
        for piece in pieces[1:]:
            turn += spans.pop(0) + (tokenize(piece) if piece else [])
        turn += [ids.im_end] + newline
        input_ids += turn
        labels += [IGNORE_INDEX] * 3 + turn[3:] if role == "assistant" else [IGNORE_INDEX] * len(turn)
    if spans:
        raise ProcessingError(f"{len(spans)} videos were given but the chat has no {VIDEO_MARKER} marker for them.")
    if add_generation_prompt:
        prompt = [ids.im_start] + tokenize("assistant\n")
        input_ids += prompt
        labels += [IGNORE_INDEX] * len(prompt)
    return Encoded(tuple(input_ids), tuple(labels))


def add_gsm_slots(input_ids: Sequence[int], video_pad: int, slots: int = 32) -> tuple[int, ...]:
    """Insert ``slots`` more ``<|video_pad|>`` after every run of them (DSR's inference layout).

    For one unpadded sample; batches are padded afterwards by :func:`collate`.
    """
    out: list[int] = []
    for index, token in enumerate(input_ids):
        out.append(token)
        run_ends = token == video_pad and (index + 1 == len(input_ids) or input_ids[index + 1] != video_pad)
        if run_ends:
            out += [video_pad] * slots
    return tuple(out)


def video_pixels(frames, min_pixels: int = TRAIN_MIN_PIXELS, max_pixels: int = TRAIN_MAX_PIXELS) -> VideoPixels:
    """Flatten (T, H, W, 3) uint8 RGB frames as Qwen2.5-VL's video processor does (smart resize
    to multiples of 28 within [min_pixels, max_pixels] per frame, CLIP normalisation)."""
    import torch
    from transformers import Qwen2VLVideoProcessor

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ProcessingError(f"frames must be (T, H, W, 3) uint8 RGB; got {frames.shape} {frames.dtype}.")
    processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    # Bounds are per frame, as the reference training sets them; the total-video cap of newer
    # transformers (cap_pixels_per_frame) is applied by the caller where wanted (evaluation).
    out = processor(videos=[video], return_tensors="pt", do_sample_frames=False, cap_pixels_per_frame=False)
    grid = tuple(int(v) for v in out["video_grid_thw"][0])
    return VideoPixels(out["pixel_values_videos"], grid)


def qwen3_video_pixels(frames, min_pixels: int = QWEN3_MIN_PIXELS, max_pixels: int = QWEN3_MAX_PIXELS) -> VideoPixels:
    """Flatten (T, H, W, 3) uint8 RGB frames as Qwen3-VL's video processor does (16-px patches,
    sizes multiples of 32, 0.5 mean/std); the pixel bounds are for the whole clip (T·H·W), as
    Qwen3-VL's processor reads them."""
    import torch
    from transformers import Qwen3VLVideoProcessor

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ProcessingError(f"frames must be (T, H, W, 3) uint8 RGB; got {frames.shape} {frames.dtype}.")
    processor = Qwen3VLVideoProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    out = processor(videos=[video], return_tensors="pt", do_sample_frames=False, cap_pixels_per_frame=False)
    grid = tuple(int(v) for v in out["video_grid_thw"][0])
    return VideoPixels(out["pixel_values_videos"], grid)


def collate(samples: Sequence[Sample], pad_id: int, padding_side: str = "right") -> dict:
    """A model batch from samples: ``input_ids``, ``attention_mask``, ``labels`` (when every sample
    has them), ``pixel_values_videos``, ``video_grid_thw`` and ``second_per_grid_ts`` (videos
    row-major). Left padding is what ``generate`` wants."""
    import torch

    if padding_side not in ("left", "right"):
        raise ProcessingError(f"padding_side must be 'left' or 'right'; got {padding_side!r}.")
    if not samples:
        raise ProcessingError("collate needs at least one sample.")
    length = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), length), dtype=torch.long)
    with_labels = all(s.labels is not None for s in samples)
    labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample.input_ids)
        cols = slice(length - n, length) if padding_side == "left" else slice(0, n)
        ids[row, cols] = torch.tensor(sample.input_ids)
        mask[row, cols] = 1
        if with_labels:
            labels[row, cols] = torch.tensor(sample.labels)
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_labels:
        batch["labels"] = labels
    videos = [video for sample in samples for video in sample.videos]
    if videos:
        batch["pixel_values_videos"] = torch.cat([v.pixel_values_videos for v in videos])
        batch["video_grid_thw"] = torch.tensor([v.video_grid_thw for v in videos], dtype=torch.long)
        batch["second_per_grid_ts"] = torch.tensor([s for sample in samples for s in sample.second_per_grid_ts],
                                                   dtype=torch.float32)
    return batch


class GeometryProcessor:
    """Builds :class:`Sample` s for one fusion: training (prompt + answer) and inference layouts."""

    def __init__(self, tokenize: Tokenize, geometry: GeometryConfig, merge_size: int = 2,
                 min_pixels: int | None = None, max_pixels: int | None = None,
                 system: str | None = DEFAULT_SYSTEM, base: str = "qwen2_5_vl") -> None:
        if base not in BASES:
            raise ProcessingError(f"base must be one of {', '.join(BASES)}; got {base!r}.")
        qwen3 = base == "qwen3_vl"
        self.tokenize, self.geometry, self.merge_size, self.base = tokenize, geometry, merge_size, base
        self.min_pixels = min_pixels if min_pixels is not None else QWEN3_MIN_PIXELS if qwen3 else TRAIN_MIN_PIXELS
        self.max_pixels = max_pixels if max_pixels is not None else QWEN3_MAX_PIXELS if qwen3 else TRAIN_MAX_PIXELS
        self.system = system

    def span(self, video: VideoPixels, second_per_grid: float = 1.0) -> list[int]:
        """The prompt span(s) of one video (visual tokens + this fusion's GSM slots); Qwen3-VL's
        per-grid timestamps use ``second_per_grid``."""
        if self.base == "qwen3_vl":
            return qwen3_video_span(video.video_grid_thw, self.geometry.gsm_slots, self.geometry.token_ids,
                                    self.tokenize, second_per_grid, self.merge_size)
        return video_span(visual_token_count(video.video_grid_thw, self.merge_size), self.geometry.gsm_slots,
                          self.geometry.token_ids)

    def sample(self, user: str, videos: Sequence[VideoPixels], second_per_grid_ts: Sequence[float],
               answer: str | None = None, extra: dict | None = None) -> Sample:
        """A training sample (``answer`` given: labels on it) or an inference prompt (generation prompt
        appended). ``user`` holds one ``<video>`` marker per video."""
        if len(second_per_grid_ts) != len(videos):
            raise ProcessingError(f"{len(videos)} videos but {len(second_per_grid_ts)} second_per_grid_ts values.")
        turns = [("user", user)] + ([("assistant", answer)] if answer is not None else [])
        spans = [self.span(v, s) for v, s in zip(videos, second_per_grid_ts)]
        encoded = encode_conversation(self.tokenize, turns, spans, self.geometry.token_ids,
                                      self.system, add_generation_prompt=answer is None)
        return Sample(encoded.input_ids, encoded.labels if answer is not None else None, tuple(videos),
                      tuple(float(s) for s in second_per_grid_ts), dict(extra or {}))

    def video(self, frames) -> VideoPixels:
        """Pixels of (T, H, W, 3) uint8 frames within this processor's pixel bounds."""
        if self.base == "qwen3_vl":
            return qwen3_video_pixels(frames, self.min_pixels, self.max_pixels)
        return video_pixels(frames, self.min_pixels, self.max_pixels)
