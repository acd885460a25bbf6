"""`recon4d batch`: a manifest of videos → one store (and questions) per video, locally or on Ray."""

from __future__ import annotations

from pathlib import Path

import click

from recon4d.cli.options import FiniteFloat, check_device
from recon4d.cli.process import parse_backend_options

_FORMATS = ("jsonl", "dsr-json", "parquet", "qwen")


@click.command("batch")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("-o", "--out", "outdir", required=True, type=click.Path(path_type=Path),
              help="Batch folder: stores/, qa/, state/, the merged export and summary.json go there.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: Ray actors (a local Ray unless --address).")
@click.option("--address", default=None, help="Ray cluster to join (e.g. ray://head:10001); --engine ray only.")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Worker processes / actors (default: the CPU count of this machine or of the Ray cluster).")
@click.option("--gpus-per-task", type=click.FloatRange(0, 64), default=None,
              help="GPUs each Ray actor asks for (default: 1 when learned backends run with --device cuda, else 0).")
@click.option("--resume", is_flag=True, help="Continue the run in OUT: skip finished videos, retry failed ones.")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Further attempts a failed video gets (crashes at once, any failure on --resume).")
@click.option("--qa-per-video", "qa_per_video", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Questions compiled per video (0: none); merged into OUT/qa.* at the end.")
@click.option("--qa-format", type=click.Choice(_FORMATS), default="jsonl", show_default=True,
              help="Format of the merged question export.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the question compiler.")
@click.option("--frames", "n_frames", default=32, show_default=True, type=click.IntRange(2, 100_000),
              help="Frames sampled uniformly per video.")
@click.option("--fps", type=FiniteFloat(0, 1000, low_open=True), default=None,
              help="Sample at this rate instead of --frames.")
@click.option("--recon", default="auto", show_default=True, help="Reconstruction backend.")
@click.option("--tracker", default="auto", show_default=True, help="Tracking backend.")
@click.option("--orient", default="auto", show_default=True, help="Orientation backend.")
@click.option("--objects", default=None, help="Default prompt for prompted trackers (a manifest's objects wins).")
@click.option("-O", "--option", "options", multiple=True, metavar="STAGE.KEY=VALUE", help="Backend option (repeatable).")
@click.option("--keep-points", is_flag=True, help="Store point maps and confidences (large).")
@click.option("--keep-masks", is_flag=True, help="Store instance masks (bit-packed).")
@click.option("--device", default="cpu", show_default=True, callback=check_device,
              help="cpu, cuda or cuda:N (learned backends).")
def batch_command(manifest, outdir, engine, address, workers, gpus_per_task, resume, retries, qa_per_video, qa_format,
                  seed, n_frames, fps, recon, tracker, orient, objects, options, keep_points, keep_masks, device):
    """Process every video of MANIFEST (CSV with a header, or JSONL) into OUT, exactly once.

    \b
    MANIFEST columns: video (required), start, end (seconds), objects, id.
    OUT/stores/ID.zarr   one scene store per video (ID: the manifest's id, else STEM-<hash>)
    OUT/qa/ID.jsonl      its questions (--qa-per-video N), merged into OUT/qa.*
    OUT/state/ID.json    done (+ checksums) | failed (+ reason, attempts)
    OUT/summary.json     done / skipped / failed with reasons

    A killed run (any process, any moment) continues with --resume: finished videos are
    skipped, the rest processed once. Exits 1 when any video failed.
    """
    from recon4d.batch.local import LocalEngine
    from recon4d.batch.ray_engine import RayEngine
    from recon4d.batch.runner import run_batch, uses_learned_backends
    from recon4d.batch.state import BatchSettings
    from recon4d.cli.progress import lazy_progress_callback
    from recon4d.pipeline import ProcessConfig
    from recon4d.qa_compiler.compiler import CompileConfig

    if address and engine != "ray":
        raise click.BadParameter("--address joins a Ray cluster; it needs --engine ray", param_hint="--address")
    if gpus_per_task and engine != "ray":
        raise click.BadParameter("--gpus-per-task is a Ray resource request; it needs --engine ray",
                                 param_hint="--gpus-per-task")
    process = ProcessConfig(n_frames=n_frames, fps=fps, recon=recon, tracker=tracker, orient=orient,
                            objects=objects, keep_points=keep_points, keep_masks=keep_masks, device=device,
                            backend_options=parse_backend_options(options))
    qa = CompileConfig(n_per_scene=qa_per_video, seed=seed) if qa_per_video else None
    settings = BatchSettings(process=process, qa=qa, qa_format=qa_format, retries=retries)
    if engine == "local":
        import os

        runner_engine = LocalEngine(workers or os.cpu_count() or 1)
    else:
        if gpus_per_task is None:
            gpus_per_task = 1.0 if device.startswith("cuda") and uses_learned_backends(settings) else 0.0
        runner_engine = RayEngine(workers, address=address, gpus_per_task=gpus_per_task)
    with lazy_progress_callback("videos") as progress:
        summary = run_batch(manifest, outdir, settings, runner_engine, resume=resume, progress=progress,
                            log=lambda message: click.echo(message, err=True))
    _print_summary(summary)
    failed = [video for video in summary.videos if video.status == "failed"]
    if failed:
        from recon4d.errors import Recon4dError

        first = failed[0]
        raise Recon4dError(f"{len(failed)} of {len(summary.videos)} videos failed (first: {first.id}, {first.video}: "
                           f"{first.reason}); every failure and its reason is in {Path(summary.outdir) / 'summary.json'}. "
                           "Fix them and run again with --resume: finished videos are skipped.")


def _print_summary(summary) -> None:
    click.echo(f"{summary.count('done')} done, {summary.count('skipped')} skipped (done earlier), "
               f"{summary.count('failed')} failed of {len(summary.videos)} videos in {summary.seconds:.1f} s "
               f"({summary.engine}, {summary.workers} workers, {summary.videos_per_min:.2f} videos/min)")
    for video in summary.videos:
        if video.status == "failed":
            click.echo(f"  failed {video.id} ({video.video}), {video.attempts} attempt(s): {video.reason}")
    if summary.merged_qa:
        click.echo(f"{summary.questions} questions in {Path(summary.outdir) / summary.merged_qa}")
    click.echo(f"summary: {Path(summary.outdir) / 'summary.json'}")
