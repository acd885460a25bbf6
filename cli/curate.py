"""`recon4d curate`: keep the videos with enough camera and/or object motion."""

from __future__ import annotations

from pathlib import Path

import click

from recon4d.cli.options import FiniteFloat


@click.command("curate")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path),
              help="Text file listing the kept videos, one path per line.")
@click.option("--min-camera-motion", default=0.02, show_default=True, type=FiniteFloat(0),
              help="Keep when the background moves at least this many image diagonals per second.")
@click.option("--min-object-motion", default=0.005, show_default=True, type=FiniteFloat(0, 1),
              help="Keep when at least this fraction of pixels moves against the background.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Also write every video's statistics and verdict as JSON here.")
def curate_command(videos, out, min_camera_motion, min_object_motion, report_path):
    """Filter VIDEOS by motion: the weights-free counterpart of the DSR paper's LLM motion filter.

    A video is kept when its camera moves (median background displacement) or its objects
    move (share of pixels moving against the compensated background) enough. Unreadable
    videos are listed as rejected with the reason; nothing is dropped silently.
    """
    from recon4d.cli.progress import progress_callback
    from recon4d.curate import CurateConfig, curate
    from recon4d.outputs import check_output, companions, json_text, write_text

    check_output(out, "file", what="list of kept videos")
    if report_path:
        check_output(report_path, "file", what="curation report")

    config = CurateConfig(min_camera_motion=min_camera_motion, min_object_motion=min_object_motion)
    with progress_callback("measuring") as progress:
        results = curate(videos, config, progress=progress)
    kept = [r.path for r in results if r.kept]
    report = [{"path": r.path, "kept": r.kept, "reason": r.reason, "stats": r.stats.to_json() if r.stats else None}
              for r in results]
    with companions((report_path, json_text(report) if report_path else None, "curation report")):
        write_text(out, "".join(f"{p}\n" for p in kept), what="list of kept videos")
    for r in results:
        click.echo(f"{'keep' if r.kept else 'drop'}  {r.path}: {r.reason}")
    click.echo(f"kept {len(kept)}/{len(results)} videos; list in {out}")
