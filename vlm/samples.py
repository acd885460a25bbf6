"""QA items → model samples: decoded frames, Qwen pixels, the prompt (training or evaluation layout).

Training samples hold the item's chat with its answer supervised (answer, ``<|im_end|>``, ``\\n``;
VLM_FACTS §1.4); evaluation samples hold the reference evaluation prompt with the generation
prompt appended (§1.8). Each sample's ``extra`` carries the item id and the key of its video view
(for the geometry cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from recon4d.errors import Recon4dError
from recon4d.vlm.data import (
    FrameConfig,
    ItemSet,
    QAItem,
    evaluation_prompt,
    frame_indices,
    read_frames,
    seconds_per_grid,
    video_view_key,
)
from recon4d.vlm.configuration import GeometryConfig
from recon4d.vlm.processing import DEFAULT_SYSTEM, GeometryProcessor, Sample, Tokenize, encode_conversation


class SampleError(Recon4dError, ValueError):
    """One item cannot become a sample (video breaks while decoding, prompt too long)."""


@dataclass(frozen=True)
class SampleSettings:
    """How items become samples."""

    frames: FrameConfig
    """Frame choice and pixel bounds."""
    training: bool = True
    """Training layout (chat + supervised answer) or evaluation layout (reference prompt, no answer)."""
    max_length: int = 8192
    """Longest sample in tokens (the reference's ``model_max_length``); longer items are skipped."""
    system: str | None = DEFAULT_SYSTEM
    """System prompt (Qwen's default, as both the reference training and evaluation use)."""


class SampleBuilder:
    """Builds :class:`~recon4d.vlm.processing.Sample` s of one item set for one model."""

    def __init__(self, items: ItemSet, tokenize: Tokenize, geometry: GeometryConfig, settings: SampleSettings,
                 merge_size: int = 2) -> None:
        self.items, self.settings = items, settings
        self.processor = GeometryProcessor(tokenize, geometry, merge_size, settings.frames.min_pixels,
                                           settings.frames.max_pixels, settings.system)

    def prompt_turns(self, item: QAItem) -> list[tuple[str, str]]:
        if self.settings.training:
            return list(item.turns)
        if item.question is None or item.options is None:
            raise SampleError(f"{item.id} is not a multiple-choice question; evaluation needs four options.")
        return [("user", evaluation_prompt(item.question, item.options))]

    def __call__(self, item: QAItem) -> Sample:
        """The sample of ``item``; raises SampleError when its video breaks or it is too long."""
        from recon4d.errors import VideoError

        info = self.items.infos[item.video]
        frames = self.settings.frames
        indices = frame_indices(info, frames, item.visible_end_s)
        try:
            rgb = read_frames(item.video, indices)
        except VideoError as exc:
            raise SampleError(f"{item.id}: {exc}") from None
        video = self.processor.video(rgb)
        seconds = seconds_per_grid(indices, info, frames)
        encoded = encode_conversation(self.processor.tokenize, self.prompt_turns(item), [self.processor.span(video)],
                                      self.processor.geometry.token_ids, self.settings.system,
                                      add_generation_prompt=not self.settings.training)
        if len(encoded.input_ids) > self.settings.max_length:
            raise SampleError(f"{item.id}: {len(encoded.input_ids)} tokens exceed max_length "
                              f"{self.settings.max_length}; lower the frames' pixel bounds or raise max_length.")
        extra = {"id": item.id, "view_keys": (video_view_key(item, info, indices, frames),),
                 "frame_indices": indices.tolist()}
        labels = encoded.labels if self.settings.training else None
        return Sample(encoded.input_ids, labels, (video,), (seconds,), extra)
