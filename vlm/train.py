"""``recon4d train``: fine-tune a geometry-aware Qwen2.5-VL on compiled QA (VLM_FACTS §1.7).

One loop for every setup, on accelerate: a single CPU or GPU, ``accelerate launch`` over several
GPUs, DeepSpeed ZeRO-2/3 with CPU offload (``configs/deepspeed/*.json``: no ``optimizer`` or
``scheduler`` block, so recon4d's per-group learning rates and schedule are the ones that step).

Run folder (``run.output``)::

    config.yaml             the resolved configuration
    metrics.jsonl           one row per logged optimizer step (loss, lr per group, tokens/s, ...)
    checkpoints/step-N/     model, optimizer, scheduler and RNG states + trainer_state.json
    model/                  the trained model (config.json, safetensors, tokenizer) for ``recon4d eval``

Data order: epoch e visits the items in ``default_rng([seed, e]).permutation(n)``; optimizer step s
of epoch e takes the s-th block of world × batch × accumulation items (a tail that fills no block
is left out and reported). A resumed run restores the states and continues at the checkpoint's
step with the same order, so it reproduces an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from recon4d.errors import OutputError
from recon4d.outputs import atomic_output, check_output, output_lock, write_text
from recon4d.vlm.data import FrameConfig, ItemSet, load_items
from recon4d.vlm.geometry_cache import GeometryCache, default_cache_path, encoder_fingerprint
from recon4d.vlm.metrics_log import MetricsLog
from recon4d.vlm.optim import build_optimizer, build_scheduler
from recon4d.vlm.samples import SampleBuilder, SampleError, SampleSettings
from recon4d.vlm.train_config import ConfigError, TrainConfig, dump_yaml
from recon4d.vlm.trainable import build_model, core_model, format_report, parameter_report, unwrap_lora

RUN_MARKER = ".recon4d-run"
TRAINER_STATE = "trainer_state.json"
TRAINING_INFO = "recon4d_training.json"


@dataclass(frozen=True)
class TrainResult:
    """What a run did."""

    output: Path
    """The run folder."""
    model_dir: Path
    """The trained model folder (``output/model``)."""
    start_step: int
    """Optimizer step the run started at (> 0 when resumed)."""
    steps: int
    """Optimizer steps done in total (the last step's number)."""
    losses: tuple[float, ...]
    """Training loss of every step this run did (mean over its micro-batches and processes)."""
    n_items: int
    """Usable items."""
    skipped: dict
    """Reason → items skipped when reading, and "sample failed" for items that broke in training."""
    cache: dict | None
    """Geometry-cache statistics (None when off)."""
    engine: str
    """What stepped: "plain" (accelerate, one or several processes) or "deepspeed zero-N" (+ " offload")."""


@dataclass(frozen=True)
class StepPlan:
    """How the items map to optimizer steps."""

    global_batch: int
    """Items per optimizer step over all processes (world × batch × accumulation)."""
    steps_per_epoch: int
    """Optimizer steps per pass over the items."""
    total_steps: int
    """Optimizer steps of the run."""
    left_out: int
    """Items per epoch that fill no whole step."""


def plan_steps(n_items: int, world: int, config: TrainConfig) -> StepPlan:
    run = config.run
    global_batch = world * run.batch_size * run.gradient_accumulation_steps
    per_epoch = n_items // global_batch
    if per_epoch == 0:
        raise ConfigError(f"{n_items} usable items cannot fill one optimizer step of {global_batch} items "
                          f"({world} processes × batch {run.batch_size} × accumulation "
                          f"{run.gradient_accumulation_steps}); add data or lower run.batch_size / "
                          "run.gradient_accumulation_steps.")
    total = run.max_steps if run.max_steps is not None else per_epoch * run.epochs
    return StepPlan(global_batch, per_epoch, total, n_items - per_epoch * global_batch)


def epoch_order(n_items: int, seed: int, epoch: int) -> np.ndarray:
    """The item order of one epoch: (n,) permutation, fixed by (seed, epoch) alone."""
    return np.random.default_rng([seed, epoch]).permutation(n_items)


def data_fingerprint(items: ItemSet) -> str:
    """sha256 of the usable item ids and videos (a resumed run must see the same data)."""
    digest = hashlib.sha256()
    for item in items.items:
        digest.update(f"{item.id}\0{item.video}\n".encode())
    return digest.hexdigest()[:24]


def frame_config(config: TrainConfig) -> FrameConfig:
    d = config.data
    return FrameConfig(n_frames=d.frames, sampling=d.sampling, rounding="floor", min_pixels=d.min_pixels,
                       max_pixels=d.max_pixels, timing="duration")


def is_run_folder(path: Path) -> bool:
    """A folder ``recon4d train`` made (the only kind --overwrite replaces)."""
    return (Path(path) / RUN_MARKER).is_file()


def latest_checkpoint(output: Path) -> Path | None:
    folder = Path(output) / "checkpoints"
    found = sorted(p for p in folder.glob("step-*") if (p / TRAINER_STATE).is_file()) if folder.is_dir() else []
    return found[-1] if found else None


def dry_run(config: TrainConfig) -> str:
    """Parameter counts per component, trainable and frozen, of the model built on the meta device."""
    model = build_model(config.model, meta=True)
    fusion = core_model(model).geometry.fusion
    return f"model {config.model.base} (fusion {fusion}, built on the meta device: nothing allocated)\n" + \
        format_report(parameter_report(model))


# ----------------------------------------------------------------------------------------- the run
class Trainer:
    """State of one run (see :func:`train`)."""

    def __init__(self, config: TrainConfig, echo: Callable[[str], None]) -> None:
        self.config, self.echo = config, echo
        self.output = Path(config.run.output)

    # --- setup -----------------------------------------------------------------------------
    def accelerator(self):
        from accelerate import Accelerator, DeepSpeedPlugin

        run = self.config.run
        plugin = None
        if run.deepspeed:
            from recon4d.settings import single_process_launch

            single_process_launch()
            deepspeed_config = json.loads(Path(run.deepspeed).read_text())
            check_deepspeed_config(deepspeed_config, run.deepspeed)
            plugin = DeepSpeedPlugin(hf_ds_config=deepspeed_config,
                                     gradient_accumulation_steps=run.gradient_accumulation_steps,
                                     gradient_clipping=self.config.optim.max_grad_norm)
        # accelerate drops a DeepSpeed plugin when told cpu=True; DeepSpeed picks its own (CPU) accelerator.
        return Accelerator(mixed_precision="bf16" if run.precision == "bf16" else "no",
                           gradient_accumulation_steps=run.gradient_accumulation_steps, deepspeed_plugin=plugin,
                           cpu=run.device == "cpu" and plugin is None)

    def prepare_model(self, accelerator):
        import torch

        config = self.config
        model = build_model(config.model)
        core = core_model(model)
        core.config.use_cache = False
        if config.run.gradient_checkpointing:
            core.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if config.run.precision == "bf16" and not config.run.deepspeed:
            # Frozen weights need no fp32 master copy: store them in bf16 (autocast runs in bf16 anyway).
            for parameter in model.parameters():
                if not parameter.requires_grad:
                    parameter.data = parameter.data.to(torch.bfloat16)
        model.train()
        return model

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, accelerator, step: int, state: dict) -> Path:
        from accelerate.utils import broadcast_object_list

        path = self.output / "checkpoints" / f"step-{step:07d}"
        with ExitStack() as stack:
            staging = [None]
            if accelerator.is_main_process:
                staging = [str(stack.enter_context(atomic_output(path, "dir", what="checkpoint")))]
            if accelerator.num_processes > 1:
                broadcast_object_list(staging)
            accelerator.save_state(staging[0], safe_serialization=True)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                Path(staging[0], TRAINER_STATE).write_text(json.dumps(state, indent=2) + "\n")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self.prune_checkpoints()
        return path

    def prune_checkpoints(self) -> None:
        limit = self.config.run.save_total_limit
        kept = sorted((self.output / "checkpoints").glob("step-*"))
        for old in kept[:-limit] if limit else []:
            shutil.rmtree(old, ignore_errors=True)

    def save_model(self, accelerator, model, tokenizer, step: int) -> Path:
        target = self.output / "model"
        state = accelerator.get_state_dict(model)  # gathers ZeRO-3 shards on every process
        if accelerator.is_main_process:
            wrapped = accelerator.unwrap_model(model)
            lora = hasattr(wrapped, "merge_and_unload")
            core = unwrap_lora(wrapped)  # LoRA adapters merged: the folder loads as a plain model
            with atomic_output(target, "dir", replaceable=lambda p: (p / "config.json").is_file(),
                               what="trained model") as staging:
                if lora:
                    core.save_pretrained(staging)
                else:
                    core.save_pretrained(staging, state_dict=state)
                tokenizer.save(staging)
                info = {"fusion": core.geometry.fusion, "step": step, "data": self.config.data.train,
                        "frames": frame_config(self.config).__dict__}
                Path(staging, TRAINING_INFO).write_text(json.dumps(info, indent=2) + "\n")
        accelerator.wait_for_everyone()
        return target


