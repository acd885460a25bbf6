"""Model inputs: the reference's prompt layout (train and inference), pixels, times, batches."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.vlm.conftest import micro_batch, torch

from recon4d.vlm.configuration import GeometryConfig, TokenIds  # noqa: E402
from recon4d.vlm.processing import (  # noqa: E402
    GeometryProcessor,
    ProcessingError,
    VideoPixels,
    add_gsm_slots,
    collate,
    encode_conversation,
    second_per_grid,
    video_pixels,
    video_span,
    visual_token_count,
)

ROLE_IDS = {"system": 8948, "user": 872, "assistant": 77091, "\n": 198}


def golden_tokenize(text: str) -> list[int]:
    """The golden's hand-built ids: role words and "\\n" are Qwen's, "t<id>" stands for <id>."""
    return [ROLE_IDS.get(piece) or int(piece[1:]) for piece in re.findall(r"\n|[^\s]+", text)]


def golden_words(ids) -> str:
    return " ".join(f"t{i}" for i in ids)


def test_training_layout_reproduces_the_reference_ids_and_labels(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    ids = inputs["input_ids_train"][0].tolist()
    system = golden_words(ids[3:9])
    question = "\n".join(golden_words(line) for line in ([22440, 139823, 32228, 22758, 52668, 140516, 20946, 104068,
                                                          93740], [32959, 149209], [27103, 34878, 105589],
                                                         [121809, 100335, 38183]))
    span = video_span(visual_token_count([3, 4, 6]), 32, TokenIds())
    encoded = encode_conversation(golden_tokenize, [("user", f"<video>\n{question}"), ("assistant", "t118565")],
                                  [span], TokenIds(), system=system)
    assert list(encoded.input_ids) == ids
    assert list(encoded.labels) == inputs["labels_train"][0].tolist()
    prompt = encode_conversation(golden_tokenize, [("user", f"<video>\n{question}")], [span], TokenIds(),
                                 system=system, add_generation_prompt=True)
    assert list(prompt.input_ids) == inputs["input_ids_infer"][0].tolist()
    assert set(prompt.labels) == {-100}


def test_inference_layout_adds_32_slots_after_the_processor_run(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    ids = inputs["input_ids_infer"][0].tolist()
    processor_output = ids[:15 + 18] + ids[15 + 50:]  # what transformers' processor writes: 18 video pads
    assert list(add_gsm_slots(processor_output, TokenIds().video_pad)) == ids
    two_videos = [1, 7, 7, 2, 1, 7, 2]
    assert list(add_gsm_slots(two_videos, 7, slots=2)) == [1, 7, 7, 7, 7, 2, 1, 7, 7, 7, 2]


def test_video_pixels_match_the_reference_processor(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    video = video_pixels(inputs["frames"])
    assert video.video_grid_thw == (3, 4, 6)
    assert float(np.abs(video.pixel_values_videos.numpy() - inputs["pixel_values_videos"]).max()) < 1e-6
    with pytest.raises(ProcessingError, match="uint8"):
        video_pixels(inputs["frames"].astype(np.float32))


def test_large_frames_are_resized_within_the_pixel_bounds():
    frames = np.zeros((4, 480, 854, 3), np.uint8)
    video = video_pixels(frames)
    t, h, w = video.video_grid_thw
    assert t == 2 and h * 14 * w * 14 <= 230400 and (h * 14) % 28 == 0 and (w * 14) % 28 == 0


def test_second_per_grid_follows_the_training_rule():
    assert second_per_grid(32, 16.0) == 1.0
    assert second_per_grid(32, 8.0) == 0.5
    with pytest.raises(ProcessingError):
        second_per_grid(0, 8.0)


def test_processor_builds_both_layouts_and_collates():
    config, samples, batch = micro_batch("gsm")
    assert batch["input_ids"].shape[0] == 2 and batch["labels"].shape == batch["input_ids"].shape
    assert batch["video_grid_thw"].tolist() == [[2, 4, 4], [2, 4, 6]]
    assert batch["second_per_grid_ts"].tolist() == pytest.approx([1.3, 2.3])
    ids = TokenIds.from_hf_config(config)
    for row, sample in enumerate(samples):
        n_visual = visual_token_count(sample.videos[0].video_grid_thw)
        assert sample.input_ids.count(ids.video_pad) == n_visual + 32
        supervised = [label for label in sample.labels if label != -100]
        assert supervised[-2] == ids.im_end and len(supervised) == 3  # answer, <|im_end|>, "\n"
    _, prompts, left = micro_batch("gsm", train=False, padding_side="left")
    assert "labels" not in left and all(sample.labels is None for sample in prompts)
    assert left["attention_mask"][0, 0] == 0 or left["attention_mask"][1, 0] == 0
    assert prompts[0].input_ids[-3] == ids.im_start and prompts[0].input_ids[-1] == 10  # <|im_start|>assistant\n


def test_processing_errors():
    geometry = GeometryConfig(fusion="gsm")
    processor = GeometryProcessor(golden_tokenize, geometry, system="t5")
    video = VideoPixels(torch.zeros(4, 1176), (1, 2, 2))
    with pytest.raises(ProcessingError, match="markers"):
        processor.sample("<video> <video> t1", [video], [1.0], answer="t2")
    with pytest.raises(ProcessingError, match="no <video> marker"):
        processor.sample("t1", [video], [1.0])
    with pytest.raises(ProcessingError, match="second_per_grid_ts"):
        processor.sample("<video> t1", [video], [])
    with pytest.raises(ProcessingError, match="padding_side"):
        collate([processor.sample("<video> t1", [video], [1.0])], pad_id=0, padding_side="middle")
