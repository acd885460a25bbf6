"""`recon4d process`: a video in, a 4D scene store out."""

from __future__ import annotations

from pathlib import Path

import click

from recon4d.cli.options import FiniteFloat, check_device

MAX_FRAMES = 100_000
"""Cap of --frames: more frames than any clip is processed whole with (a 10-minute video at 30 fps has 18,000)."""


@click.command("process")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Scene store to write (default: VIDEO's name with .zarr, in the current folder).")
@click.option("--frames", "n_frames", default=32, show_default=True, type=click.IntRange(2, MAX_FRAMES),
              help="Frames sampled uniformly.")
@click.option("--fps", type=FiniteFloat(0, 1000, low_open=True), default=None,
              help="Sample at this rate instead of --frames.")
@click.option("--start", "start_s", type=FiniteFloat(0), default=None, help="Start of the interval in seconds.")
@click.option("--end", "end_s", type=FiniteFloat(0, low_open=True), default=None,
              help="End of the interval in seconds.")
@click.option("--recon", default="auto", show_default=True, help="Reconstruction backend (auto, classic, ...).")
@click.option("--tracker", default="auto", show_default=True, help="Tracking backend (auto, classic, ...).")
@click.option("--orient", default="auto", show_default=True, help="Orientation backend (auto, motion, ...).")
@click.option("--boxes", "boxes_path", type=click.Path(path_type=Path), default=None,
              help="JSON list of {category, is_agent, box: [x1,y1,x2,y2], frame | time_s} that replaces discovery.")
@click.option("--objects", default=None,
              help='Categories for prompted trackers (sam2), e.g. "person. dog. ball."')
@click.option("-O", "--option", "options", multiple=True, metavar="STAGE.KEY=VALUE",
              help="Backend or lifting option, e.g. -O recon.chunk_frames=48 -O recon.bundle_adjust=no "
                   "-O lift.estimator=median; VALUE is parsed as the option's type (STAGE: track, recon, orient, "
                   "lift); repeatable.")
@click.option("--keep-points", is_flag=True, help="Store point maps and confidences (large).")
@click.option("--keep-masks", is_flag=True, help="Store instance masks (bit-packed).")
@click.option("--device", default="cpu", show_default=True, callback=check_device,
              help="cpu, cuda or cuda:N (learned backends).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at OUT.")
def process_command(video, out, n_frames, fps, start_s, end_s, recon, tracker, orient, boxes_path, objects,
                    options, keep_points, keep_masks, device, overwrite):
    """Reconstruct VIDEO into a 4D scene store: camera poses, objects, 3D trajectories, orientations.

    Without weights this runs the classic pipeline (feature-based camera motion, motion
    segmentation, motion heading); `auto` switches to learned backends when their weights are
    installed and says which it picked.
    """
    from recon4d.errors import StoreError
    from recon4d.pipeline import ProcessConfig, process_video
    from recon4d.settings import quiet_library_progress
    from recon4d.outputs import check_output, companions, json_text, output_lock
    from recon4d.store import is_store, write_scene
    from recon4d.summary import summarize_scene

    if start_s is not None and end_s is not None and end_s <= start_s:
        raise click.BadParameter(f"--end {end_s:g} must come after --start {start_s:g}", param_hint="--end")
    out = out or Path(video.stem + ".zarr")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; pass --overwrite to replace it or choose another -o.")
    boxes = ()
    if boxes_path is not None:
        from recon4d.tracking.classic.user_boxes import load_user_boxes

        boxes = tuple(load_user_boxes(boxes_path))
    config = ProcessConfig(n_frames=n_frames, fps=fps, start_s=start_s, end_s=end_s, recon=recon, tracker=tracker,
                           orient=orient, boxes=boxes, keep_points=keep_points, keep_masks=keep_masks, device=device,
                           objects=objects, backend_options=parse_backend_options(options))
    quiet_library_progress()
    config_path = out.with_name(out.name + ".config.json")
    check_output(out, "dir", overwrite=overwrite, replaceable=is_store, what="scene store")
    check_output(config_path, "file", what="config file")
    with output_lock(out), output_lock(config_path):
        with _StageBars() as bars:
            result = process_video(video, config, progress=bars.stage, log=bars.log)
        with companions((config_path, json_text(result.scene.config), "config file")):
            write_scene(result.scene, out, overwrite=overwrite)
    _print_summary(out, summarize_scene(result.scene), result)


def parse_backend_options(items) -> dict:
    """["recon.chunk_frames=48", ...] → {"recon": {"chunk_frames": "48"}}: values stay strings,
    parsed later against the field types of the backend that is chosen (or of LiftConfig)."""
    from recon4d.pipeline import OPTION_STAGES

    parsed: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        stage, dot, name = key.partition(".")
        if not sep or not dot or not name or stage not in OPTION_STAGES:
            raise click.BadParameter(f"expected STAGE.KEY=VALUE with STAGE one of {', '.join(OPTION_STAGES)}, "
                                     f"got {item!r}", param_hint="-O/--option")
        parsed.setdefault(stage, {})[name] = raw
    return parsed


class _StageBars:
    """One rich progress bar per pipeline stage; log lines printed above the bars."""

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn())
        self._progress.__enter__()
        return self

    def stage(self, name: str):
        task = self._progress.add_task(name, total=None)

        def callback(done: int, total: int) -> None:
            self._progress.update(task, completed=done, total=total)

        return callback

    def log(self, message: str) -> None:
        self._progress.console.print(message)

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)


def _print_summary(out: Path, summary: dict, result) -> None:
    click.echo(f"wrote {out}: {summary['n_frames']} frames over {summary['duration_s']:.2f} s, "
               f"camera path {summary['camera_path_length']:.2f}")
    camera = summary.get("camera_quality")
    if camera is not None:
        score = "n/a" if camera["score"] is None else f"{camera['score']:.2f}"
        click.echo(f"camera: {camera['motion']}, scale from {camera['scale_source']}, "
                   f"{camera['trusted_frames']}/{summary['n_frames']} frames trusted (quality {score})")
    click.echo(f"{len(summary['objects'])} objects:")
    for obj in summary["objects"]:
        # An object is visible where the lift located it in 3D; a 2D track without one stays listed, not dropped.
        spans = ", ".join(f"{a:.1f}-{b:.1f}s" for a, b in obj["visible_spans_s"])
        where = f"visible {spans}" if spans else "never located in 3D (no valid point under its masks)"
        kind = "agent" if obj["is_agent"] else "object"
        quality = obj.get("quality")
        trust = "" if quality is None else f"; quality {quality['score']:.2f}"
        click.echo(f"  {obj['id']:>3} {obj['category']:<10} {kind:<6} {where}; path {obj['path_length']:.2f}{trust}")
    timing = ", ".join(f"{s.stage} {s.seconds:.1f}s ({s.backend})" for s in result.stages)
    click.echo(f"time: {timing}; total {result.seconds:.1f}s")
    if result.warnings:
        click.secho(f"{len(result.warnings)} warning(s) (stored in the scene; `recon4d inspect` lists them):",
                    fg="yellow", err=True)
        for message in result.warnings:
            click.secho(f"  - {message}", fg="yellow", err=True)
