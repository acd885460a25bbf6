"""The reference LLM position rule (transformers 4.51) in forward and in generate, and the Q-Former tables."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vlm.conftest import build, micro_batch, torch

from recon4d.vlm.configuration import QWEN_SPECIAL_IDS  # noqa: E402
from recon4d.vlm.positions import mrope_cos_sin, reference_rope_index, rope_inv_freq, spatial_key_positions  # noqa: E402


def golden_rope_index(ids, inputs, attention_mask=None):
    return reference_rope_index(
        ids, image_grid_thw=None, video_grid_thw=torch.from_numpy(inputs["video_grid_thw"]),
        second_per_grid_ts=torch.from_numpy(inputs["second_per_grid_ts"]), attention_mask=attention_mask,
        merge_size=2, tokens_per_second=2, vision_start_id=QWEN_SPECIAL_IDS["vision_start"],
        image_id=QWEN_SPECIAL_IDS["image_pad"], video_id=QWEN_SPECIAL_IDS["video_pad"])


def test_reference_rule_reproduces_the_training_positions(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    positions, deltas = golden_rope_index(torch.from_numpy(inputs["input_ids_train"]), inputs)
    np.testing.assert_array_equal(positions.numpy(), inputs["position_ids_train"])
    # The 32 GSM slots follow the 18 visual tokens as text: 21..52 on all axes, then <|vision_end|> at 53.
    np.testing.assert_array_equal(positions[:, 0, 33:65].numpy(), np.tile(np.arange(21, 53), (3, 1)))
    assert positions[0, 0, 65] == 53 and int(deltas) == int(positions.max()) + 1 - 95


def test_reference_rule_gives_the_inference_positions_and_deltas(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    positions, deltas = golden_rope_index(torch.from_numpy(inputs["input_ids_infer"]), inputs)
    np.testing.assert_array_equal(positions.numpy(), inputs["position_ids_train"][:, :, :92])
    assert deltas.tolist() == [[-12]]


def test_stock_transformers_rule_differs_so_recon4d_keeps_its_own(vlm_golden):
    """transformers 5.25 continues text at start + max(h, w)/2: the GSM slots start at 18, not 21.
    If a future version went back to 4.51's rule this test says so (and the override could go)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    inputs = np.load(vlm_golden / "inputs.npz")
    ids = torch.from_numpy(inputs["input_ids_train"])
    config = Qwen2_5_VLConfig.from_json_file(str(vlm_golden / "config_tiny.json"))
    with torch.device("meta"):
        stock = Qwen2_5_VLModel(config)
    types = torch.zeros_like(ids)
    types[ids == QWEN_SPECIAL_IDS["video_pad"]] = 2
    types[0, 15 + 18:65] = 0  # the 32 GSM slots typed as text (typing them as video crashes)
    stock_positions, _ = stock.get_rope_index(ids, mm_token_type_ids=types,
                                              video_grid_thw=torch.from_numpy(inputs["video_grid_thw"]),
                                              second_per_grid_ts=torch.from_numpy(inputs["second_per_grid_ts"]))
    differs = np.nonzero((stock_positions.numpy() != inputs["position_ids_train"]).any(axis=0)[0])[0]
    assert differs[0] == 33 and int(stock_positions[0, 0, 33]) == 18


def test_padding_leaves_each_rows_positions_unchanged(vlm_golden):
    inputs = np.load(vlm_golden / "inputs.npz")
    train = torch.from_numpy(inputs["input_ids_train"])[0]
    infer = torch.from_numpy(inputs["input_ids_infer"])[0]
    ids = torch.full((2, 95), QWEN_SPECIAL_IDS["endoftext"])
    mask = torch.zeros(2, 95, dtype=torch.long)
    ids[0], mask[0] = train, 1
    ids[1, 3:], mask[1, 3:] = infer, 1  # left padding
    grid = torch.from_numpy(inputs["video_grid_thw"]).repeat(2, 1)
    seconds = torch.from_numpy(inputs["second_per_grid_ts"]).repeat(2)
    positions, deltas = reference_rope_index(
        ids, image_grid_thw=None, video_grid_thw=grid, second_per_grid_ts=seconds, attention_mask=mask,
        merge_size=2, tokens_per_second=2, vision_start_id=QWEN_SPECIAL_IDS["vision_start"],
        image_id=QWEN_SPECIAL_IDS["image_pad"], video_id=QWEN_SPECIAL_IDS["video_pad"])
    np.testing.assert_array_equal(positions[:, 0].numpy(), inputs["position_ids_train"][:, 0])
    np.testing.assert_array_equal(positions[:, 1, 3:].numpy(), inputs["position_ids_train"][:, 0, :92])
    assert (positions[:, 1, :3] == 1).all()  # padding gets position 1, as 4.51
    assert deltas.tolist() == [[-12], [80 - 95]]