def check_deepspeed_config(data: dict, path: str) -> None:
    """Refuse a DeepSpeed config whose optimizer or scheduler block would replace recon4d's groups."""
    blocks = [key for key in ("optimizer", "scheduler") if key in data]
    if blocks:
        raise ConfigError(
            f"{path} has a DeepSpeed {' and '.join(blocks)} block: DeepSpeed would then build its own optimizer over "
            "all parameters at one learning rate and drop recon4d's per-group rates and schedule (what the "
            "reference's zero3_offload.json does, VLM_FACTS §1.7). Remove the block(s); configs/deepspeed/ has "
            "ready ones.")


def prepare_output(config: TrainConfig, resume: str | None, overwrite: bool) -> tuple[Path, Path | None, bool]:
    """Check the run folder can be written (every process: the same answer everywhere); return it,
    the checkpoint to resume from (or None) and whether an old run there is to be removed first."""
    output = Path(config.run.output)
    check_output(output, "dir", overwrite=True, what="training run folder",
                 replaceable=lambda p: is_run_folder(p) or not any(p.iterdir()))
    checkpoint, replace_old = None, False
    if resume == "auto":
        checkpoint = latest_checkpoint(output)
    elif resume:
        checkpoint = Path(resume)
        if not (checkpoint / TRAINER_STATE).is_file():
            raise ConfigError(f"{checkpoint} is not a recon4d checkpoint (no {TRAINER_STATE}); pass a "
                              f"{output}/checkpoints/step-N folder or --resume auto.")
    elif output.exists() and any(output.iterdir()):
        if not is_run_folder(output):
            raise OutputError(f"{output} exists and is not a recon4d run folder; choose another run.output.")
        if not overwrite:
            raise OutputError(f"{output} already holds a run; pass --resume (continue from its last checkpoint) or "
                              "--overwrite (start again), or choose another run.output.")
        replace_old = True
    return output, checkpoint, replace_old


