"""π³ throughput and peak memory with procedural weights (DESIGN §8). Prints one JSON object.

Runs the public-size network (or ``--tiny``) with the procedural weights on random frames:
32 frames at 518×294, then 16/64/128 frames at the default pixel budget for a 16:9 video
(672×378), each as one forward pass, bf16 autocast on CUDA. Reported per case: seconds of the
timed run (after one warm-up), frames/s, and peak allocated CUDA memory.

    python benchmarks/pi3_gpu.py                  # on a CUDA machine
    python benchmarks/pi3_gpu.py --tiny --device cpu --cases 4@518x294   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from recon4d.models.pi3 import Pi3, Pi3Config, procedural_state_dict

DEFAULT_CASES = ("32@518x294", "16@672x378", "64@672x378", "128@672x378")


def parse_case(text: str) -> tuple[int, int, int]:
    frames, _, size = text.partition("@")
    width, height = (int(v) for v in size.split("x"))
    return int(frames), width, height


def run_case(model: Pi3, n_frames: int, width: int, height: int, device: str, repeats: int) -> dict:
    imgs = torch.rand(1, n_frames, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    on_cuda = device.startswith("cuda")

    def forward():
        with torch.inference_mode(), torch.autocast("cuda" if on_cuda else "cpu", torch.bfloat16, enabled=on_cuda):
            out = model(imgs)
        if on_cuda:
            torch.cuda.synchronize()
        return out

    try:
        forward()  # warm-up: kernels chosen, memory pools grown
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for _ in range(repeats):
            out = forward()
        seconds = (time.perf_counter() - started) / repeats
    except torch.OutOfMemoryError:
        return {"frames": n_frames, "size": f"{width}x{height}", "error": "out of memory"}
    finite = bool(torch.isfinite(out["local_points"]).all())
    return {"frames": n_frames, "size": f"{width}x{height}", "seconds": round(seconds, 4),
            "frames_per_s": round(n_frames / seconds, 2),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_cuda else None,
            "outputs_finite": finite}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="Pi3Config.tiny() instead of the public sizes.")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), help="FRAMES@WIDTHxHEIGHT ...")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    config = Pi3Config.tiny() if args.tiny else Pi3Config()
    model = Pi3(config)
    model.load_state_dict(procedural_state_dict(model))
    model = model.to(args.device).eval()
    results = [run_case(model, *parse_case(case), args.device, args.repeats) for case in args.cases]
    print(json.dumps({
        "benchmark": "pi3_gpu", "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "config": "tiny" if args.tiny else "public", "dtype": "bf16 autocast" if args.device.startswith("cuda")
        else "float32", "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "torch": torch.__version__, "cases": results,
    }, indent=2))


if __name__ == "__main__":
    main()
