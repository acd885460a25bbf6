"""DeepSpeed ZeRO on CPU (one process): recon4d's groups and rates are the ones DeepSpeed steps.

Each run is a subprocess: DeepSpeed initialises torch.distributed, which must not leak into the
other tests. The shipped configs carry no optimizer/scheduler block; one that does is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.vlm.train.conftest import REPO, tiny_config

pytest.importorskip("deepspeed")

SCRIPT = """
import json, sys
from pathlib import Path
from recon4d.vlm.train import train
from recon4d.vlm.train_config import apply_overrides
from tests.vlm.train.test_train import one_step_config
data, out, deepspeed, base = sys.argv[1:5]
config = apply_overrides(one_step_config(Path(data), Path(out), deepspeed=deepspeed), [f"model.base={base}"], Path())
result = train(config, echo=lambda _: None)
print("RESULT " + json.dumps({"engine": result.engine}))
"""


def run_deepspeed(qa_copy, tmp_path, name: str) -> dict:
    """Train one step from a saved micro checkpoint in a subprocess and measure the update here.

    Starting from a checkpoint folder (not a random size) makes the start weights the folder's under
    ZeRO-3 too, where the model is built partitioned (``deepspeed.zero.Init``) with another random
    initialisation; and a process that ran ZeRO-3 would load models partitioned, so the weights are
    read in this one.
    """
    from recon4d.vlm.train_config import ModelSettings
    from recon4d.vlm.trainable import build_model
    from tests.vlm.train.test_train import update_sizes, weights

    base = tmp_path / "base"
    build_model(ModelSettings(base="micro", fusion="gsm")).save_pretrained(base)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(qa_copy / "qa.jsonl"), str(tmp_path / "run"),
                           str(REPO / "configs" / "deepspeed" / name), str(base)], cwd=REPO, capture_output=True,
                          text=True, timeout=1200)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    sizes = update_sizes(weights(base), weights(tmp_path / "run" / "model"))
    # The geometry cache is keyed by the whole encoder's weights, also when ZeRO-3 splits them.
    from recon4d.vlm import GeometryQwen2_5_VL
    from recon4d.vlm.geometry_cache import encoder_fingerprint

    cache = qa_copy / "qa.jsonl.geometry-cache.zarr"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [encoder_fingerprint(GeometryQwen2_5_VL.from_pretrained(base))]
    return {**json.loads(lines[-1][len("RESULT "):]), **sizes}


def check_rates(sizes: dict) -> None:
    from tests.vlm.train.test_train import RATES

    assert sizes["frozen"] == 0.0
    for group, rate in RATES.items():
        assert sizes[group] == pytest.approx(rate, rel=0.05), (group, sizes)


@pytest.mark.slow
def test_zero2_steps_each_group_at_its_own_rate(qa_copy, tmp_path):
    sizes = run_deepspeed(qa_copy, tmp_path, "zero2.json")
    assert sizes.pop("engine") == "deepspeed zero-2"
    check_rates(sizes)
    assert (tmp_path / "run" / "checkpoints" / "step-0000001" / "pytorch_model").is_dir()  # a DeepSpeed checkpoint


@pytest.mark.slow
def test_zero3_offload_steps_each_group_at_its_own_rate(qa_copy, tmp_path):
    """ZeRO-3 with parameters and optimizer state on the CPU (DeepSpeed's CPU Adam, built on first use)."""
    sizes = run_deepspeed(qa_copy, tmp_path, "zero3_offload.json")
    assert sizes.pop("engine") == "deepspeed zero-3 offload"
    check_rates(sizes)


def test_shipped_configs_have_no_optimizer_block_and_one_that_has_is_refused(qa_copy, tmp_path):
    from recon4d.vlm.train import train
    from recon4d.vlm.train_config import ConfigError

    for name in ("zero2.json", "zero3.json", "zero3_offload.json"):
        data = json.loads((REPO / "configs" / "deepspeed" / name).read_text())
        assert "optimizer" not in data and "scheduler" not in data, name
    reference_like = json.loads((REPO / "configs" / "deepspeed" / "zero3_offload.json").read_text())
    reference_like["optimizer"] = {"type": "AdamW", "params": {"lr": "auto"}}
    (tmp_path / "ds.json").write_text(json.dumps(reference_like))
    config = tiny_config(qa_copy / "qa.jsonl", tmp_path / "run", run={"deepspeed": tmp_path / "ds.json"})
    with pytest.raises(ConfigError, match="optimizer block.*per-group rates"):
        train(config, echo=lambda _: None)
