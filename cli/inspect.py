"""`recon4d inspect`: what a scene store holds."""

from __future__ import annotations

import json

import click


@click.command("inspect")
@click.argument("scene_path", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def inspect_command(scene_path: str, as_json: bool) -> None:
    """Summarise SCENE: frames, duration, backends, camera path and objects with visible spans."""
    from recon4d.store import open_scene
    from recon4d.summary import summarize_scene

    summary = summarize_scene(open_scene(scene_path))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    _print_summary(scene_path, summary)


def _print_summary(scene_path: str, summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    backends = ", ".join(f"{stage}={name}" for stage, name in summary["backends"].items()) or "none recorded"
    console.print(f"[bold]{scene_path}[/bold]")
    console.print(f"  source       {summary['source'] or 'n/a'}")
    console.print(f"  frames       {summary['n_frames']} over {summary['duration_s']:.2f} s")
    console.print(f"  backends     {backends}")
    console.print(f"  camera path  {summary['camera_path_length']:.2f} (world units)")
    console.print(f"  heavy arrays points={'yes' if summary['has_points'] else 'no'}, "
                  f"masks={'yes' if summary['has_masks'] else 'no'}")
    table = Table(title=f"{len(summary['objects'])} objects")
    for column in ("id", "category", "agent", "visible frames", "visible spans (s)", "path length"):
        table.add_column(column)
    for obj in summary["objects"]:
        spans = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in obj["visible_spans_s"]) or "never"
        table.add_row(str(obj["id"]), obj["category"], "yes" if obj["is_agent"] else "no",
                      f"{obj['visible_frames']}/{summary['n_frames']}", spans, f"{obj['path_length']:.2f}")
    console.print(table)
