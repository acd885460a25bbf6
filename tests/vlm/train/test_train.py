"""Training on CPU: loss falls per fusion mode, per-group learning rates reach the update, resume ==
uninterrupted, the geometry cache gives the encoder's values and spares it, LoRA, bf16."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from recon4d.vlm import FUSIONS
from recon4d.vlm.optim import group_of, lr_factor, param_groups
from recon4d.vlm.train import epoch_order, train
from recon4d.vlm.train_config import ModelSettings, OptimSettings
from recon4d.vlm.trainable import build_model
from tests.vlm.train.conftest import tiny_config

RATES = {"llm": 1e-3, "merger": 1e-2, "geometry": 3e-3}


def weights(folder) -> dict:
    """The tensors of a saved model folder, in the transformers-5 layout of a built model."""
    from recon4d.vlm import GeometryQwen2_5_VL

    return {k: v.float() for k, v in GeometryQwen2_5_VL.from_pretrained(folder).state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("fusion", FUSIONS)
def test_loss_falls_in_30_steps(qa_copy, tmp_path, fusion, capsys):
    config = tiny_config(qa_copy / "qa.jsonl", tmp_path / "run", model={"fusion": fusion},
                         run={"max_steps": 30, "save_steps": 30})
    result = train(config, echo=lambda _: None)
    assert len(result.losses) == 30 and all(np.isfinite(result.losses))
    first, last = statistics.mean(result.losses[:5]), statistics.mean(result.losses[-5:])
    with capsys.disabled():
        print(f"\n[{fusion}: training loss {first:.4f} (mean of steps 1-5) -> {last:.4f} (steps 26-30)]")
    assert last < 0.75 * first, (fusion, result.losses)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31)) and rows[-1]["tokens_per_s"] > 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()


def test_groups_follow_the_reference_rule():
    model = build_model(ModelSettings(base="micro", fusion="geosr"))
    groups = {g["name"]: g for g in param_groups(model, OptimSettings(learning_rate=1, merger_learning_rate=2,
                                                                      geometry_learning_rate=3))}
    assert set(groups) == {"llm", "llm_no_decay", "merger", "merger_no_decay", "geometry", "geometry_no_decay"}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {key: {names[id(p)] for p in g["params"]} for key, g in groups.items()}
    assert "model.visual.merger.mlp.0.weight" in members["merger"]
    assert "model.visual.spatial_merger.ln_q.weight" in members["merger_no_decay"]
    assert "model.visual.q_former_queries" in members["geometry"]
    assert "model.visual.gated_fusion_proj.0.bias" in members["geometry_no_decay"]
    assert "lm_head.weight" in members["llm"] and "model.language_model.norm.weight" in members["llm_no_decay"]
    assert (groups["merger"]["lr"], groups["geometry"]["lr"], groups["llm_no_decay"]["weight_decay"]) == (2, 3, 0.0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set().union(*members.values()) == trainable
    assert not any(n.startswith(("model.visual.blocks.", "model.visual.spatial_encoder.")) for n in trainable)
    assert group_of("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight") == "llm"


def test_schedules():
    cosine = lr_factor(OptimSettings(schedule="cosine", warmup_ratio=0.1), 100)
    assert [cosine(s) for s in (0, 5, 10)] == [0.0, 0.5, 1.0]
    assert cosine(55) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    constant = lr_factor(OptimSettings(schedule="constant", warmup_steps=2), 100)
    assert [constant(s) for s in (0, 1, 2, 50)] == [0.0, 0.5, 1.0, 1.0]


def one_step_config(data, output, **run):
    return tiny_config(data, output, model={"fusion": "gsm"},
                       optim={"learning_rate": RATES["llm"], "merger_learning_rate": RATES["merger"],
                              "geometry_learning_rate": RATES["geometry"], "weight_decay": 0.0,
                              "adam_epsilon": 1e-20,  # |Δθ| = lr·|g|/(|g| + ε): tiny gradients must not shrink it
                              "warmup_steps": 0, "schedule": "constant"},
                       run={"max_steps": 1, "save_steps": 1, **run})


def update_sizes(before: dict, after: dict) -> dict:
    """Median |Δθ| of the changed elements per optimizer group, and the largest change of frozen tensors."""
    moved: dict[str, list] = {}
    frozen = 0.0
    for name, old in before.items():
        delta = (after[name] - old).abs().flatten()
        if name.startswith(("model.visual.blocks.", "model.visual.patch_embed.", "model.visual.spatial_encoder.")):
            frozen = max(frozen, float(delta.max()))
            continue
        moved.setdefault(group_of(name), []).append(delta[delta > 0])
    return {"frozen": frozen, **{k: float(torch.cat(v).median()) for k, v in moved.items()}}


def test_each_group_moves_by_its_own_learning_rate(qa_copy, tmp_path):
    """Adam's first step moves every element by ≈ lr (|m̂ / √v̂| = 1): the update sizes show the rate each
    group really got, not just what the param groups say."""
    config = one_step_config(qa_copy / "qa.jsonl", tmp_path / "run")
    before = {k: v.float() for k, v in build_model(config.model).state_dict().items()}
    assert train(config, echo=lambda _: None).engine == "plain"
    sizes = update_sizes(before, weights(tmp_path / "run" / "model"))
    assert sizes["frozen"] == 0.0
    for group, rate in RATES.items():
        assert sizes[group] == pytest.approx(rate, rel=0.05), (group, sizes)
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["lr"] == {"llm": 1e-3, "llm_no_decay": 1e-3, "merger": 1e-2, "merger_no_decay": 1e-2,
                         "geometry": 3e-3, "geometry_no_decay": 3e-3}


def test_interrupted_run_resumes_to_the_uninterrupted_result(qa_copy, tmp_path):
    """GeoSR (random masking) over 6 steps, checkpoint every 3: stopped after step 4, resumed with
    --resume, it ends with the losses and weights of a run that was never stopped."""
    def config(name):
        return tiny_config(qa_copy / "qa.jsonl", tmp_path / name, model={"fusion": "geosr"},
                           run={"max_steps": 6, "save_steps": 3, "save_total_limit": 0, "batch_size": 2})

    whole = train(config("whole"), echo=lambda _: None)

    def stop_after_4(done, total, row):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config("cut"), progress=stop_after_4, echo=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == ["step-0000003"]
    assert not (tmp_path / "cut" / "model").exists()
    resumed = train(config("cut"), resume="auto", echo=lambda _: None)
    assert resumed.start_step == 3
    np.testing.assert_allclose(resumed.losses, whole.losses[3:], rtol=1e-5, atol=1e-6)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    a, b = weights(tmp_path / "whole" / "model"), weights(tmp_path / "cut" / "model")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    # The data order is fixed by (seed, epoch) alone.
    np.testing.assert_array_equal(epoch_order(24, 0, 1), epoch_order(24, 0, 1))
    assert not np.array_equal(epoch_order(24, 0, 1), epoch_order(24, 0, 2))


def test_processes_opening_one_new_cache_at_once_all_use_it(tmp_path):
    """torchrun's ranks open the data's cache root at the same moment: none may fail or turn it off
    (a rank that raised here died before DDP's first broadcast, and the launch with it)."""
    import threading
    import warnings

    from recon4d.vlm.geometry_cache import GeometryCache

    failures, enabled = [], []

    def open_at(root, start):
        start.wait()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a cache turned off warns
                enabled.append(GeometryCache(root, "encoder").enabled)
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            failures.append(f"{type(exc).__name__}: {exc}")

    for n in range(40):
        start = threading.Barrier(4)
        threads = [threading.Thread(target=open_at, args=(tmp_path / f"c{n}.zarr", start)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    assert enabled == [True] * 160


def test_cached_geometry_features_equal_recomputed_and_spare_the_encoder(qa_copy, tmp_path):
    from recon4d.vlm.data import FrameConfig, load_items
    from recon4d.vlm.geometry_cache import GeometryCache, encoder_fingerprint
    from recon4d.vlm.processing import collate
    from recon4d.vlm.samples import SampleBuilder, SampleSettings
    from recon4d.vlm.tokenizer import ByteTokenizer

    model = build_model(ModelSettings(base="micro", fusion="gsm")).eval()
    geometry = model.geometry
    items = load_items(qa_copy / "qa.jsonl")
    builder = SampleBuilder(items, ByteTokenizer.for_model(512, geometry.token_ids).encode, geometry,
                            SampleSettings(FrameConfig(max_pixels=3136)))
    sample = builder(items.items[0])
    batch = collate([sample], pad_id=geometry.token_ids.endoftext)
    visual = model.model.visual
    with torch.no_grad():
        fresh = visual.encoder_features(batch["pixel_values_videos"], batch["video_grid_thw"])[0]
        cache = GeometryCache(tmp_path / "cache.zarr", encoder_fingerprint(model))
        key = sample.extra["view_keys"][0]
        assert cache.get(key, *fresh.shape) is None
        cache.put(key, fresh)
        stored = GeometryCache(tmp_path / "cache.zarr", encoder_fingerprint(model)).get(key, *fresh.shape)
        assert stored.dtype == fresh.dtype and torch.equal(stored, fresh)
        cache.put("bf16", fresh.to(torch.bfloat16))
        assert torch.equal(cache.get("bf16", *fresh.shape), fresh.to(torch.bfloat16))
        assert torch.equal(model(**batch).logits, model(**batch, geometry_features=[stored]).logits)
    # In training: epoch 1 runs the encoder once per distinct view, epoch 2 never.
    calls = []
    config = tiny_config(qa_copy / "qa.jsonl", tmp_path / "run", model={"fusion": "add"},
                         run={"epochs": 2, "max_steps": None, "batch_size": 4, "save_steps": 100})
    original = type(visual.spatial_encoder).forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    type(visual.spatial_encoder).forward = counting
    try:
        result = train(config, echo=lambda _: None)
    finally:
        type(visual.spatial_encoder).forward = original
    assert result.steps == 12 and result.cache["hits"] > 0
    from recon4d.vlm.train import frame_config

    trained = SampleBuilder(items, builder.processor.tokenize, geometry, SampleSettings(frame_config(config)))
    views = {trained(i).extra["view_keys"][0] for i in items.items}
    # the whole clip, and each direction prediction's clip cut before its answer
    last_frames = {min(47, int(i.visible_end_s * 12 + 1e-6)) if i.visible_end_s is not None else 47
                   for i in items.items}
    assert len(views) == len(last_frames)
    assert result.cache["writes"] == len(views)
    assert 0 < len(calls) <= 6  # epoch 1: one call per batch that missed; epoch 2: none
    assert result.cache["hits"] + result.cache["misses"] == 2 * 24


def test_lora_and_bf16_train_and_save_a_plain_model(qa_copy, tmp_path):
    config = tiny_config(qa_copy / "qa.jsonl", tmp_path / "run",
                         model={"lora_rank": 4, "lora_alpha": 8, "fusion": "geosr"},
                         run={"max_steps": 2, "precision": "bf16", "gradient_checkpointing": True})
    result = train(config, echo=lambda _: None)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    saved = weights(tmp_path / "run" / "model")
    assert not any("lora" in k for k in saved) and "model.visual.gated_fusion_proj.0.weight" in saved


@pytest.mark.slow
def test_two_processes_train_like_one_with_their_batch(qa_copy, tmp_path):
    """torchrun with 2 CPU processes × batch 1 sees the items one process × batch 2 sees, step by step."""
    import subprocess
    import sys

    from tests.vlm.train.conftest import REPO, TINY_YAML

    common = ["--data", str(qa_copy / "qa.jsonl"), "--set", "run.max_steps=3", "--set", "model.fusion=gsm"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "-m", "recon4d.cli.main", "train", str(TINY_YAML), "-o", str(tmp_path / "two"),
                           *common], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-20000:]  # enough to hold every rank's own traceback
    assert "engine: plain on cpu" in done.stderr and "2 process(es)" in done.stderr
    one = train(tiny_config(qa_copy / "qa.jsonl", tmp_path / "one", model={"fusion": "gsm"},
                            run={"max_steps": 3, "batch_size": 2}), echo=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([r["loss"] for r in rows], one.losses, rtol=1e-4)
    a, b = weights(tmp_path / "two" / "model"), weights(tmp_path / "one" / "model")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
