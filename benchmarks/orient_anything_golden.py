"""How far the orient-anything backend is from the public Orient Anything inference. Prints one JSON object.

Runs ``OrientAnythingOrienter.orient`` with the golden data's rule-B weights on its frame and four
masks (single path and TTA, 902- and 722-output heads; DINOv2-L on CPU, a few minutes) and
reports, per head, the largest differences from ``../shared/data/orient_anything_golden``: model
input tensors, CLS tokens, logits, confidences and TTA votes (max abs), squares, uint8 processor
pixels, argmax bins and decoded angles (count of differing elements), and the float64 network.
The tolerances the tests hold these to are in ``tests/orient/test_orient_anything_golden.py``.

    python benchmarks/orient_anything_golden.py [--data ../shared/data/orient_anything_golden]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' golden-run helpers

from recon4d.orient.orient_anything.orienter import (  # noqa: E402
    extract_crop,
    mask_bbox,
    normalise,
    processor_pixels,
    square_window,
)
from tests.orient.golden_orient_anything import HEADS, rule_b_models_both, run_golden  # noqa: E402


def max_abs(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def angle_gap(a, b) -> float:
    gap = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % 360.0
    return float(np.minimum(gap, 360.0 - gap).max())


def bins(logits: np.ndarray) -> np.ndarray:
    return np.stack([logits[:, :360].argmax(1), logits[:, 360:540].argmax(1), logits[:, 540:-2].argmax(1)], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "orient_anything_golden")
    args = parser.parse_args()
    inputs = dict(np.load(args.data / "inputs.npz"))
    golden = {n: dict(np.load(args.data / f"orient_golden_{n}.npz")) for n in HEADS}
    start = time.perf_counter()
    models = rule_b_models_both()
    runs = run_golden(models, inputs)
    report = {"torch_threads": torch.get_num_threads(), "shared_backbone_hits": runs["shared_hits"]}
    for n in HEADS:
        g, single, tta = golden[n], runs[n]["single"], runs[n]["tta"]
        squares = []
        for k, mask in enumerate(inputs["masks"]):
            bbox = mask_bbox(mask)
            square = extract_crop(inputs["frame"], square_window(bbox, 0.85), mask, (0, 0, 0), bbox)
            squares.append(int((square != g[f"square_{k}"][..., :3]).sum()) if square.shape[:2] ==
                           g[f"square_{k}"].shape[:2] else -1)
        processor = sum(int((processor_pixels(g[f"square_{k}"][..., :3]) != g["processor_u8"][k]).sum())
                        for k in range(4))
        tta_inputs = np.stack([np.stack([normalise(v) for v in g["tta_processor_u8"][k]]) for k in range(4)])
        entry = {
            "square_pixels_differing": squares,
            "processor_u8_differing": processor,
            "pixel_values_max_abs": max_abs(single["pixel_values"], g["pixel_values"][:, 0]),
            "cls_max_abs": max_abs(single["cls"], g["cls"]),
            "logits_max_abs": max_abs(single["logits"], g["logits"]),
            "argmax_bins_differing": int((bins(single["logits"]) != g["argmax_bins"]).sum()),
            "decoded_angles_differing": int((single["angles"][:, 0] != g["decoded"][:, :3]).sum()),
            "conf_max_abs": max_abs(single["conf"][:, 0], g["decoded"][:, 3]),
            "tta_pixel_values_max_abs": max(max_abs(tta[k]["pixel_values"], tta_inputs[k]) for k in range(4)),
            "tta_cls_max_abs": max(max_abs(tta[k]["cls"], g["tta_cls"][k]) for k in range(4)),
            "tta_logits_max_abs": max(max_abs(tta[k]["logits"], g["tta_logits"][k]) for k in range(4)),
            "tta_bins_differing": sum(int((bins(tta[k]["logits"]) != g["tta_bins"][k]).sum()) for k in range(4)),
            "tta_azimuth_max_deg": max(angle_gap(tta[k]["angles"][k, 0, 0], g["tta_decoded"][k, 0]) for k in range(4)),
            "tta_polar_max_deg": max(max_abs(tta[k]["angles"][k, 0, 1], g["tta_decoded"][k, 1]) for k in range(4)),
            "tta_rotation_vs_public_deg": [round(float(tta[k]["angles"][k, 0, 2] - g["tta_decoded"][k, 2]), 6)
                                           for k in range(4)],
            "tta_conf_max_abs": max(max_abs(tta[k]["conf"][k, 0], g["tta_decoded"][k, 3]) for k in range(4)),
        }
        if n == 902:
            entry["tta_rotation_vs_circular_alt_max_deg"] = max(
                angle_gap(tta[k]["angles"][k, 0, 2], g["tta_rotation_circular_alt"][k]) for k in range(4))
        report[str(n)] = entry
    pixel_values = torch.from_numpy(golden[902]["pixel_values"][:, 0]).double()
    models[902].double()
    models[722].down_sampler.double()
    with torch.no_grad():
        cls = models[902].cls_token(pixel_values)
        report["float64"] = {"cls_max_abs": max_abs(cls.numpy(), golden[902]["cls_f64"]),
                             **{f"logits_{n}_max_abs": max_abs(models[n].down_sampler(cls).numpy(),
                                                               golden[n]["logits_f64"]) for n in HEADS}}
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
