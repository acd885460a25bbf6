"""Checkpoint compatibility: the released 7B layout, 4.51-style folders, round trips, stock bases, π³."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.vlm.conftest import build, micro_batch, torch

from recon4d.vlm import GeometryQwen2_5_VL, VLMConfigError, micro_config, qwen2_5_vl_7b_config, tiny_config  # noqa: E402
from recon4d.vlm.configuration import GeometryConfig  # noqa: E402
from recon4d.vlm.checkpoint import checkpoint_keys, model_key, released_key  # noqa: E402

safetensors_torch = pytest.importorskip("safetensors.torch")


@pytest.mark.parametrize(("name", "fusion", "n_keys"), [("dsr_gsm", "gsm", 1109), ("geosr", "geosr", 1121)])
def test_7b_layout_equals_the_released_manifest(vlm_golden, name, fusion, n_keys):
    manifest = json.loads((vlm_golden / "manifest_7b.json").read_text())[name]
    with torch.device("meta"):
        model = GeometryQwen2_5_VL(qwen2_5_vl_7b_config(fusion))
    ours = {released_key(key): list(tensor.shape) for key, tensor in model.state_dict().items()}
    expected = manifest["all_keys_shapes"]
    assert len(expected) == n_keys == manifest["n_keys"]
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {key: shape for key, shape in ours.items() if expected[key] != shape} == {}
    assert sum(t.numel() for t in model.state_dict().values()) == manifest["total"]


def test_key_renaming_is_a_bijection():
    for released in ("visual.q_former_queries", "visual.blocks.0.attn.qkv.weight", "model.layers.3.mlp.up_proj.weight",
                     "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
        assert released_key(model_key(released)) == released
    assert model_key("visual.spatial_merger.ln_q.weight") == "model.visual.spatial_merger.ln_q.weight"
    assert model_key("model.norm.weight") == "model.language_model.norm.weight"


def comparable(sub_config) -> dict:
    """A sub-config as a dict without what differs only in form (dtype, the legacy rope ``type`` key)."""
    values = {k: v for k, v in sub_config.to_dict().items() if k not in ("dtype", "transformers_version")}
    if values.get("rope_parameters"):
        values["rope_parameters"] = {k: v for k, v in values["rope_parameters"].items() if k != "type"}
    return values


def write_released_folder(folder, config, state: dict) -> None:
    """A transformers-4.51-style checkpoint folder: flat config.json, ``visual.*``/``model.*`` keys."""
    folder.mkdir(parents=True, exist_ok=True)
    flat = config.to_dict()
    text = flat.pop("text_config")
    flat.pop("geometry", None)
    flat.update({k: v for k, v in text.items() if k not in ("model_type", "layer_types")})
    flat["rope_scaling"] = {"type": "mrope", "mrope_section": text["rope_parameters"]["mrope_section"]}
    flat["rope_theta"] = text["rope_parameters"]["rope_theta"]
    flat["vision_config"]["model_type"] = "qwen2_5_vl"
    flat["architectures"] = ["Qwen2_5_VLForConditionalGeneration_Spatial"]
    flat["transformers_version"] = "4.51.0"
    (folder / "config.json").write_text(json.dumps(flat))
    safetensors_torch.save_file({released_key(k): v.contiguous() for k, v in state.items()},
                                str(folder / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize("fusion", ["gsm", "geosr"])
def test_released_folder_loads_and_round_trips_losslessly(tmp_path, fusion):
    config = micro_config(fusion)
    reference = build(config, "normone")
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    write_released_folder(tmp_path / "released", config, state)

    loaded = GeometryQwen2_5_VL.from_pretrained(tmp_path / "released")  # fusion read from the tensor names
    assert loaded.geometry.fusion == fusion
    assert loaded.initialised_groups == ()
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {k: v.shape for k, v in state.items()}
    assert [k for k, v in loaded.state_dict().items() if not torch.equal(v, state[k])] == []

    loaded.save_pretrained(tmp_path / "resaved")
    assert checkpoint_keys(tmp_path / "resaved") == sorted(released_key(k) for k in state)
    again = GeometryQwen2_5_VL.from_pretrained(tmp_path / "resaved")
    assert again.geometry == loaded.geometry
    assert [k for k, v in again.state_dict().items() if not torch.equal(v, state[k])] == []

    _, _, batch = micro_batch(fusion)
    with torch.no_grad():
        assert torch.equal(again.eval()(**batch).logits, reference(**batch).logits)


@pytest.mark.slow
def test_tiny_released_folder_of_the_golden_layout(tmp_path, vlm_golden):
    """The golden's tiny 4.51 config.json and key list load as they are."""
    keys = [k for k, _ in json.loads((vlm_golden / "geosr_state_dict_keys.json").read_text())]
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text((vlm_golden / "config_tiny.json").read_text())
    model = build(tiny_config("geosr"))
    state = {released_key(k): v for k, v in model.state_dict().items()}
    assert sorted(state) == sorted(keys)
    safetensors_torch.save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    # A released config.json states no encoder size: fusion and sizes come from the tensors.
    geometry = GeometryConfig.from_hf_config(tiny_config("geosr"))
    loaded = GeometryQwen2_5_VL.from_pretrained(folder)
    assert comparable(loaded.config.text_config) == comparable(tiny_config().text_config)
    assert comparable(loaded.config.vision_config) == comparable(tiny_config().vision_config)
    assert loaded.geometry == geometry and loaded.initialised_groups == ()
    assert [k for k, v in loaded.state_dict().items() if not torch.equal(v, state[released_key(k)])] == []


