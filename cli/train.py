"""`recon4d train`: fine-tune a geometry-aware Qwen2.5-VL on compiled questions (configs/*.yaml)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click


@contextmanager
def _training_bar():
    """A rich bar on stderr with the step's loss, learning rate and tokens/s.

    Shown from the first step on, so that a run refused while loading (bad data, bad output folder)
    prints its error alone.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=Console(stderr=True))
    task = bar.add_task("training", total=None, info="", start=False)

    def update(done: int, total: int, row: dict) -> None:
        if not bar.live.is_started:
            bar.start()
            bar.start_task(task)
        rate = next(iter(row["lr"].values()), 0.0)
        bar.update(task, completed=done, total=total,
                   info=f"loss {row['loss']:.4f}  lr {rate:.2e}  {row['tokens_per_s']:.0f} tok/s")

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


@click.command("train")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value (YAML syntax), e.g. --set optim.learning_rate=1e-5. Repeatable.")
@click.option("--data", "data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Question file (same as --set data.train=FILE).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (same as --set run.output=DIR).")
@click.option("--resume", default=None, is_flag=False, flag_value="auto", metavar="[CHECKPOINT]",
              help="Continue the run in the output folder from its last checkpoint (or from CHECKPOINT).")
@click.option("--overwrite", is_flag=True, help="Replace a finished or stopped run in the output folder.")
@click.option("--dry-run", is_flag=True,
              help="Print parameter counts per component (trainable / frozen) of the model, built on the meta "
                   "device; nothing is allocated, read or trained.")
def train_command(config_path, overrides, data, output, resume, overwrite, dry_run):
    """Fine-tune on compiled questions as CONFIG describes (see configs/tiny.yaml).

    \b
    recon4d train configs/tiny.yaml --data qa.jsonl -o runs/tiny       # CPU, a few minutes
    recon4d train configs/qwen2_5_vl_7b.yaml --dry-run                  # 7B parameter counts
    accelerate launch --num_processes 8 $(which recon4d) train configs/qwen2_5_vl_7b.yaml \\
        --data train.json --set model.base=Qwen2.5-VL-7B-Instruct --set model.pi3=pi3/model.safetensors

    Writes OUT/config.yaml, OUT/metrics.jsonl, OUT/checkpoints/step-N and OUT/model (for `recon4d eval`).
    """
    from recon4d.settings import quiet_library_progress
    from recon4d.vlm.train_config import apply_overrides, load_config

    quiet_library_progress()
    extra = ([f"data.train={data}"] if data else []) + ([f"run.output={output}"] if output else [])
    config = load_config(config_path, list(overrides))
    config = apply_overrides(config, extra, Path.cwd())
    if dry_run:
        from recon4d.vlm.train import dry_run as describe

        click.echo(describe(config))
        return
    from contextlib import nullcontext

    from recon4d.vlm.train import is_main_process, train

    main = is_main_process()  # under `accelerate launch`, the other processes stay quiet
    with _training_bar() if main else nullcontext() as progress:
        result = train(config, resume=resume, overwrite=overwrite, progress=progress,
                       echo=lambda text: click.echo(text, err=True))
    if not main:
        return
    losses = result.losses
    head = sum(losses[:5]) / max(1, len(losses[:5]))
    tail = sum(losses[-5:]) / max(1, len(losses[-5:]))
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())) or "none"
    click.echo(f"trained steps {result.start_step}→{result.steps} on {result.n_items} items (skipped: {skipped}); "
               f"loss {head:.4f} (first 5) → {tail:.4f} (last 5)")
    if result.cache is not None:
        click.echo(f"geometry cache {result.cache['path']}: {result.cache['hits']} hits, {result.cache['writes']} "
                   f"written{'' if result.cache['enabled'] else ' (off)'}")
    click.echo(f"model: {result.model_dir}   (score it: recon4d eval {result.model_dir} DATA)")
