"""`recon4d plot`: a PNG of a scene's trajectories, speeds and one pair's distance."""

from __future__ import annotations

from pathlib import Path

import click


def _parse_pair(_ctx, _param, value: str | None):
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise click.BadParameter(f"expected two entities as A,B (object ids or 'camera'), got {value!r}")
    return tuple(parts)


@click.command("plot")
@click.argument("scene_path", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output PNG.")
@click.option("--observer", default="camera", show_default=True,
              help="Whose FLU frame the top-down and side views use: 'camera' or an agent's id.")
@click.option("--frame", default=0, show_default=True, help="Scene frame at which the observer frame is frozen.")
@click.option("--pair", callback=_parse_pair, default=None,
              help="Two entities A,B (ids or 'camera') for the distance panel; default the first two objects.")
def plot_command(scene_path: Path, out: Path, observer: str, frame: int, pair) -> None:
    """Plot SCENE: top-down and side views in an observer's frame, speeds, and a pair's distance."""
    from recon4d.viz.plots import plot_scene
    from recon4d.store import open_scene

    layout = plot_scene(open_scene(scene_path), out, observer=observer, frame=frame, pair=pair)
    who = "camera" if layout.observer == "camera" else f"object {layout.observer}"
    pair_text = f", distance {layout.pair[0]}–{layout.pair[1]}" if layout.pair else ""
    click.echo(f"wrote {out} ({len(layout.ids)} objects seen from the {who} at frame {layout.frame}"
               f"{pair_text})")