@pytest.mark.parametrize("fusion", ["add", "gsm", "geosr"])
def test_stock_base_gets_finite_initialised_geometry_modules(tmp_path, fusion):
    from transformers import Qwen2_5_VLForConditionalGeneration

    stock_config = micro_config("none")
    del stock_config.geometry
    base = Qwen2_5_VLForConditionalGeneration(stock_config)
    base.save_pretrained(tmp_path / "base")
    # A stock base says nothing about the geometry modules: their sizes default to the released
    # model's (ViT-L encoder); the micro sizes are given here.
    geometry = GeometryConfig.from_hf_config(micro_config(fusion))
    with pytest.warns(UserWarning, match="from_pi3"):
        model = GeometryQwen2_5_VL.from_pretrained(tmp_path / "base", geometry=geometry)
    assert "geometry encoder" in model.initialised_groups
    bad = [k for k, v in model.state_dict().items() if not torch.isfinite(v).all()]
    assert bad == []
    visual = model.model.visual
    # Norm scales 1, linear biases 0, weights N(0, 0.02), queries N(0, 1) (VLM_FACTS §1.6).
    assert torch.equal(visual.spatial_merger.ln_q.weight, torch.ones_like(visual.spatial_merger.ln_q.weight))
    assert torch.equal(visual.spatial_merger.mlp[0].bias, torch.zeros_like(visual.spatial_merger.mlp[0].bias))
    assert 0.01 < float(visual.spatial_merger.mlp[0].weight.std()) < 0.03
    if fusion != "add":
        assert torch.equal(visual.q_former_norm.weight, torch.ones_like(visual.q_former_norm.weight))
        assert torch.equal(visual.q_former_1.norm1.weight, torch.ones_like(visual.q_former_1.norm1.weight))
        assert 0.8 < float(visual.q_former_queries.std()) < 1.2
    base_state = base.state_dict()
    assert all(torch.equal(v, base_state[k]) for k, v in model.state_dict().items() if k in base_state)
    _, _, batch = micro_batch(fusion)
    assert torch.isfinite(model(**batch).loss)


def test_from_pi3_imports_the_encoder_strictly(tmp_path):
    from recon4d.models.pi3 import Pi3, Pi3Config, procedural_state_dict

    model = build(micro_config("gsm"))
    geometry = model.geometry
    pi3 = Pi3(Pi3Config(width=geometry.encoder_width, encoder_depth=geometry.encoder_depth,
                        encoder_heads=geometry.encoder_heads, pos_embed_grid=geometry.encoder_pos_grid,
                        decoder_depth=2, decoder_heads=2, register_tokens=2, head_width=32, head_depth=1,
                        head_heads=2, camera_width=16))
    pi3_state = procedural_state_dict(pi3)
    safetensors_torch.save_file(pi3_state, str(tmp_path / "model.safetensors"))
    model.from_pi3(tmp_path / "model.safetensors")
    encoder = model.model.visual.spatial_encoder.state_dict()
    assert len(encoder) == len([k for k in pi3_state if k.startswith("encoder.")])
    assert all(torch.equal(v, pi3_state["encoder." + k]) for k, v in encoder.items())
    assert not any(p.requires_grad for p in model.model.visual.spatial_encoder.parameters())

    wrong = {k: v for k, v in pi3_state.items() if k != "encoder.norm.weight"}
    safetensors_torch.save_file(wrong, str(tmp_path / "broken.safetensors"))
    with pytest.raises(Exception, match="encoder.norm.weight|norm.weight"):
        model.from_pi3(tmp_path / "broken.safetensors")


def test_mismatched_checkpoints_raise_readable_errors(tmp_path):
    geosr = build(micro_config("geosr"), "strict")
    geosr.save_pretrained(tmp_path / "geosr")
    with pytest.raises(VLMConfigError, match="pass fusion='geosr'"):
        GeometryQwen2_5_VL.from_pretrained(tmp_path / "geosr", fusion="gsm")
    # A GSM checkpoint may seed a GeoSR model: the fusion modules are then initialised.
    gsm = build(micro_config("gsm"), "strict")
    gsm.save_pretrained(tmp_path / "gsm")
    seeded = GeometryQwen2_5_VL.from_pretrained(tmp_path / "gsm", fusion="geosr")
    assert seeded.initialised_groups == ("GeoSR fusion",)
    # Half a module group is an error, not a silent re-initialisation.
    state = safetensors_torch.load_file(str(tmp_path / "gsm" / "model.safetensors"))
    del state["visual.q_former_2.mlp.up_proj.weight"]
    safetensors_torch.save_file(state, str(tmp_path / "gsm" / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(VLMConfigError, match="only partly"):
        GeometryQwen2_5_VL.from_pretrained(tmp_path / "gsm")
    with pytest.raises(VLMConfigError, match="never downloads"):
        GeometryQwen2_5_VL.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")


def test_saved_config_carries_the_geometry_settings(tmp_path):
    model = build(micro_config("geosr"))
    model.save_pretrained(tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["geometry"]["fusion"] == "geosr" and saved["vision_config"]["spatial_patch_size"] == 14
    assert np.isclose(saved["geometry"]["clip_mean"][1], 0.4576275)
