"""Qwen3-VL as the second base: the same fusion switch, forward/backward, batches, positions, loading."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.vlm.conftest import procedural_weights, random_frames, torch, word_tokenizer

from recon4d.vlm import FUSIONS, GeometryQwen3VL, qwen3_vl_micro_config  # noqa: E402
from recon4d.vlm.configuration import GeometryConfig, attach_geometry  # noqa: E402
from recon4d.vlm.processing import GeometryProcessor, collate  # noqa: E402

NEW_MODULES = {
    "none": (),
    "add": ("spatial_merger",),
    "gsm": ("spatial_merger", "q_former_queries", "q_former_1", "q_former_2", "q_former_norm"),
    "geosr": ("spatial_merger", "q_former_queries", "q_former_1", "q_former_2", "q_former_norm", "geometry_q_norm",
              "geometry_kv_norm", "geometry_kv_attn", "gated_fusion_norm_visual", "gated_fusion_norm_geometry",
              "gated_fusion_proj"),
}
SIZES = ((64, 64), (64, 96))


def qwen3_batch(fusion: str, config=None, train: bool = True, padding_side: str = "right", n_frames: int = 4):
    """Two samples of different frame sizes (64×64 and 64×96: multiples of 32, so no resize)."""
    config = config or qwen3_vl_micro_config(fusion)
    geometry = GeometryConfig.from_hf_config(config)
    processor = GeometryProcessor(word_tokenizer(config.text_config.vocab_size), geometry, base="qwen3_vl",
                                  min_pixels=64 * 64, max_pixels=n_frames * 64 * 96)
    samples = []
    for i, (height, width) in enumerate(SIZES):
        video = processor.video(random_frames(n_frames, height, width, seed=i))
        samples.append(processor.sample(f"<video>\nquestion {i} about the red cube\nA left\nB right", [video],
                                        [1.0 + 0.5 * i], answer="AB"[i] if train else None))
    return config, samples, collate(samples, pad_id=geometry.token_ids.endoftext, padding_side=padding_side)


def build3(config, rule: str | None = "normone"):
    from transformers.initialization import no_init_weights

    if rule is None:
        return GeometryQwen3VL(config).eval()
    with no_init_weights():
        model = GeometryQwen3VL(config)
    model.load_state_dict(procedural_weights(model, rule), strict=True)
    return model.eval()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_qwen3_forward_backward_reaches_new_modules_not_frozen_encoders(fusion):
    config, _, batch = qwen3_batch(fusion)
    model = build3(config, None).train().freeze_encoders()
    out = model(**batch)
    assert out.logits.shape == (*batch["input_ids"].shape, config.text_config.vocab_size)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    for name in NEW_MODULES[fusion]:
        touched = [n for n in grads if n.startswith(f"model.visual.{name}")]
        assert touched, name
        for n in touched:
            assert grads[n] is not None and bool(grads[n].abs().sum() > 0), n
    for prefix in ("model.visual.spatial_encoder.", "model.visual.blocks.", "model.visual.patch_embed.",
                   "model.visual.pos_embed."):
        assert all(grads[n] is None for n in grads if n.startswith(prefix)), prefix
    # Qwen3-VL's mergers (final and DeepStack) train like Qwen2.5-VL's merger.
    assert grads["model.visual.merger.linear_fc1.weight"] is not None
    assert grads["model.visual.deepstack_merger_list.0.linear_fc1.weight"] is not None
    assert grads["model.language_model.layers.0.mlp.up_proj.weight"] is not None


def test_qwen3_layout_has_one_span_per_grid_and_gsm_slots_after_the_last():
    config, samples, gsm = qwen3_batch("gsm")
    _, _, plain = qwen3_batch("none")
    ids = config.geometry["token_ids"]
    assert gsm["input_ids"].shape[1] == plain["input_ids"].shape[1] + 32
    for row, grid in enumerate(gsm["video_grid_thw"].tolist()):
        tokens = torch.tensor(samples[row].input_ids)
        assert int((tokens == ids["vision_start"]).sum()) == grid[0]
    model = build3(config, None)
    runs = model.expected_runs(gsm["video_grid_thw"])
    assert runs == [4, 4 + 32, 6, 6 + 32]
    slots = model.gsm_slot_mask(gsm["input_ids"], gsm["video_grid_thw"])
    assert slots.sum(1).tolist() == [32, 32]


def test_qwen3_positions_treat_gsm_slots_as_text():
    config, _, gsm = qwen3_batch("gsm")
    _, _, plain = qwen3_batch("none")
    model, stock = build3(config, None), build3(qwen3_vl_micro_config("none"), None)
    video_id = config.video_token_id
    for row in range(2):
        ids, mask = gsm["input_ids"][row:row + 1], gsm["attention_mask"][row:row + 1]
        ours, deltas = model.get_rope_index(ids, video_grid_thw=gsm["video_grid_thw"][row:row + 1], attention_mask=mask)
        slots = model.gsm_slot_mask(ids, gsm["video_grid_thw"][row:row + 1])[0]
        where = torch.nonzero(slots).flatten()
        first = int(where[0])
        # Text-like: equal on the three axes, consecutive, starting where text after the frame would.
        block = ours[:, 0, first - 1]  # the last visual token of the last grid
        grid_h, grid_w = (gsm["video_grid_thw"][row, 1:] // 2).tolist()
        start = int(ours[0, 0, first - grid_h * grid_w])  # the block's temporal = start position
        expected = torch.arange(32) + start + max(grid_h, grid_w)
        for axis in range(3):
            assert torch.equal(ours[axis, 0, where], expected), axis
        assert int(block[1]) == start + grid_h - 1 and int(block[2]) == start + grid_w - 1
        # Without the slots, the positions are transformers' Qwen3-VL rule on the plain prompt, the text
        # after the slots shifted by 32.
        plain_ids = plain["input_ids"][row:row + 1]
        plain_mask = plain["attention_mask"][row:row + 1]
        reference, _ = stock.model.get_rope_index(
            plain_ids, (plain_ids == video_id).int() * 2, video_grid_thw=plain["video_grid_thw"][row:row + 1],
            attention_mask=plain_mask)
        kept = ~slots & mask[0].bool()
        n = int(plain_mask.sum())
        shifted = reference[:, 0, :n].clone()
        after = torch.arange(n) >= first
        shifted[:, after] += 32
        assert torch.equal(ours[:, 0, kept], shifted)
        assert int(deltas[0, 0]) == int(ours.max()) + 1 - ids.shape[1]


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_qwen3_batch_equals_concatenated_single_samples(fusion, padding_side):
    config, samples, batch = qwen3_batch(fusion, padding_side=padding_side)
    model = build3(config)
    if fusion == "geosr":
        geometry = replace(GeometryConfig.from_hf_config(config), mask_probability=1.0)
        model = build3(attach_geometry(config, geometry)).train()
    pad = model.geometry.token_ids.endoftext
    with torch.no_grad():
        together = model(**batch)
        tokens, weighted = 0, 0.0
        for row, sample in enumerate(samples):
            alone = model(**collate([sample], pad_id=pad))
            valid = batch["attention_mask"][row].bool()
            error = (together.logits[row][valid] - alone.logits[0]).abs().max()
            assert float(error) < 1e-5, (row, float(error))
            n = sum(label != -100 for label in sample.labels[1:])
            tokens += n
            weighted += float(alone.loss) * n
    assert abs(float(together.loss) - weighted / tokens) < 1e-5


def test_qwen3_geosr_masks_only_in_training():
    config = qwen3_vl_micro_config("geosr")
    config = attach_geometry(config, replace(GeometryConfig.from_hf_config(config), mask_probability=1.0))
    _, _, batch = qwen3_batch("geosr", config)
    model = build3(config)
    embeds = model.get_input_embeddings()(batch["input_ids"])
    args = (batch["input_ids"], embeds, batch["pixel_values_videos"], batch["video_grid_thw"],
            batch["second_per_grid_ts"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        evaluated = model.eval().encode_videos(*args)
        trained = model.train().encode_videos(*args)
    assert evaluated.keep == (None, None)
    assert [int((~keep).sum()) for keep in trained.keep] == [-(-4 * 8 // 5), -(-4 * 12 // 5)]  # ceil(0.8 N)
    assert not torch.equal(evaluated.embeds, trained.embeds)


def test_qwen3_encoder_sees_resized_frames_one_patch_per_qwen_patch():
    config, _, batch = qwen3_batch("add")
    tower = build3(config, None).model.visual
    grid = batch["video_grid_thw"][1]
    chunk = batch["pixel_values_videos"][int(batch["video_grid_thw"][0].prod()):]
    frames = tower.encoder_frames(chunk, grid)
    t, h, w = grid.tolist()
    assert frames.shape == (2 * t, 3, 14 * h, 14 * w)
    # The rebuilt 16-px frames are the processor's normalised input (64×96 needs no resize).
    from recon4d.vlm.geometry_tokens import frames_from_patches

    rebuilt = frames_from_patches(chunk, grid, 16)
    original = torch.from_numpy(random_frames(4, 64, 96, seed=1)).permute(0, 3, 1, 2).float() / 255
    assert float((rebuilt - (original - 0.5) / 0.5).abs().max()) < 1e-5
    resized = torch.nn.functional.interpolate(rebuilt, size=(14 * h, 14 * w), mode="bilinear", antialias=True)
    assert torch.equal(frames, resized)
    features = tower.encoder_features(batch["pixel_values_videos"], batch["video_grid_thw"])
    assert [f.shape for f in features] == [(8, 8 * 64), (12, 8 * 64)]


def test_qwen3_interleaved_rope_tables_match_transformers():
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    from recon4d.vlm.positions import mrope_cos_sin, rope_inv_freq

    config = qwen3_vl_micro_config("gsm").text_config
    positions = torch.stack([torch.arange(20), torch.arange(20) // 3, torch.arange(20) % 5]).view(3, 1, 20)
    cos, sin = Qwen3VLTextRotaryEmbedding(config)(torch.zeros(1, dtype=torch.float32), positions)
    ours = mrope_cos_sin(positions, rope_inv_freq(8, config.rope_parameters["rope_theta"]),
                         config.rope_parameters["mrope_section"], torch.float32, interleaved=True)
    assert float((ours[0] - cos).abs().max()) < 1e-6 and float((ours[1] - sin).abs().max()) < 1e-6


@pytest.mark.parametrize("fusion", ["gsm", "geosr"])
def test_qwen3_stock_base_loads_initialised_and_round_trips(tmp_path, fusion):
    from transformers import Qwen3VLForConditionalGeneration

    stock = Qwen3VLForConditionalGeneration(qwen3_vl_micro_config("none"))
    stock.save_pretrained(tmp_path / "base")
    model = GeometryQwen3VL.from_pretrained(tmp_path / "base", fusion=fusion)
    assert "Q-Formers" in model.initialised_groups
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert torch.equal(model.lm_head.weight, stock.lm_head.weight)
    visual = model.model.visual
    assert torch.equal(visual.q_former_norm.weight, torch.ones_like(visual.q_former_norm.weight))
    model.save_pretrained(tmp_path / "ours")
    again = GeometryQwen3VL.from_pretrained(tmp_path / "ours")
    assert again.geometry == model.geometry and again.initialised_groups == ()
    theirs = again.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, theirs[key]), key


def test_qwen3_generate_continues_the_prompt_positions():
    config, _, batch = qwen3_batch("gsm", train=False, padding_side="left")
    model = build3(config)
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        for _ in range(3):  # greedy without a cache: full recomputation of the positions each step
            logits = model(**{**batch, "input_ids": ids, "attention_mask": mask}).logits[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    assert torch.equal(generated, ids)