def train(config: TrainConfig, resume: str | None = None, overwrite: bool = False,
          progress: Callable[[int, int, dict], None] | None = None,
          echo: Callable[[str], None] = print) -> TrainResult:
    """Run the training ``config`` describes (module docstring); ``resume``: "auto" (the run folder's
    latest checkpoint, or a fresh start) or a checkpoint folder. Returns a :class:`TrainResult`."""
    from accelerate.state import AcceleratorState

    config = config.check()
    if not is_main_process():
        echo = _silent  # one process speaks for all
    output, checkpoint, replace_old = prepare_output(config, resume, overwrite)
    items = load_items(config.data.train, config.data.video_root)
    echo(f"data: {config.data.train}: {items.summary()}")
    try:
        return _train(config, items, output, checkpoint, replace_old, progress, echo)
    finally:
        AcceleratorState._reset_state(True)  # the next run in this process may use other settings


def is_main_process() -> bool:
    """Whether this process is the main one of its launch (``accelerate launch``/torchrun), or alone."""
    from recon4d.settings import launch_rank

    return launch_rank() == 0


def _silent(_text: str) -> None:
    pass


def _train(config, items, output, checkpoint, replace_old, progress, echo) -> TrainResult:
    from accelerate.utils import set_seed

    from recon4d.vlm.processing import collate
    from recon4d.vlm.tokenizer import load_tokenizer

    trainer = Trainer(config, echo)
    accelerator = trainer.accelerator()
    main = accelerator.is_main_process
    run = config.run
    plan = plan_steps(len(items.items), accelerator.num_processes, config)
    if replace_old and main:
        shutil.rmtree(output)
    accelerator.wait_for_everyone()  # nobody writes before an overwritten run is gone
    with output_lock(output) if main else nullcontext():
        if main:
            output.mkdir(parents=True, exist_ok=True)
            (output / RUN_MARKER).touch()
            write_text(output / "config.yaml", dump_yaml(config), what="training config")
        set_seed(run.seed)
        model = trainer.prepare_model(accelerator)
        core = core_model(model)
        geometry = core.geometry
        tokenizer = load_tokenizer(config.model.tokenizer or (None if config.model.base in ("micro", "tiny", "7b")
                                                              else config.model.base),
                                   core.config.text_config.vocab_size, geometry.token_ids)
        builder = SampleBuilder(items, tokenizer.encode, geometry,
                                SampleSettings(frame_config(config), training=True, max_length=config.data.max_length),
                                core.config.vision_config.spatial_merge_size)
        cache = None
        if geometry.uses_encoder and config.data.geometry_cache != "off":
            root = default_cache_path(config.data.train) if config.data.geometry_cache == "auto" \
                else Path(config.data.geometry_cache)
            cache = GeometryCache(root, encoder_fingerprint(core))
        for row in parameter_report(model):
            if row.name == "total":
                echo(f"model: {row.total:,} parameters, {row.trainable:,} trainable ({geometry.fusion})")
        optimizer = build_optimizer(model, config.optim, cpu_offload=offloads_optimizer(accelerator))
        scheduler = build_scheduler(optimizer, config.optim, plan.total_steps)
        if accelerator.state.deepspeed_plugin is not None:
            accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = run.batch_size
        model, optimizer = accelerator.prepare(model, optimizer)
        accelerator.register_for_checkpointing(scheduler)
        engine = engine_name(accelerator)
        echo(f"engine: {engine} on {accelerator.device}, {accelerator.num_processes} process(es)")
        start_step = 0
        fingerprint = data_fingerprint(items)
        if checkpoint is not None:
            state = json.loads((checkpoint / TRAINER_STATE).read_text())
            check_resumable(state, config, fingerprint, accelerator.num_processes, checkpoint)
            accelerator.load_state(str(checkpoint))
            start_step = int(state["step"])
            echo(f"resumed from {checkpoint} at step {start_step}")
        log = MetricsLog(output, run.report_to, config.to_dict(), keep_until_step=start_step) if main else None
        if main:
            echo(f"metrics: {', '.join(log.sinks)} in {output}; {plan.total_steps} steps of {plan.global_batch} items "
                 f"({plan.steps_per_epoch} per epoch, {plan.left_out} items per epoch left out)")
        stepper = Stepper(accelerator, model, optimizer, scheduler, builder, collate, cache, config, plan, items)
        losses = []
        try:
            for step in range(start_step, plan.total_steps):
                row = stepper.step(step)
                losses.append(row["loss"])
                done = step + 1
                if main and (done % run.log_steps == 0 or done == plan.total_steps):
                    log.log(row)
                if progress is not None and main:
                    progress(done, plan.total_steps, row)
                if done % run.save_steps == 0 or done == plan.total_steps:
                    trainer.save_checkpoint(accelerator, done, {
                        "step": done, "epoch": step // plan.steps_per_epoch, "seed": run.seed,
                        "global_batch": plan.global_batch, "world": accelerator.num_processes,
                        "data_fingerprint": fingerprint, "n_items": len(items.items)})
            model_dir = trainer.save_model(accelerator, model, tokenizer, plan.total_steps)
        finally:
            if log is not None:
                log.close()
    skipped = dict(items.skipped)
    if stepper.failed:
        skipped["sample failed"] = stepper.failed
    return TrainResult(output, model_dir, start_step, plan.total_steps, tuple(losses), len(items.items), skipped,
                       None if cache is None else cache.stats(), engine)


