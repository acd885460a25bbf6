"""Training-step cost of the geometry-aware Qwen2.5-VL per fusion mode. Prints one JSON object.

GPU part (CUDA present): the Qwen2.5-VL-7B-sized model (GSM 9.16B / GeoSR 9.24B parameters), random
initialisation, bf16, SDPA, activation checkpointing, one sample of 32 frames at 448×448 (4,096
visual tokens) with the DSR training prompt, in two single-GPU setups:

* ``lora``: LoRA r=64 on the LLM (bf16 base, frozen), Qwen's merger and the geometry modules
  trained in full (fp32 master weights, bf16 autocast), torch AdamW;
* ``zero3_offload``: full fine-tune under DeepSpeed ZeRO-3 with parameters and optimizer state on
  the CPU (``configs/deepspeed/zero3_offload.json``, DeepSpeed's CPU Adam), as the reference trains.
  Host memory: fp32 master weights and Adam moments of the 8.2B trainable parameters (~98 GB) plus
  the bf16 parameters (~18.5 GB); a 128 GB host is at its limit.

For each (setup, fusion): median step time (forward + backward + optimizer step) after warm-up,
LLM tokens/s, model FLOPs per step and MFU against the card's dense bf16 peak, peak GPU memory.
Each runs in its own process (fresh memory statistics, DeepSpeed's process group). A setup that
does not fit reports its error instead of numbers. Target (issue 14): MFU ≥ 40 % for the full
fine-tune step.

Without CUDA, ``"gpu": "pending: no CUDA device"`` and a CPU smoke run of the same code on the
micro configuration (4 frames of 56×56), so the script is exercised wherever it runs:

    python benchmarks/vlm_train_gpu.py                       # GPU figures, or the CPU smoke run
    python benchmarks/vlm_train_gpu.py --smoke               # the CPU smoke run anywhere
    python benchmarks/vlm_train_gpu.py --setups lora --fusions none,gsm --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUPS = ("lora", "zero3_offload")
FUSIONS = ("none", "add", "gsm", "geosr")
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1, "4090": 165.2}
"""Dense bf16 tensor-core peaks (TFLOP/s) of common cards; --peak-tflops overrides."""
QUESTION = ("<video>\nBetween 0.4s and 3.6s, from the perspective of the camera at 0.4s, how does the distance between "
            "the person with initial bounding box coordinates [212, 80, 301, 390] and the dog with initial bounding "
            "box coordinates [402, 260, 520, 371] change?\nOptions:\nA (1) Keep nearly constant. (2) Become larger.\n"
            "B (1) Become smaller.\nC (1) Become larger. (2) Become smaller. (3) Keep nearly constant.\n"
            "D (1) Keep nearly constant.")


def word_ids(limit: int):
    """A stand-in tokenizer (no download): one id per word or newline, below the special ids."""
    def tokenize(text: str) -> list[int]:
        words = text.replace("\n", " \n ").split(" ")
        return [10 if w == "\n" else 20 + zlib.crc32(w.encode()) % limit for w in words if w]
    return tokenize


def make_batch(config, n_frames: int, side: int, device) -> dict:
    """One training sample: ``n_frames`` random frames of side × side, the prompt, answer "B"."""
    import numpy as np

    from recon4d.vlm.configuration import GeometryConfig
    from recon4d.vlm.processing import GeometryProcessor, collate

    geometry = GeometryConfig.from_hf_config(config)
    limit = min(config.text_config.vocab_size, geometry.token_ids.endoftext) - 40
    processor = GeometryProcessor(word_ids(limit), geometry, min_pixels=side * side, max_pixels=side * side)
    frames = np.random.default_rng(0).integers(0, 256, (n_frames, side, side, 3), dtype=np.uint8)
    sample = processor.sample(QUESTION, [processor.video(frames)], [0.25], answer="B")
    return {k: v.to(device) for k, v in collate([sample], pad_id=geometry.token_ids.endoftext).items()}


def model_flops(config, batch, lora_rank: int, full: bool) -> float:
    """Model FLOPs of one training step (forward + backward), counted per matrix multiply.

    A weight used on n tokens costs 2·n·params forward; backward 2·n·params for the input gradient
    when anything before it trains, plus 2·n·params for its own gradient when it trains. The Qwen
    ViT and the geometry encoder are frozen with nothing trainable before them: forward only.
    Attention scores/values add 4·n·context·width per layer forward (causal: context = n/2).
    Embedding look-ups and norms are not counted.
    """
    text, vision = config.text_config, config.vision_config
    geometry = config.geometry
    d, layers, vocab = text.hidden_size, text.num_hidden_layers, text.vocab_size
    kv = d * text.num_key_value_heads // text.num_attention_heads
    llm_matmul = layers * (d * d * 2 + d * kv * 2 + 3 * d * text.intermediate_size)
    n_llm = int(batch["attention_mask"].sum())
    t, h, w = (int(v) for v in batch["video_grid_thw"][0])
    patches, visual = t * h * w, t * h * w // 4
    llm_factor = 6 if full else 4  # LoRA: frozen LLM weights still pass input gradients back
    flops = llm_factor * n_llm * (llm_matmul + d * vocab)
    flops += 3 * layers * 4 * n_llm * (n_llm / 2) * d
    if lora_rank:
        lora = layers * lora_rank * ((d + d) * 2 + (d + kv) * 2 + 3 * (d + text.intermediate_size))
        flops += 6 * n_llm * lora
    vd, vi = vision.hidden_size, vision.intermediate_size
    flops += 2 * patches * vision.depth * (4 * vd * vd + 3 * vd * vi)  # frozen ViT, forward only
    window = (vision.window_size // vision.patch_size) ** 2
    full_layers = len(vision.fullatt_block_indexes)
    flops += 2 * 2 * patches * vd * ((vision.depth - full_layers) * window + full_layers * h * w)
    merger_in = vd * 4
    flops += 4 * visual * (merger_in * merger_in + merger_in * vision.out_hidden_size)  # merger: fwd + weight grad
    if geometry["fusion"] != "none":
        ew, depth = geometry["encoder_width"], geometry["encoder_depth"]
        frames, per_frame = 2 * t, h * w  # the encoder sees every frame: 2 per temporal grid
        flops += 2 * frames * per_frame * depth * 12 * ew * ew  # frozen, forward only
        flops += 2 * 2 * frames * depth * per_frame * per_frame * ew
        context = 8 * ew
        flops += 4 * visual * (context * context + context * d)  # spatial merger: forward + weight gradient
    if geometry["fusion"] in ("gsm", "geosr"):
        queries = geometry["num_queries"]
        text_tokens = n_llm - visual - queries
        for targets in (text_tokens, visual):  # Q-Former 1 over the prompt text, Q-Former 2 over the video
            matmul = queries * (2 * d * d + 3 * d * text.intermediate_size) + targets * 2 * d * kv
            flops += 6 * matmul + 3 * 4 * queries * targets * d
    if geometry["fusion"] == "geosr":
        # cross-attention 3 (queries from the N geometry tokens, keys/values from the 32 GSM tokens), gated fusion
        flops += 6 * (visual * 2 * d * d + queries * 2 * d * d + visual * 2 * d * d) + 3 * 4 * visual * queries * d
    return float(flops)


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


def one(setup: str, fusion: str, size: str, n_frames: int, side: int, steps: int, warmup: int,
        lora_rank: int) -> dict:
    """Measure one (setup, fusion) in this process."""
    import torch

    from recon4d.vlm import GeometryQwen2_5_VL, micro_config, qwen2_5_vl_7b_config, tiny_config
    from recon4d.vlm.optim import build_optimizer
    from recon4d.vlm.train_config import ModelSettings, OptimSettings
    from recon4d.vlm.trainable import add_lora, parameter_report, set_trainable

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    config = {"7b": qwen2_5_vl_7b_config, "tiny": tiny_config, "micro": micro_config}[size](fusion)
    settings = ModelSettings(base=size, fusion=fusion, lora_rank=lora_rank if setup == "lora" else 0,
                             lora_alpha=2.0 * lora_rank)
    optim = OptimSettings(learning_rate=1e-5, merger_learning_rate=1e-5, geometry_learning_rate=1e-5)
    torch.manual_seed(0)
    started = time.perf_counter()
    if setup == "lora":
        with torch.device(device):
            model = GeometryQwen2_5_VL(config)
        set_trainable(model, settings)
        for parameter in model.parameters():
            # bf16 frozen weights, fp32 trainable ones (the master copy AdamW updates).
            parameter.data = parameter.data.to(torch.float32 if parameter.requires_grad else torch.bfloat16)
        model = add_lora(model, settings)
        model.get_base_model().activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        optimizer = build_optimizer(model, optim)
        engine = None
    else:
        from accelerate import Accelerator, DeepSpeedPlugin

        from recon4d.settings import single_process_launch

        single_process_launch()
        plugin = DeepSpeedPlugin(hf_ds_config=json.loads((REPO / "configs/deepspeed/zero3_offload.json").read_text()),
                                 gradient_accumulation_steps=1, gradient_clipping=1.0)
        accelerator = Accelerator(mixed_precision="bf16", deepspeed_plugin=plugin)
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
        # Built in bf16 (DeepSpeed trains bf16 weights with fp32 master copies in the offloaded optimizer):
        # an fp32 build of the 7B model would need 37 GB of host memory on top of the optimizer state.
        torch.set_default_dtype(torch.bfloat16)
        model = GeometryQwen2_5_VL(config)
        torch.set_default_dtype(torch.float32)
        set_trainable(model, settings)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        optimizer = build_optimizer(model, optim, cpu_offload=True)
        engine, optimizer = accelerator.prepare(model, optimizer)
    report = {row.name: row for row in parameter_report(model if engine is None else engine.module)}
    build_s = time.perf_counter() - started
    batch = make_batch(config, n_frames, side, device)

    def step():
        if engine is None:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            loss = engine(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        return float(loss)

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for _ in range(steps):
        sync()
        begin = time.perf_counter()
        losses.append(step())
        sync()
        times.append(time.perf_counter() - begin)
    median = statistics.median(times)
    tokens = int(batch["attention_mask"].sum())
    flops = model_flops(config, batch, settings.lora_rank, full=setup != "lora")
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = peak_tflops(name, float(os.environ.get("PEAK_TFLOPS", 0)) or None) if cuda else None
    return {
        "setup": setup, "fusion": fusion, "parameters": report["total"].total,
        "trainable": report["total"].trainable, "llm_tokens": tokens,
        "visual_tokens": int(batch["video_grid_thw"].prod(-1).sum()) // 4, "frames": n_frames, "side": side,
        "step_s_median": median, "step_s_all": times, "tokens_per_s": tokens / median,
        "model_tflops_per_step": flops / 1e12,
        "mfu": None if peak is None else flops / median / (peak * 1e12),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
        "build_s": build_s, "loss": losses[-1], "device": name,
    }


def run_isolated(args, setup: str, fusion: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", setup, fusion, "--size", args.size,
               "--frames", str(args.frames), "--side", str(args.side), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--lora-rank", str(args.lora_rank)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"setup": setup, "fusion": fusion, "error": " | ".join(tail)[-600:]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU smoke run on the micro config.")
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--fusions", default=",".join(FUSIONS))
    parser.add_argument("--size", default=None, help="7b (GPU default), tiny or micro (smoke default).")
    parser.add_argument("--frames", type=int, default=None, help="Frames per video (32; smoke 4).")
    parser.add_argument("--side", type=int, default=None, help="Frame side in pixels (448; smoke 56).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps (5; smoke 2).")
    parser.add_argument("--warmup", type=int, default=None, help="Untimed steps first (2; smoke 1).")
    parser.add_argument("--lora-rank", type=int, default=64)
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds per (setup, fusion) process.")
    parser.add_argument("--one", nargs=2, metavar=("SETUP", "FUSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.smoke
    defaults = {"size": "7b", "frames": 32, "side": 448, "steps": 5, "warmup": 2} if cuda else \
        {"size": "micro", "frames": 4, "side": 56, "steps": 2, "warmup": 1}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.one:
        print(json.dumps(one(*args.one, args.size, args.frames, args.side, args.steps, args.warmup, args.lora_rank)))
        return
    rows = [run_isolated(args, setup, fusion) for setup in args.setups.split(",") for fusion in args.fusions.split(",")]
    out = {"benchmark": "vlm_train_gpu", "torch": torch.__version__,
           "settings": {k: getattr(args, k) for k in ("size", "frames", "side", "steps", "warmup", "lora_rank")}}
    if cuda:
        out["gpu"] = {"device": torch.cuda.get_device_name(), "runs": rows}
    else:
        out["gpu"] = "pending: no CUDA device" if not torch.cuda.is_available() else "skipped: --smoke"
        out["cpu_smoke"] = rows
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
