"""Cost of the geometry modules: forward/backward time per fusion mode. Prints one JSON object.

CPU part: the golden's tiny configuration (text 64-d × 2, ViT 32-d × 2, the real 1024-wide DINOv2
at depth 2 and the real 8192-wide spatial merger; ~113 M parameters), random weights, one sample
of 6 frames at 56×84 and a ~95-token prompt, train mode; median seconds of forward (with loss)
and of backward for "none", "add", "gsm", "geosr".

GPU part (only when CUDA is present, else ``"gpu": "pending: no CUDA device"``): the Qwen2.5-VL-7B
sized model per mode, random initialisation, bf16, SDPA, eval, one sample of 32 frames at 448×448
(4096 visual tokens) and the DSR evaluation prompt length; median forward latency and the
overhead over plain Qwen (targets: GSM ≤ +5 %; the GeoSR paper reports +11 % for GeoSR).

    python benchmarks/vlm_forward.py
    python benchmarks/vlm_forward.py --gpu-device cpu --gpu-size micro --gpu-frames 4 --gpu-side 56  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import zlib

import numpy as np
import torch

from recon4d.vlm import FUSIONS, GeometryQwen2_5_VL, micro_config, qwen2_5_vl_7b_config, tiny_config
from recon4d.vlm.configuration import GeometryConfig
from recon4d.vlm.processing import GeometryProcessor, collate

QUESTION = ("<video>\nThese are the frames of a video. Select the best answer to the following multiple-choice "
            "question based on the video. Respond with only the letter (A, B, C, or D) of the correct option.\n"
            "Question: From the camera's view at the start, how does the red car move relative to the dog?\n"
            "A. left\nB. right\nC. towards\nD. away\nAnswer: ")
CONFIGS = {"tiny": tiny_config, "micro": micro_config, "7b": qwen2_5_vl_7b_config}


def word_ids(limit: int):
    """A stand-in tokenizer (no download): one id per word or newline, below the special ids."""
    def tokenize(text: str) -> list[int]:
        words = text.replace("\n", " \n ").split(" ")
        return [10 if w == "\n" else 20 + zlib.crc32(w.encode()) % limit for w in words if w]
    return tokenize


def make_batch(config, n_frames: int, height: int, width: int, answer: str | None) -> dict:
    geometry = GeometryConfig.from_hf_config(config)
    limit = min(config.text_config.vocab_size, geometry.token_ids.endoftext) - 40
    processor = GeometryProcessor(word_ids(limit), geometry)
    frames = np.random.default_rng(0).integers(0, 256, (n_frames, height, width, 3), dtype=np.uint8)
    sample = processor.sample(QUESTION, [processor.video(frames)], [1.0], answer=answer)
    return collate([sample], pad_id=geometry.token_ids.endoftext)


def median_seconds(step, repeats: int, synchronize=lambda: None) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cpu_part(repeats: int) -> dict:
    modes = {}
    for fusion in FUSIONS:
        config = tiny_config(fusion)
        torch.manual_seed(0)
        model = GeometryQwen2_5_VL(config).train().freeze_encoders()
        batch = make_batch(config, 6, 56, 84, answer="A")
        forward_times, backward_times = [], []
        for index in range(repeats + 1):
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            loss = model(**batch).loss
            middle = time.perf_counter()
            loss.backward()
            ended = time.perf_counter()
            if index:  # the first step is a warm-up
                forward_times.append(middle - started)
                backward_times.append(ended - middle)
        modes[fusion] = {"forward_s": round(statistics.median(forward_times), 4),
                         "backward_s": round(statistics.median(backward_times), 4),
                         "sequence": int(batch["input_ids"].shape[1]),
                         "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}
        del model
    base = modes["none"]["forward_s"] + modes["none"]["backward_s"]
    for values in modes.values():
        values["step_vs_none"] = round((values["forward_s"] + values["backward_s"]) / base, 3)
    return {"config": "tiny (vlm_golden/config_tiny.json)", "threads": torch.get_num_threads(),
            "repeats": repeats, "modes": modes}


def gpu_part(device: str, size: str, n_frames: int, side: int, repeats: int) -> dict:
    on_cuda = device.startswith("cuda")
    synchronize = torch.cuda.synchronize if on_cuda else (lambda: None)
    dtype = torch.bfloat16 if on_cuda else torch.float32
    modes = {}
    for fusion in FUSIONS:
        config = CONFIGS[size](fusion)
        config._attn_implementation = "sdpa"
        torch.manual_seed(0)
        with torch.device(device):
            model = GeometryQwen2_5_VL._from_config(config, dtype=dtype).eval()
        batch = {k: v.to(device) for k, v in make_batch(config, n_frames, side, side, answer=None).items()}
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()

        def forward(model=model, batch=batch):
            with torch.inference_mode():
                model(**batch, logits_to_keep=1)

        seconds = median_seconds(forward, repeats, synchronize)
        modes[fusion] = {"forward_s": round(seconds, 4), "sequence": int(batch["input_ids"].shape[1]),
                         "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3)}
        if on_cuda:
            modes[fusion]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        del model, batch
        if on_cuda:
            torch.cuda.empty_cache()
    base = modes["none"]["forward_s"]
    for values in modes.values():
        values["overhead_vs_none"] = round(values["forward_s"] / base - 1.0, 4)
    device_name = torch.cuda.get_device_name(0) if on_cuda else platform.processor() or "cpu"
    return {"device": device_name, "size": size, "dtype": str(dtype).replace("torch.", ""), "frames": n_frames,
            "frame_size": f"{side}x{side}", "repeats": repeats, "modes": modes,
            "targets": {"gsm_overhead_max": 0.05, "paper_geosr_overhead": 0.11}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--gpu-device", default="cuda")
    parser.add_argument("--gpu-size", choices=sorted(CONFIGS), default="7b")
    parser.add_argument("--gpu-frames", type=int, default=32)
    parser.add_argument("--gpu-side", type=int, default=448)
    args = parser.parse_args()

    result = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                          "torch": torch.__version__}}
    if not args.skip_cpu:
        result["cpu"] = cpu_part(args.repeats)
    if args.gpu_device.startswith("cuda") and not torch.cuda.is_available():
        result["gpu"] = "pending: no CUDA device"
    else:
        result["gpu"] = gpu_part(args.gpu_device, args.gpu_size, args.gpu_frames, args.gpu_side, args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