def engine_name(accelerator) -> str:
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return "plain"
    zero = plugin.deepspeed_config.get("zero_optimization", {})
    return f"deepspeed zero-{zero.get('stage', 0)}" + (" offload" if offloads_optimizer(accelerator) else "")


def offloads_optimizer(accelerator) -> bool:
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return False
    device = plugin.deepspeed_config.get("zero_optimization", {}).get("offload_optimizer", {}).get("device", "none")
    return device == "cpu"


def check_resumable(state: dict, config: TrainConfig, fingerprint: str, world: int, checkpoint: Path) -> None:
    """Refuse to resume when the data or the order would differ from the checkpoint's run."""
    run = config.run
    now = {"data_fingerprint": fingerprint, "seed": run.seed, "world": world,
           "global_batch": world * run.batch_size * run.gradient_accumulation_steps}
    differ = [f"{key} {state.get(key)!r} → {value!r}" for key, value in now.items() if state.get(key) != value]
    if differ:
        raise ConfigError(f"cannot resume from {checkpoint}: {'; '.join(differ)}. Resuming must see the same items, "
                          "seed, processes and batch, or the data order would change; start a new run instead.")


class Stepper:
    """One optimizer step: items of the step → samples → forward/backward per micro-batch → update."""

    def __init__(self, accelerator, model, optimizer, scheduler, builder, collate, cache, config, plan, items):
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.builder, self.collate, self.cache, self.config, self.plan = builder, collate, cache, config, plan
        self.items = items.items
        self.core = core_model(accelerator.unwrap_model(model))
        self.failed = 0
        self.fallback = None
        self.orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self.orders:
            self.orders = {epoch: epoch_order(len(self.items), self.config.run.seed, epoch)}
        return self.orders[epoch]

    def micro_items(self, step: int, micro: int) -> list[int]:
        run, acc = self.config.run, self.accelerator
        epoch, within = divmod(step, self.plan.steps_per_epoch)
        start = within * self.plan.global_batch + (micro * acc.num_processes + acc.process_index) * run.batch_size
        return [int(i) for i in self.order(epoch)[start:start + run.batch_size]]

    def samples(self, indices: list[int]):
        """Samples of ``indices`` and the loss weight (0 when every one failed: a stand-in keeps all
        processes in step without moving the model)."""
        good = []
        for index in indices:
            try:
                good.append(self.builder(self.items[index]))
            except SampleError as exc:
                self.failed += 1
                self.accelerator.print(f"warning: skipped in training: {exc}")
        if good:
            self.fallback = good
            return good, 1.0
        if self.fallback is None:
            for item in self.items:
                try:
                    self.fallback = [self.builder(item)]
                    break
                except SampleError:
                    continue
            else:
                raise SampleError("no item of the data can be decoded; check the videos.")
        return self.fallback, 0.0

    def geometry_features(self, batch, samples):
        """Encoder features from the cache, or computed (and cached) when any process misses one."""
        import torch

        cache = self.cache
        if cache is None or not cache.enabled:
            return None
        visual = self.core.model.visual
        width = 8 * visual.geometry.encoder_width
        rows = (batch["video_grid_thw"].prod(-1) // visual.spatial_merge_unit).tolist()
        keys = [key for sample in samples for key in sample.extra["view_keys"]]
        found = [cache.get(key, n, width) for key, n in zip(keys, rows)]
        missing = torch.tensor([float(any(f is None for f in found))], device=self.accelerator.device)
        if float(self.accelerator.reduce(missing, reduction="sum")) == 0:
            return [f.to(self.accelerator.device) for f in found]
        with torch.no_grad(), self.accelerator.autocast():
            computed = visual.encoder_features(batch["pixel_values_videos"], batch["video_grid_thw"])
        for key, value, hit in zip(keys, computed, found):
            if hit is None:
                cache.put(key, value)
        return [c.detach() for c in computed]

    def step(self, step: int) -> dict:
        import torch

        acc, run = self.accelerator, self.config.run
        started = time.perf_counter()
        losses, tokens, grad_norm = [], 0, None
        # The rates this step applies (the scheduler moves them after the update).
        rates = {group.get("name", str(i)): float(group["lr"])
                 for i, group in enumerate(self.scheduler.optimizer.param_groups)}
        pad = self.core.geometry.token_ids.endoftext
        for micro in range(run.gradient_accumulation_steps):
            samples, weight = self.samples(self.micro_items(step, micro))
            batch = {k: v.to(acc.device) for k, v in self.collate(samples, pad_id=pad).items()}
            features = self.geometry_features(batch, samples)
            with acc.accumulate(self.model):
                out = self.model(**batch, geometry_features=features)
                acc.backward(out.loss * weight)
                if acc.sync_gradients:
                    if self.config.optim.max_grad_norm > 0:
                        norm = acc.clip_grad_norm_(self.model.parameters(), self.config.optim.max_grad_norm)
                        grad_norm = None if norm is None else float(norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
            if weight:
                losses.append(out.loss.detach().float())
            tokens += int(batch["attention_mask"].sum())
        local = torch.stack(losses).mean() if losses else torch.tensor(float("nan"))
        counts = torch.tensor([float(len(losses) > 0), float(tokens)], device=acc.device)
        loss_sum = acc.reduce(torch.nan_to_num(local.to(acc.device)) * counts[0], reduction="sum")
        counts = acc.reduce(counts, reduction="sum")
        elapsed = time.perf_counter() - started
        row = {"step": step + 1, "epoch": step // self.plan.steps_per_epoch,
               "loss": float(loss_sum / counts[0]) if counts[0] else float("nan"),
               "lr": rates,
               "grad_norm": grad_norm, "tokens": int(counts[1]), "tokens_per_s": float(counts[1]) / elapsed,
               "step_time_s": elapsed, "failed_items": self.failed}
        if self.cache is not None:
            row["geometry_cache_hits"] = self.cache.hits
        return row


def replace_run(config: TrainConfig, **changes) -> TrainConfig:
    """``config`` with ``run`` fields replaced (a small helper for callers and tests)."""
    return replace(config, run=replace(config.run, **changes))
