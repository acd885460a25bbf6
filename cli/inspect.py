"""`recon4d inspect`: what a scene store holds."""

from __future__ import annotations

import json

import click


@click.command("inspect")
@click.argument("scene_path", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--verify", is_flag=True, help="Re-read every array (point maps and masks included) and compare "
              "the content checksum with the one the store recorded; exit 1 when they differ.")
def inspect_command(scene_path: str, as_json: bool, verify: bool) -> None:
    """Summarise SCENE: frames, duration, backends, camera path and objects with visible spans.

    Opening a store checks that every array and every chunk file is there; --verify also
    decodes everything and recomputes the content checksum the store recorded when written.
    """
    from recon4d.errors import StoreError
    from recon4d.store import open_scene, verify_scene
    from recon4d.summary import summarize_scene

    summary = summarize_scene(open_scene(scene_path))
    if verify:
        from recon4d.cli.progress import progress_callback

        with progress_callback("verifying") as progress:
            check = verify_scene(scene_path, progress=progress)
        summary["verified"] = {"ok": check.ok, "recorded_sha256": check.recorded, "computed_sha256": check.computed,
                               "mismatched": list(check.mismatched)}
        if check.recorded is None:
            raise StoreError(f"{scene_path} records no content checksum (written by an older recon4d), so it cannot "
                             f"be verified; its arrays decode and its content hashes to {check.computed}. "
                             "Re-create it with this version to verify it later.")
        if not check.ok:
            raise StoreError(f"{scene_path} is damaged: the content of {', '.join(check.mismatched)} no longer "
                             f"matches the checksum the store recorded (recorded {check.recorded[:12]}…, now "
                             f"{check.computed[:12]}…). Copy it again or re-create it.")
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
    camera = summary.get("camera_quality")
    if camera is not None:
        console.print(f"  camera       {camera['motion']}, scale from {camera['scale_source']}, "
                      f"{camera['trusted_frames']}/{summary['n_frames']} frames trusted, "
                      f"{camera['frozen_frames']} frozen, quality {_fmt(camera['score'])}, median inlier ratio "
                      f"{_fmt(camera['median_inlier_ratio'])}, median reprojection {_fmt(camera['median_reprojection_px'])} px")
    else:
        console.print("  camera       no quality record")
    console.print(f"  heavy arrays points={'yes' if summary['has_points'] else 'no'}, "
                  f"masks={'yes' if summary['has_masks'] else 'no'}")
    table = Table(title=f"{len(summary['objects'])} objects")
    # The issues are long sentences: listed under the table so the columns stay readable at 80 characters.
    for column in ("id", "category", "agent", "visible frames", "visible spans (s)", "path length", "quality",
                   "trusted frames"):
        table.add_column(column)
    for obj in summary["objects"]:
        spans = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in obj["visible_spans_s"]) or "never"
        quality = obj.get("quality")
        table.add_row(str(obj["id"]), obj["category"], "yes" if obj["is_agent"] else "no",
                      f"{obj['visible_frames']}/{summary['n_frames']}", spans, f"{obj['path_length']:.2f}",
                      "n/a" if quality is None else _fmt(quality["score"]),
                      "n/a" if quality is None else f"{quality['trusted_frames']}/{summary['n_frames']}")
    console.print(table)
    for obj in summary["objects"]:
        if obj.get("quality") and obj["quality"]["issues"]:
            console.print(f"  object {obj['id']}: {obj['quality']['issues']}", markup=False)
    if "verified" in summary:
        console.print(f"  verified     content checksum {summary['verified']['computed_sha256']} matches")
    warnings = summary.get("warnings") or []
    console.print(f"[yellow]{len(warnings)} warning(s) from the pipeline:[/yellow]" if warnings
                  else "no warnings recorded")
    for line in warnings:
        console.print(f"  - {line}", markup=False)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
