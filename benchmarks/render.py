"""Headless render time of `recon4d view --screenshot` (through the render worker). Prints one JSON object.

A synthetic scene (48 frames, 640×360) is written first, not timed; then ``render_image`` is
called for --renders frames at 640×360 alternating RGB and object colours. The first call
also starts the worker process; it is reported separately.

    python benchmarks/render.py [--renders 12]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic
from recon4d.viz.viewer import render_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene = open_scene(write_synthetic(Path(tmp), SynthConfig(seed=0, n_frames=48, width=640, height=360)).scene)
        seconds = []
        for i in range(args.renders + 1):
            started = time.perf_counter()
            image = render_image(scene, frame=i % scene.n_frames, size=(640, 360),
                                 color_by="rgb" if i % 2 else "object")
            seconds.append(time.perf_counter() - started)
            assert image.shape == (360, 640, 3)
    warm = np.array(seconds[1:])
    print(json.dumps({"benchmark": "render", "size": "640x360", "renders": args.renders,
                      "first_call_s": round(seconds[0], 3), "median_s": round(float(np.median(warm)), 3),
                      "max_s": round(float(warm.max()), 3)}, indent=2))


if __name__ == "__main__":
    main()
