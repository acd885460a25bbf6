"""`recon4d view`: look at a scene store in a window, or render it headless to a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from recon4d.cli.options import parse_size


@click.command("view")
@click.argument("scene_path", type=click.Path(path_type=Path))
@click.option("--frame", default=0, show_default=True, help="Scene frame to show.")
@click.option("--screenshot", type=click.Path(path_type=Path), default=None,
              help="Render headless to this PNG instead of opening a window.")
@click.option("--size", default="960x540", show_default=True, callback=parse_size, help="Image size WIDTHxHEIGHT.")
@click.option("--color", "color_by", type=click.Choice(["rgb", "object"]), default="rgb", show_default=True,
              help="Colour points by the video's RGB or by object.")
def view_command(scene_path, frame, screenshot, size, color_by):
    """Show SCENE: points, camera frustums, object trajectories and agent orientations.

    Without a display (no $DISPLAY) or with --screenshot it writes a PNG
    (default SCENE-stem_frameT.png next to the current folder) instead of opening a window.
    """
    from recon4d.settings import environ
    from recon4d.store import open_scene
    from recon4d.viz.viewer import render_png, view_interactive

    scene = open_scene(scene_path)
    if screenshot is None and environ().get("DISPLAY"):
        view_interactive(scene, frame=frame, color_by=color_by, size=size)
        return
    out = screenshot or Path(f"{scene_path.stem}_frame{frame}.png")
    render_png(scene, out, frame=frame, size=size, color_by=color_by)
    click.echo(f"wrote {out}")
