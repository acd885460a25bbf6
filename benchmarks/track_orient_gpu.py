"""SAM2 mask propagation and Orient Anything throughput with random weights. Prints one JSON object.

Random weights of the public sizes (SAM2.1 Hiera-L from the sam2 package's bundled config;
Orient Anything = DINOv2-L + the 722-output head) are written to a temporary weights folder,
then the backends run on a synthetic clip: SAM2 propagates the ground-truth boxes of frame 0
(the detector is skipped: user boxes), Orient Anything orients every visible agent.
Frames/s of each, and peak CUDA memory. ``--tiny`` uses the test suite's tiny models instead
(a CPU smoke run).

    python benchmarks/track_orient_gpu.py                       # on a CUDA machine, 32 frames
    python benchmarks/track_orient_gpu.py --tiny --device cpu --frames 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny-weight writers

from recon4d.orient.orient_anything.orienter import OrientAnythingOrienter  # noqa: E402
from recon4d.settings import quiet_library_progress  # noqa: E402
from recon4d.store import open_scene  # noqa: E402
from recon4d.synth.scene import SynthConfig, write_synthetic  # noqa: E402
from recon4d.tracking.sam2.tracker import Sam2Tracker  # noqa: E402
from recon4d.video import read_clip  # noqa: E402

DINOV2_LARGE = {"model_type": "dinov2", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                "mlp_ratio": 4, "patch_size": 14, "image_size": 518, "layerscale_value": 1.0, "qkv_bias": True,
                "layer_norm_eps": 1e-6, "hidden_act": "gelu", "use_swiglu_ffn": False, "num_channels": 3}


def write_random_sam2_large(directory: Path) -> None:
    import sam2
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.load(Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_l.yaml")
    directory.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"model": instantiate(config.model, _recursive_=True).state_dict()},
               directory / "sam2.1_hiera_large.pt")


def write_random_orient_anything_large(directory: Path) -> None:
    from transformers import Dinov2Config

    from recon4d.orient.orient_anything.model import OrientAnythingNet, to_public_names

    (directory / "dinov2").mkdir(parents=True)
    (directory / "dinov2" / "config.json").write_text(json.dumps(DINOV2_LARGE))
    torch.manual_seed(0)
    model = OrientAnythingNet(Dinov2Config.from_dict(DINOV2_LARGE), 722)
    torch.save(to_public_names(model.state_dict()), directory / "dino_weight.pt")


def timed(call, device: str):
    on_cuda = device.startswith("cuda")
    if on_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = call()
    if on_cuda:
        torch.cuda.synchronize()
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_cuda else None
    return result, time.perf_counter() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    quiet_library_progress()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "weights"
        if args.tiny:
            from tests.orient.tiny_orient_anything import write_tiny_orient_anything
            from tests.tracking.tiny_sam2 import write_tiny_sam2

            write_tiny_sam2(weights / "sam2")
            write_tiny_orient_anything(weights / "orient-anything")
        else:
            write_random_sam2_large(weights / "sam2")
            write_random_orient_anything_large(weights / "orient-anything")
        paths = write_synthetic(tmp / "synth", SynthConfig(seed=0, n_frames=args.frames, width=640, height=360))
        clip = read_clip(paths.video, n_frames=args.frames)
        scene = open_scene(paths.scene)
        first = np.flatnonzero(scene.visible[:, 0])
        boxes = [{"category": scene.categories[k], "is_agent": bool(scene.is_agent[k]), "frame": 0,
                  "box": [float(v) for v in scene.box_xyxy[k, 0]]} for k in first]
        tracker = Sam2Tracker.from_config({"boxes": boxes}, args.device, weights)
        tracker.predictor()  # load outside the timing
        _, warm_s, _ = timed(lambda: tracker.track(clip), args.device)
        tracks, track_s, track_peak = timed(lambda: tracker.track(clip), args.device)
        orienter = OrientAnythingOrienter.from_config({"conf_threshold": 0.0}, args.device, weights)
        orienter.orient(clip, tracks)
        orientations, orient_s, orient_peak = timed(lambda: orienter.orient(clip, tracks), args.device)
    crops = int((tracks.visible & tracks.is_agent[:, None]).sum())
    print(json.dumps({
        "benchmark": "track_orient_gpu", "device": torch.cuda.get_device_name() if args.device.startswith("cuda")
        else "cpu", "weights": "tiny random" if args.tiny else "random, public sizes (SAM2.1 Hiera-L, DINOv2-L)",
        "frames": args.frames, "clip_size": f"{clip.image_size[0]}x{clip.image_size[1]}", "objects": len(first),
        "sam2": {"seconds": round(track_s, 3), "frames_per_s": round(args.frames / track_s, 2),
                 "first_run_seconds": round(warm_s, 3), "peak_memory_gib": track_peak},
        "orient_anything": {"seconds": round(orient_s, 3), "agent_crops": crops,
                            "crops_per_s": round(crops / orient_s, 2) if orient_s > 0 else None,
                            "peak_memory_gib": orient_peak,
                            "finite": bool(np.isfinite(orientations.angles_deg).any() or crops == 0)},
    }, indent=2))


if __name__ == "__main__":
    main()
