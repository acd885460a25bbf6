"""Configurations: the golden tiny config, the 7B sizes, geometry settings and their checks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from tests.vlm.conftest import torch
from tests.vlm.test_checkpoint import comparable

from recon4d.vlm import GeometryConfig, VLMConfigError, micro_config, qwen2_5_vl_7b_config, tiny_config  # noqa: E402
from recon4d.vlm.configuration import TokenIds, attach_geometry  # noqa: E402


def test_tiny_config_reproduces_the_golden_config(vlm_golden):
    from transformers import Qwen2_5_VLConfig

    golden = Qwen2_5_VLConfig.from_json_file(str(vlm_golden / "config_tiny.json"))
    ours = tiny_config("gsm")
    assert comparable(ours.text_config) == comparable(golden.text_config)
    assert comparable(ours.vision_config) == comparable(golden.vision_config)
    raw = json.loads((vlm_golden / "config_tiny.json").read_text())
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id",
                "tie_word_embeddings"):
        assert getattr(ours, key) == raw[key], key
    geometry = GeometryConfig.from_hf_config(ours)
    assert (geometry.encoder_width, geometry.encoder_depth, geometry.encoder_pos_grid) == (1024, 2, 4)
    assert geometry.token_ids == TokenIds() == TokenIds.from_hf_config(golden)


def test_7b_parameter_counts_per_component(vlm_golden):
    from recon4d.vlm import GeometryQwen2_5_VL

    counts = json.loads((vlm_golden / "manifest_7b.json").read_text())["geosr"]["param_counts"]
    with torch.device("meta"):
        model = GeometryQwen2_5_VL(qwen2_5_vl_7b_config("geosr"))
    visual = model.model.visual
    for name in ("spatial_encoder", "spatial_merger", "q_former_1", "q_former_2", "q_former_norm", "geometry_kv_attn",
                 "gated_fusion_proj"):
        assert sum(p.numel() for p in getattr(visual, name).parameters()) == counts[f"visual.{name}"], name
    assert sum(p.numel() for p in model.model.language_model.parameters()) == counts["llm"]


def test_geometry_settings_round_trip_and_released_fields():
    geometry = GeometryConfig(fusion="geosr", mask_fraction=0.6)
    assert GeometryConfig.from_dict(json.loads(json.dumps(geometry.to_dict()))) == geometry
    released = tiny_config("gsm")
    del released.geometry
    released.vision_mask_prob = 0.7
    released.vision_mask_apply_prob = 0.25
    read = GeometryConfig.from_hf_config(released, fusion="geosr")
    assert (read.fusion, read.mask_fraction, read.mask_probability) == ("geosr", 0.7, 0.25)
    del released.vision_mask_prob
    released.vision_mask_keep_prob = 0.1
    assert GeometryConfig.from_hf_config(released).mask_fraction == pytest.approx(0.9)
    assert GeometryConfig().gsm_slots == 32 and GeometryConfig(fusion="add").gsm_slots == 0


def test_inconsistent_sizes_are_refused():
    config = micro_config("gsm")
    with pytest.raises(VLMConfigError, match="patch"):
        attach_geometry(config, replace(GeometryConfig.from_hf_config(config), spatial_patch_size=16))
    config.text_config.rope_parameters["mrope_section"] = [2, 2, 2]
    with pytest.raises(VLMConfigError, match="mrope_section"):
        attach_geometry(config, GeometryConfig.from_hf_config(config))
    with pytest.raises(VLMConfigError, match="mask_fraction"):
        GeometryConfig(mask_fraction=1.5)


def test_importing_recon4d_vlm_loads_neither_torch_nor_transformers():
    code = ("import sys, recon4d, recon4d.vlm; "
            "print(any(m in sys.modules for m in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
