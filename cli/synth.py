"""`recon4d synth`: render a procedural 4D scene (mp4 + ground-truth store)."""

from __future__ import annotations

from pathlib import Path

import click

from recon4d.cli.options import FiniteFloat, parse_size
from recon4d.synth.cameras import CAMERA_KINDS


@click.command("synth")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder: video.mp4 and scene.zarr (ground truth) are written there.")
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed gives the same scene.")
@click.option("--frames", "n_frames", default=48, show_default=True, type=click.IntRange(2, 10_000),
              help="Number of frames to render.")
@click.option("--fps", default=12.0, show_default=True, type=FiniteFloat(0, 240, low_open=True),
              help="Frame rate of the video.")
@click.option("--size", default="640x360", show_default=True, callback=parse_size,
              help="Video size WIDTHxHEIGHT (both even).")
@click.option("--objects", "n_objects", type=click.IntRange(0, 8), default=None,
              help="Number of moving objects (0-8; default: chosen by the seed).")
@click.option("--camera", type=click.Choice(CAMERA_KINDS), default=None,
              help="Camera: static, pan (tripod), orbit, walk (handheld) or follow (a subject) "
                   "[default: chosen by the seed].")
@click.option("--static-camera", is_flag=True, help="Keep the camera fixed (same as --camera static).")
@click.option("--plain", is_flag=True,
              help="The plain yard: no props, cars, groups or stops, objects always in view, orbiting camera "
                   "unless --camera says otherwise.")
@click.option("--overwrite", is_flag=True, help="Replace an existing scene in OUT.")
def synth_command(out_dir, seed, n_frames, fps, size, n_objects, camera, static_camera, plain, overwrite):
    """Render a synthetic scene with full ground truth.

    By default the scene looks like real footage: one of five camera kinds, people (some in
    groups), dogs, cars, balls, boxes and cones that stop and restart or cross the frame,
    walls, pillars, crates and parked cars they pass behind, on paving, grass or asphalt.

    Writes OUT/video.mp4 (feed it to `recon4d process`) and OUT/scene.zarr, the ground-truth
    scene store (poses, point maps, masks, boxes, centres, orientations).
    """
    from recon4d.cli.progress import progress_callback
    from recon4d.outputs import companions, json_text
    from recon4d.synth.scene import SynthConfig, write_synthetic

    try:
        config = SynthConfig(seed=seed, n_frames=n_frames, fps=fps, width=size[0], height=size[1],
                             n_objects=n_objects, static_camera=static_camera, camera=camera, varied=not plain)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with progress_callback("rendering") as progress:
        with companions((Path(out_dir) / "synth_config.json", json_text(config.to_json()), "synth config")):
            paths = write_synthetic(out_dir, config, progress=progress, overwrite=overwrite)
    click.echo(f"video: {paths.video}\nscene: {paths.scene}\ncamera: {config.camera_kind}")
