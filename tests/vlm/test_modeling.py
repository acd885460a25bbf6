"""The four fusion modes on CPU: forward/backward, trainable parts, GeoSR masking, batches, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.vlm.conftest import build, micro_batch, torch

from recon4d.vlm import FUSIONS, GeometryQwen2_5_VL, VLMConfigError, micro_config  # noqa: E402
from recon4d.vlm.configuration import GeometryConfig, attach_geometry  # noqa: E402
from recon4d.vlm.processing import collate  # noqa: E402

NEW_MODULES = {
    "none": (),
    "add": ("spatial_merger",),
    "gsm": ("spatial_merger", "q_former_queries", "q_former_1", "q_former_2", "q_former_norm"),
    "geosr": ("spatial_merger", "q_former_queries", "q_former_1", "q_former_2", "q_former_norm", "geometry_q_norm",
              "geometry_kv_norm", "geometry_kv_attn", "gated_fusion_norm_visual", "gated_fusion_norm_geometry",
              "gated_fusion_proj"),
}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_forward_backward_reaches_new_modules_not_frozen_encoders(fusion):
    config, _, batch = micro_batch(fusion)
    model = build(config).train().freeze_encoders()
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
    for prefix in ("model.visual.spatial_encoder.", "model.visual.blocks.", "model.visual.patch_embed."):
        assert all(grads[n] is None for n in grads if n.startswith(prefix)), prefix
    assert grads["model.visual.merger.mlp.0.weight"] is not None  # Qwen's merger trains (reference recipe)
    assert grads["model.language_model.layers.0.mlp.up_proj.weight"] is not None
    assert grads["lm_head.weight"] is not None


def test_gsm_needs_its_slots_and_the_none_mode_does_not():
    config, _, gsm_batch = micro_batch("gsm")
    _, _, plain_batch = micro_batch("none")
    assert gsm_batch["input_ids"].shape[1] == plain_batch["input_ids"].shape[1] + 32
    with pytest.raises(VLMConfigError, match="GSM slots"):
        build(config)(**plain_batch)
    with pytest.raises(VLMConfigError, match="GSM slots"):
        build(micro_config("none"))(**gsm_batch)


def geosr_model(mask_probability: float):
    config = micro_config("geosr")
    geometry = replace(GeometryConfig.from_hf_config(config), mask_probability=mask_probability)
    return build(attach_geometry(config, geometry), "normone")


def encode(model, batch):
    embeds = model.get_input_embeddings()(batch["input_ids"])
    return model.encode_videos(batch["input_ids"], embeds, batch["pixel_values_videos"], batch["video_grid_thw"],
                               batch["second_per_grid_ts"], batch["attention_mask"], batch.get("labels"))


def test_geosr_masks_only_in_training_and_is_deterministic_in_eval():
    _, _, batch = micro_batch("geosr")
    model = geosr_model(mask_probability=1.0)
    with torch.no_grad():
        first, second = encode(model.eval(), batch), encode(model, batch)
        assert first.keep == (None, None) and torch.equal(first.embeds, second.embeds)
        assert torch.equal(model(**batch).logits, model(**batch).logits)
        trained = encode(model.train(), batch)
    for keep, scores in zip(trained.keep, trained.relevance):
        n = scores.shape[0]
        assert keep.shape == (n,) and int((~keep).sum()) == -(-4 * n // 5)  # ceil(0.8 N)
        assert scores[~keep].min() >= scores[keep].max()  # the most relevant tokens are the masked ones
    assert not torch.equal(trained.embeds, first.embeds)
    never = geosr_model(mask_probability=0.0).train()
    with torch.no_grad():
        assert encode(never, batch).keep == (None, None)


def test_geosr_mask_probability_is_per_sample():
    _, _, batch = micro_batch("geosr", questions=tuple(f"question {i}" for i in range(16)), answers=("A",) * 16)
    model = geosr_model(mask_probability=0.5).train()
    torch.manual_seed(0)
    with torch.no_grad():
        keeps = encode(model, batch).keep
    masked = sum(keep is not None for keep in keeps)
    assert 0 < masked < 16


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_batch_equals_concatenated_single_samples(fusion, padding_side):
    config, samples, batch = micro_batch(fusion, padding_side=padding_side)
    model = build(config, "normone")
    if fusion == "geosr":
        # Training-mode masking with β = 1 makes every sample's top-K mask act, deterministically.
        model = geosr_model(mask_probability=1.0).train()
    pad = model.geometry.token_ids.endoftext
    with torch.no_grad():
        together = model(**batch)
        tokens = 0
        weighted = 0.0
        for row, sample in enumerate(samples):
            alone = model(**collate([sample], pad_id=pad))
            valid = batch["attention_mask"][row].bool()
            error = (together.logits[row][valid] - alone.logits[0]).abs().max()
            assert float(error) < 1e-5, (row, float(error))
            n = sum(label != -100 for label in sample.labels[1:])
            tokens += n
            weighted += float(alone.loss) * n
    assert abs(float(together.loss) - weighted / tokens) < 1e-5


def test_bad_inputs_are_readable_errors():
    config, samples, batch = micro_batch("gsm")
    model = build(config)
    with pytest.raises(VLMConfigError, match="video spans"):
        model(**{**batch, "video_grid_thw": batch["video_grid_thw"][:1]})
    with pytest.raises(VLMConfigError, match="input_ids"):
        model(inputs_embeds=torch.zeros(1, 3, config.text_config.hidden_size),
              pixel_values_videos=batch["pixel_values_videos"], video_grid_thw=batch["video_grid_thw"])
    with pytest.raises(VLMConfigError, match="fusion must be one of"):
        GeometryConfig(fusion="concat")
    with pytest.raises(VLMConfigError, match="unknown geometry setting"):
        GeometryConfig.from_dict({"fusion": "gsm", "queries": 16})


def test_direct_construction_takes_fusion_from_the_config():
    model = GeometryQwen2_5_VL(micro_config("add"))
    assert model.geometry.fusion == "add"
    assert hasattr(model.model.visual, "spatial_merger") and not hasattr(model.model.visual, "q_former_1")
    assert all(torch.isfinite(p).all() for p in model.parameters())
