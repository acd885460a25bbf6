"""`recon4d report`: one self-contained HTML page about a scene (and its questions)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("scene_path", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output HTML.")
@click.option("--qa", "qa_path", default=None, type=click.Path(path_type=Path),
              help="A QA JSONL export (`recon4d qa SCENE -o qa.jsonl`) to add question statistics.")
@click.option("--no-renders", is_flag=True, help="Leave out the headless 3D views (Open3D).")
def report_command(scene_path: Path, out: Path, qa_path: Path | None, no_renders: bool) -> None:
    """Write a static HTML report of SCENE: summary, plots, 3D views and, with --qa, question statistics."""
    from recon4d.viz.report import write_report

    write_report(scene_path, out, qa_path=qa_path, renders=not no_renders)
    click.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, images embedded)")