def test_forward_and_generate_use_the_reference_rule():
    """generate: the prompt gets the reference positions, every new token max + 1, max + 2, ..."""
    config, samples, batch = micro_batch("gsm", train=False, padding_side="left")
    model = build(config)
    seen = []
    model.model.language_model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["position_ids"].clone()), with_kwargs=True)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values_videos", "video_grid_thw",
                                    "second_per_grid_ts")}
    expected, deltas = model.get_rope_index(batch["input_ids"], video_grid_thw=batch["video_grid_thw"],
                                            second_per_grid_ts=batch["second_per_grid_ts"],
                                            attention_mask=batch["attention_mask"])
    with torch.no_grad():
        logits = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False, pad_token_id=0)
    np.testing.assert_array_equal(seen[0].numpy(), expected.numpy())  # plain forward
    np.testing.assert_array_equal(seen[1][1:].numpy(), expected.numpy())  # generate's prompt (row 0: text)
    top = expected.amax(dim=(0, 2))
    for step, positions in enumerate(seen[2:], start=1):
        np.testing.assert_array_equal(positions[1:, :, 0].numpy(), (top + step).expand(3, -1).numpy())
    assert model.model.rope_deltas.tolist() == deltas.tolist()
    # Greedy decoding's first token is the forward's argmax at the last prompt position.
    assert generated[:, batch["input_ids"].shape[1]].tolist() == logits[:, -1].argmax(-1).tolist()


def test_qformer_positions_and_rope_tables():
    key = spatial_key_positions(torch.tensor([3, 4, 6]), 2, torch.tensor(1.3), 2.0)
    assert key.shape == (3, 18)
    assert key[0].tolist() == [0] * 6 + [2] * 6 + [5] * 6  # floor(t · 1.3 · 2), truncation exercised
    assert key[1].tolist()[:6] == [0, 0, 0, 1, 1, 1] and key[2].tolist()[:6] == [0, 1, 2, 0, 1, 2]
    inv_freq = rope_inv_freq(16, 1e6)
    positions = torch.stack([torch.tensor([[0.0, 5.0]]), torch.tensor([[1.0, 7.0]]), torch.tensor([[2.0, 9.0]])])
    cos, sin = mrope_cos_sin(positions, inv_freq, [2, 3, 3], torch.float32)
    assert cos.shape == (1, 2, 16)
    # Channel j < 2 rotates by the t axis, 2 <= j < 5 by h, 5 <= j < 8 by w; the second half repeats.
    for j, axis in enumerate([0, 0, 1, 1, 1, 2, 2, 2]):
        angle = positions[axis, 0, 1] * inv_freq[j]
        assert torch.allclose(cos[0, 1, j], torch.cos(angle)) and torch.allclose(cos[0, 1, j + 8], torch.cos(angle))
        assert torch.allclose(sin[0, 1, j], torch.sin(angle))


@pytest.mark.parametrize("with_images", [False, True])
def test_text_only_and_image_rows(with_images):
    ids = torch.tensor([[1, 2, 3, 4]])
    image_grid = None
    if with_images:
        start, pad = QWEN_SPECIAL_IDS["vision_start"], QWEN_SPECIAL_IDS["image_pad"]
        ids = torch.tensor([[1, start, pad, pad, QWEN_SPECIAL_IDS["vision_end"], 7]])
        image_grid = torch.tensor([[1, 2, 4]])
    positions, _ = reference_rope_index(
        ids, image_grid_thw=image_grid, video_grid_thw=None, second_per_grid_ts=None, attention_mask=None,
        merge_size=2, tokens_per_second=2, vision_start_id=QWEN_SPECIAL_IDS["vision_start"],
        image_id=QWEN_SPECIAL_IDS["image_pad"], video_id=QWEN_SPECIAL_IDS["video_pad"])
    if with_images:
        assert positions[:, 0].tolist() == [[0, 1, 2, 2, 4, 5], [0, 1, 2, 2, 4, 5], [0, 1, 2, 3, 4, 5]]
    else:
        assert positions[:, 0].tolist() == [[0, 1, 2, 3]] * 3
