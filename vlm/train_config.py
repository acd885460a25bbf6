"""Training configuration: four typed sections read from YAML, with ``--set section.key=value`` overrides.

    model:  what to train (a random-init size or a checkpoint folder, fusion, π³ encoder, tokenizer,
            which parts train, LoRA)
    data:   the question file, videos, frames and pixels, the geometry cache
    optim:  per-group learning rates, weight decay, clipping, schedule with warm-up
    run:    output folder, steps, batch, precision, checkpointing, DeepSpeed, logging

Defaults are the reference recipe (VLM_FACTS §1.7), except that the per-group learning rates
really apply (the reference's DeepSpeed ``optimizer`` block overrides them). Paths written in a
YAML file are relative to that file; paths given with ``--set`` are relative to the working
folder. Unknown sections or keys and values of the wrong type are errors naming the valid ones.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recon4d.errors import OptionError

MODEL_SIZES = ("micro", "tiny", "7b")
"""Random-initialised architectures: ``micro_config`` (CPU tests), ``tiny_config`` (the golden's), Qwen2.5-VL-7B."""
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("bf16", "fp32")
REPORTERS = ("jsonl", "tensorboard", "wandb")
LORA_TARGET = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class ConfigError(OptionError):
    """A training configuration is invalid (unknown key, wrong type, inconsistent values)."""


@dataclass(frozen=True)
class ModelSettings:
    """What is trained."""

    base: str = "micro"
    """A random-initialised size ("micro", "tiny", "7b") or a checkpoint folder (recon4d, released
    DSR/GeoSR, or stock Qwen2.5-VL)."""
    fusion: str | None = None
    """"none", "add", "gsm" or "geosr"; default: the folder's own, or "gsm" for a random size."""
    pi3: str | None = None
    """π³ ``model.safetensors`` whose encoder becomes the geometry encoder (needed on a stock base)."""
    tokenizer: str | None = None
    """A folder with the tokenizer, or "bytes" (tiny models); default: the base folder, else bytes."""
    train_merger: bool = True
    """Train Qwen's patch merger (the reference's ``tune_mm_mlp``)."""
    train_llm: bool = True
    """Train the LLM and lm_head (``tune_mm_llm``); with ``lora_rank`` > 0 only LoRA adapters train."""
    lora_rank: int = 0
    """LoRA rank on the LLM's projections (peft); 0 = full fine-tune."""
    lora_alpha: float = 16.0
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    lora_target: str = LORA_TARGET
    """Regex of the module names that get LoRA adapters."""
    init_seed: int = 0
    """Seed of the random initialisation (random sizes and modules a base lacks)."""


@dataclass(frozen=True)
class DataSettings:
    """What is read."""

    train: str | None = None
    """Question file: Qwen conversation .json, ``recon4d qa`` .jsonl, DSR .json or DSR-Bench .parquet."""
    video_root: str | None = None
    """Folder that relative video paths are looked up in first (then the question file's folder)."""
    frames: int = 32
    """Frames per video."""
    sampling: str = "whole"
    """"whole" (the reference: linspace over the whole file) or "visible" (only up to the record's
    last visible frame, so direction-prediction answers are never shown)."""
    min_pixels: int = 784
    """Smallest frame area after Qwen's resize (reference ``video_min_frame_pixels``)."""
    max_pixels: int = 230400
    """Largest frame area after Qwen's resize (reference ``video_max_frame_pixels``)."""
    max_length: int = 8192
    """Longest sample in tokens (reference ``model_max_length``); longer ones are skipped and reported."""
    geometry_cache: str = "auto"
    """"auto" (``DATA.geometry-cache.zarr`` beside the question file), "off", or a folder."""


@dataclass(frozen=True)
class OptimSettings:
    """How parameters move."""

    learning_rate: float = 2e-7
    """The LLM and lm_head (and LoRA adapters)."""
    merger_learning_rate: float = 1e-6
    """Parameters whose name holds "merger": Qwen's merger and the spatial merger (reference ``mm_projector_lr``)."""
    geometry_learning_rate: float = 1e-6
    """Other vision-side parameters: Q-Formers, queries, GeoSR fusion (reference ``vision_tower_lr``)."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices (biases and norm scales get none)."""
    adam_beta1: float = 0.9
    """AdamW β1."""
    adam_beta2: float = 0.999
    """AdamW β2."""
    adam_epsilon: float = 1e-8
    """AdamW ε."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    schedule: str = "cosine"
    """"cosine" (to 0 at the last step) or "constant", after a linear warm-up."""
    warmup_ratio: float = 0.03
    """Warm-up as a share of the optimizer steps (reference 0.03)."""
    warmup_steps: int | None = None
    """Warm-up steps; overrides ``warmup_ratio`` when set."""


@dataclass(frozen=True)
class RunSettings:
    """How the run goes."""

    output: str | None = None
    """Run folder: config.yaml, metrics.jsonl, checkpoints/, model/ (the trained model)."""
    epochs: int = 1
    """Passes over the data."""
    max_steps: int | None = None
    """Optimizer steps; overrides ``epochs`` when set."""
    batch_size: int = 1
    """Samples per micro-batch per process (the reference uses 1)."""
    gradient_accumulation_steps: int = 4
    """Micro-batches per optimizer step."""
    precision: str = "bf16"
    """"bf16" (autocast; frozen weights stored in bf16) or "fp32"."""
    gradient_checkpointing: bool = True
    """Recompute activations in backward (LLM and ViT blocks)."""
    deepspeed: str | None = None
    """DeepSpeed JSON (configs/deepspeed/zero{2,3,3_offload}.json) for ``accelerate launch``; None = plain."""
    device: str = "auto"
    """"auto", "cpu" or "cuda" (``accelerate launch`` decides under DeepSpeed)."""
    seed: int = 0
    """Seed of the data order and of everything random in training (GeoSR masking, dropout)."""
    save_steps: int = 500
    """Checkpoint every this many optimizer steps (and at the end)."""
    save_total_limit: int = 2
    """Checkpoints kept (oldest removed first); 0 keeps all."""
    log_steps: int = 1
    """Write metrics every this many optimizer steps."""
    report_to: tuple[str, ...] = ("jsonl", "tensorboard")
    """Metric sinks: "jsonl" (always), "tensorboard" and "wandb" when installed."""


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    model: ModelSettings = field(default_factory=ModelSettings)
    """What is trained."""
    data: DataSettings = field(default_factory=DataSettings)
    """What is read."""
    optim: OptimSettings = field(default_factory=OptimSettings)
    """How parameters move."""
    run: RunSettings = field(default_factory=RunSettings)
    """How the run goes."""

    def check(self) -> TrainConfig:
        """Raise ConfigError for values that are invalid together or alone; return self."""
        problems = []
        m, d, o, r = self.model, self.data, self.optim, self.run
        if m.fusion is not None and m.fusion not in ("none", "add", "gsm", "geosr"):
            problems.append(f"model.fusion must be none, add, gsm or geosr (got {m.fusion!r})")
        if m.lora_rank < 0:
            problems.append(f"model.lora_rank must be >= 0 (got {m.lora_rank})")
        if m.lora_rank and not m.train_llm:
            problems.append("model.lora_rank > 0 adapts the LLM, which model.train_llm = false freezes; pick one")
        if not d.train:
            problems.append("data.train is not set: give the question file (--data FILE or --set data.train=FILE)")
        if d.sampling not in ("whole", "visible"):
            problems.append(f"data.sampling must be whole or visible (got {d.sampling!r})")
        if d.frames < 1 or d.max_length < 1 or not 0 < d.min_pixels <= d.max_pixels:
            problems.append("data.frames and data.max_length must be >= 1 and 0 < data.min_pixels <= data.max_pixels")
        if o.schedule not in SCHEDULES:
            problems.append(f"optim.schedule must be one of {', '.join(SCHEDULES)} (got {o.schedule!r})")
        if min(o.learning_rate, o.merger_learning_rate, o.geometry_learning_rate) < 0 or o.weight_decay < 0:
            problems.append("learning rates and weight decay must be >= 0")
        if not 0 <= o.warmup_ratio < 1 or (o.warmup_steps is not None and o.warmup_steps < 0):
            problems.append("optim.warmup_ratio must lie in [0, 1) and optim.warmup_steps be >= 0")
        if not r.output:
            problems.append("run.output is not set: give the run folder (-o DIR or --set run.output=DIR)")
        if r.precision not in PRECISIONS:
            problems.append(f"run.precision must be one of {', '.join(PRECISIONS)} (got {r.precision!r})")
        if r.device not in ("auto", "cpu", "cuda"):
            problems.append(f"run.device must be auto, cpu or cuda (got {r.device!r})")
        for name in ("epochs", "batch_size", "gradient_accumulation_steps", "save_steps", "log_steps"):
            if getattr(r, name) < 1:
                problems.append(f"run.{name} must be >= 1 (got {getattr(r, name)})")
        if r.max_steps is not None and r.max_steps < 1:
            problems.append(f"run.max_steps must be >= 1 (got {r.max_steps})")
        unknown = sorted(set(r.report_to) - set(REPORTERS))
        if unknown:
            problems.append(f"run.report_to accepts {', '.join(REPORTERS)} (got {', '.join(unknown)})")
        if problems:
            raise ConfigError("invalid training configuration: " + "; ".join(problems) + ".")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) for YAML/JSON."""
        out = dataclasses.asdict(self)
        out["run"]["report_to"] = list(self.run.report_to)
        return out


SECTIONS = {f.name: f for f in fields(TrainConfig)}
PATH_KEYS = {("model", "base"), ("model", "pi3"), ("model", "tokenizer"), ("data", "train"), ("data", "video_root"),
             ("data", "geometry_cache"), ("run", "output"), ("run", "deepspeed")}
KEYWORDS = {("model", "base"): MODEL_SIZES, ("model", "tokenizer"): ("bytes",), ("data", "geometry_cache"): ("auto", "off")}


def _section_class(name: str):
    return typing.get_type_hints(TrainConfig)[name]


def _coerce(section: str, key: str, value: Any, hint) -> Any:
    """``value`` as the field's type, or ConfigError."""
    where = f"{section}.{key}"
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} cannot be empty (null).")
    base = next((a for a in args if a is not type(None)), hint) if args and optional else hint
    if typing.get_origin(base) is tuple:
        items = value if isinstance(value, (list, tuple)) else [v.strip() for v in str(value).split(",") if v.strip()]
        if not all(isinstance(v, str) for v in items):
            raise ConfigError(f"{where} must be a list of names (got {value!r}).")
        return tuple(items)
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false (got {value!r}).")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be a whole number (got {value!r}).")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "2e-7" (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{where} must be a number (got {value!r}).")
    if base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string (got {value!r}).")
    raise ConfigError(f"{where}: unsupported setting type {hint!r}.")


def _resolve_path(section: str, key: str, value, base_dir: Path | None):
    if value is None or base_dir is None or (section, key) not in PATH_KEYS:
        return value
    if value in KEYWORDS.get((section, key), ()):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def _apply(config: TrainConfig, section: str, key: str, value, base_dir: Path | None, source: str) -> TrainConfig:
    if section not in SECTIONS:
        raise ConfigError(f"{source}: unknown section {section!r}; the sections are {', '.join(SECTIONS)}.")
    cls = _section_class(section)
    hints = typing.get_type_hints(cls)
    if key not in hints:
        raise ConfigError(f"{source}: unknown key {section}.{key}; {section} has {', '.join(sorted(hints))}.")
    coerced = _resolve_path(section, key, _coerce(section, key, value, hints[key]), base_dir)
    return replace(config, **{section: replace(getattr(config, section), **{key: coerced})})


def from_mapping(data: Any, base_dir: Path | None = None, source: str = "config") -> TrainConfig:
    """A TrainConfig from a {section: {key: value}} mapping (unchecked: call :meth:`TrainConfig.check`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections ({', '.join(SECTIONS)}); got a "
                          f"{type(data).__name__}.")
    config = TrainConfig()
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r}; the sections are {', '.join(SECTIONS)}.")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping of keys; got {values!r}"[:300])
        for key, value in values.items():
            config = _apply(config, section, str(key), value, base_dir, source)
    return config


def load_config(path: str | Path, overrides: list[str] = (), cwd: Path | None = None) -> TrainConfig:
    """Read a YAML config and apply ``section.key=value`` overrides (values parsed as YAML)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"training config {path} does not exist; start from configs/tiny.yaml or "
                          "configs/qwen2_5_vl_7b.yaml.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not a readable YAML file ({str(exc).splitlines()[0]}).") from None
    config = from_mapping(data, path.resolve().parent, str(path))
    return apply_overrides(config, overrides, cwd or Path.cwd())


def apply_overrides(config: TrainConfig, overrides: list[str], cwd: Path) -> TrainConfig:
    """Apply ``section.key=value`` strings (value parsed as YAML; paths relative to ``cwd``)."""
    import yaml

    for item in overrides:
        name, sep, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. optim.learning_rate=1e-5.")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        config = _apply(config, section, key.strip(), value, cwd, f"--set {item}")
    return config


def dump_yaml(config: TrainConfig) -> str:
    """The config as YAML (what a run saves as ``config.yaml``)."""
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
