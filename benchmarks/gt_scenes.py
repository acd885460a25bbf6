"""Ground-truth synthetic scenes for the QA benchmarks, sampled as ``recon4d process`` samples.

Not a benchmark itself: ``qa_compile.py`` and ``qa_speed_units.py`` import it (they run as
scripts from this folder). A scene is rendered by ``recon4d.synth`` (small frames: the QA
compiler reads only poses, centres, boxes and orientations) and then sampled like
``recon4d process --frames 32`` samples a clip: 32 uniform frames of 40 at 10 fps, whose
gaps alternate 0.1 s and 0.2 s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from recon4d.synth.scene import SynthConfig, generate_scene
from recon4d.types import Scene, SourceInfo
from recon4d.video import sample_indices


def sampled_scene(scene: Scene, frames: np.ndarray) -> Scene:
    """The ground truth restricted to ``frames`` (sorted indices into its T axis), light arrays only."""
    frames = np.asarray(frames)
    return dataclasses.replace(
        scene,
        timestamps_s=scene.timestamps_s[frames],
        frame_index=scene.frame_index[frames],
        cam_to_world=scene.cam_to_world[frames],
        intrinsics=np.asarray(scene.intrinsics)[frames],
        visible=scene.visible[:, frames],
        box_xyxy=scene.box_xyxy[:, frames],
        center_world=scene.center_world[:, frames],
        orientation=scene.orientation[:, frames],
        orient_conf=scene.orient_conf[:, frames],
        extent=None if scene.extent is None else scene.extent[:, frames],
        local_points=None,
        conf=None,
        masks=None,
    )


def gt_scene(seed: int, n_frames: int = 40, fps: float = 10.0, sampled: int | None = 32,
             size: tuple[int, int] = (160, 90)) -> Scene:
    """Ground truth of synthetic scene ``seed``, sampled to ``sampled`` uniform frames (None: all)."""
    config = SynthConfig(seed=seed, n_frames=n_frames, fps=fps, width=size[0], height=size[1])
    scene = generate_scene(config).scene
    frames = np.arange(n_frames) if sampled is None else sample_indices(n_frames, sampled)
    source = SourceInfo(path=f"synth{seed}.mp4", sha256="0" * 64, fps=fps, n_frames=n_frames, size=size)
    return dataclasses.replace(sampled_scene(scene, frames), source=source)


def gt_stores(folder: Path, seeds, **kwargs) -> list[Path]:
    """Write (or reuse) one ground-truth store per seed under ``folder``; returns their paths."""
    from recon4d.store import write_scene

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"synth{seed}.zarr"
        if not path.exists():
            write_scene(gt_scene(seed, **kwargs), path)
        paths.append(path)
    return paths
