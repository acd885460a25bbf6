"""Training configuration: YAML sections, typed --set overrides, relative paths, errors that name the keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon4d.vlm.train_config import ConfigError, TrainConfig, apply_overrides, dump_yaml, from_mapping, load_config
from tests.vlm.train.conftest import REPO, TINY_YAML


def test_shipped_configs_load_and_paths_are_relative_to_the_file(tmp_path):
    tiny = load_config(TINY_YAML)
    assert (tiny.model.base, tiny.model.fusion, tiny.run.device, tiny.data.frames) == ("micro", "gsm", "cpu", 32)
    big = load_config(REPO / "configs" / "qwen2_5_vl_7b.yaml")
    assert big.run.deepspeed == str(REPO / "configs" / "deepspeed" / "zero3_offload.json")
    assert (big.optim.learning_rate, big.optim.merger_learning_rate, big.optim.geometry_learning_rate) == \
        (2e-7, 1e-6, 1e-6)
    assert big.model.base == "7b" and big.run.precision == "bf16" and big.run.gradient_checkpointing
    lora = load_config(REPO / "configs" / "qwen2_5_vl_7b_lora.yaml")
    assert lora.model.lora_rank == 64 and lora.run.deepspeed is None
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("data:\n  train: qa.jsonl\nrun:\n  output: runs/x\n")
    config = load_config(tmp_path / "sub" / "c.yaml", ["data.video_root=videos"], cwd=tmp_path)
    assert config.data.train == str(tmp_path / "sub" / "qa.jsonl")
    assert config.run.output == str(tmp_path / "sub" / "runs" / "x")
    assert config.data.video_root == str(tmp_path / "videos")  # --set paths: from the working folder
    again = from_mapping(__import__("yaml").safe_load(dump_yaml(config)))
    assert again == config


def test_overrides_are_typed():
    config = apply_overrides(TrainConfig(), ["optim.learning_rate=1e-5", "run.max_steps=7", "run.gradient_checkpointing=false",
                                             "run.report_to=[jsonl]", "model.fusion=geosr", "data.video_root=null"],
                             Path("/w"))
    assert config.optim.learning_rate == 1e-5 and config.run.max_steps == 7
    assert config.run.gradient_checkpointing is False and config.run.report_to == ("jsonl",)
    assert config.model.fusion == "geosr" and config.data.video_root is None
    assert apply_overrides(TrainConfig(), ["model.base=tiny"], Path("/w")).model.base == "tiny"  # a size, not a path
    assert apply_overrides(TrainConfig(), ["model.base=ckpt"], Path("/w")).model.base == "/w/ckpt"


@pytest.mark.parametrize("override, message", [
    ("optim.learnin_rate=1", "unknown key optim.learnin_rate; optim has .*learning_rate"),
    ("trainer.steps=1", "unknown section 'trainer'; the sections are model, data, optim, run"),
    ("run.max_steps=many", "run.max_steps must be a whole number"),
    ("run.gradient_checkpointing=maybe", "must be true or false"),
    ("run.batch_size", "expected section.key=value"),
    ("run.epochs=null", "cannot be empty"),
])
def test_bad_overrides_name_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [override], Path("/w"))


def test_unknown_yaml_keys_and_invalid_values(tmp_path):
    (tmp_path / "c.yaml").write_text("optim:\n  lr: 1.0\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key optim.lr"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        load_config(tmp_path / "d.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    config = apply_overrides(TrainConfig(), ["run.batch_size=0", "optim.schedule=linear", "model.fusion=sum"], tmp_path)
    with pytest.raises(ConfigError) as error:
        config.check()
    text = str(error.value)
    for piece in ("data.train is not set", "run.output is not set", "optim.schedule", "run.batch_size",
                  "model.fusion"):
        assert piece in text
