"""`recon4d eval`: accuracy per question type of a model, of the text-only baseline, or of given replies."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("eval")
@click.argument("args", nargs=-1, metavar="[MODEL] DATA")
@click.option("--model", "model_name", default=None,
              help="The model instead of the MODEL argument: a model folder, or blind-text (answers from the "
                   "question and options alone; no video, no GPU).")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score these replies (JSONL/JSON with id or index and response) instead of running a model; "
                   "DATA is then optional when every reply carries its answer.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results (scores, per-type table, every reply) as JSON here.")
@click.option("--video-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder relative video paths (and DSR-Bench videoIDs) are looked up in first.")
@click.option("--frames", default=32, show_default=True, help="Frames per video.")
@click.option("--min-pixels", default=128 * 28 * 28, show_default=True, help="Smallest frame area after resizing.")
@click.option("--max-pixels", default=768 * 28 * 28, show_default=True, help="Largest frame area after resizing.")
@click.option("--total-pixels", default=24576 * 28 * 28, show_default=True, help="Pixel budget of a whole video.")
@click.option("--sampling", type=click.Choice(["whole", "visible"]), default="whole", show_default=True,
              help="Frames over the whole file (reference) or only up to the record's last visible frame.")
@click.option("--timing", type=click.Choice(["fixed", "duration"]), default="fixed", show_default=True,
              help="Seconds per temporal grid: 1.0 as the reference evaluation, or duration/16 as in training.")
@click.option("--max-new-tokens", default=2048, show_default=True, help="Generation length limit.")
@click.option("--batch-size", default=1, show_default=True, help="Prompts per generate call.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--limit", type=int, default=None, help="Evaluate only the first N questions.")
@click.option("--heuristic", default="best", show_default=True,
              help="blind-text: the audit heuristic that answers (best = the most accurate one on DATA).")
@click.option("--seed", default=0, show_default=True, help="blind-text: seed of the tie-breaks.")
def eval_command(args, model_name, predictions, output, video_root, frames, min_pixels, max_pixels, total_pixels,
                 sampling, timing, max_new_tokens, batch_size, device, limit, heuristic, seed):
    """Score MODEL on DATA (DSR-Bench parquet, or a recon4d qa export): accuracy per question type.

    \b
    recon4d eval runs/tiny/model qa.jsonl -o results.json
    recon4d eval --model blind-text DSR-Bench.parquet          # text-only floor, no video
    recon4d eval --predictions replies.jsonl DSR-Bench.parquet  # another model's replies
    """
    from recon4d.settings import quiet_library_progress
    from recon4d.vlm.evaluate import BLIND_MODEL, EvalSettings, evaluate_blind, evaluate_model, score_replies, \
        write_results
    from recon4d.vlm.scoring import format_table

    quiet_library_progress()
    args = list(args)
    if predictions is not None:
        if len(args) > 1 or model_name:
            raise click.UsageError("with --predictions give at most DATA (no model): recon4d eval --predictions FILE [DATA].")
        data = args[0] if args else None
    else:
        if model_name is None:
            if len(args) != 2:
                raise click.UsageError("give MODEL and DATA (or --model blind-text DATA, or --predictions FILE DATA).")
            model_name, data = args
        elif len(args) != 1:
            raise click.UsageError("with --model give only DATA.")
        else:
            data = args[0]
    if output is not None:
        from recon4d.outputs import check_output

        check_output(output, "file", what="evaluation results")
    if predictions is not None:
        results = score_replies(predictions, data)
    elif model_name == BLIND_MODEL:
        results = evaluate_blind(data, heuristic=heuristic, seed=seed, limit=limit)
    else:
        from recon4d.cli.progress import progress_callback

        settings = EvalSettings(n_frames=frames, min_pixels=min_pixels, max_pixels=max_pixels,
                                total_pixels=total_pixels, sampling=sampling, timing=timing,
                                max_new_tokens=max_new_tokens, batch_size=batch_size, device=device,
                                video_root=None if video_root is None else str(video_root), limit=limit)
        with progress_callback("evaluating") as progress:
            results = evaluate_model(model_name, data, settings, progress=progress)
    if results["n_skipped"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(results["skipped"].items()))
        click.echo(f"skipped {results['n_skipped']} questions ({reasons})", err=True)
        for message in results["skipped_examples"]:
            click.echo(f"  - {message}", err=True)
    click.echo(format_table(results, title=f"{results['model']} on {results['data']}"))
    if output is not None:
        write_results(results, output)
        click.echo(f"results: {output}")
