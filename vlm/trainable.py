"""The model a run trains: built from its settings, with the reference's frozen/trainable split.

Frozen (VLM_FACTS §1.7): Qwen's ViT (patch embedding and blocks) and the π³ geometry encoder.
Trainable: Qwen's merger (``train_merger``), the LLM and lm_head (``train_llm``; or only LoRA
adapters on its projections with ``lora_rank`` > 0), and every geometry module (spatial merger,
Q-Formers and queries, GeoSR fusion). :func:`parameter_report` counts each component, which
``recon4d train --dry-run`` prints from a model built on the meta device (nothing allocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recon4d.vlm.train_config import MODEL_SIZES, ModelSettings

COMPONENTS = (
    ("Qwen ViT", ("model.visual.patch_embed.", "model.visual.blocks.")),
    ("Qwen merger", ("model.visual.merger.",)),
    ("geometry encoder", ("model.visual.spatial_encoder.",)),
    ("spatial merger", ("model.visual.spatial_merger.",)),
    ("Q-Formers", ("model.visual.q_former_",)),
    ("GeoSR fusion", ("model.visual.geometry_", "model.visual.gated_fusion_")),
    ("LLM", ("model.language_model.",)),
    ("lm_head", ("lm_head.",)),
)
"""Component name → parameter-name prefixes (transformers-5 layout)."""
GEOMETRY_MODULES = ("model.visual.spatial_merger.", "model.visual.q_former_", "model.visual.geometry_",
                    "model.visual.gated_fusion_")


@dataclass(frozen=True)
class ComponentCount:
    """Parameters of one component."""

    name: str
    """Component name (see COMPONENTS; "LoRA adapters" for peft's)."""
    total: int
    """All parameters."""
    trainable: int
    """Parameters that require gradients."""

    @property
    def frozen(self) -> int:
        return self.total - self.trainable


def plain_name(name: str) -> str:
    """A parameter name without peft's wrapper prefix and LoRA's ``base_layer``."""
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".")


def component_of(name: str) -> str:
    name = plain_name(name)
    if ".lora_" in name:
        return "LoRA adapters"
    for component, prefixes in COMPONENTS:
        if name.startswith(prefixes):
            return component
    return "other"


def parameter_report(model) -> list[ComponentCount]:
    """Counts per component (those with parameters), in COMPONENTS order, then a "total" row."""
    totals: dict[str, list[int]] = {}
    for name, parameter in model.named_parameters():
        row = totals.setdefault(component_of(name), [0, 0])
        row[0] += parameter.numel()
        row[1] += parameter.numel() if parameter.requires_grad else 0
    order = [c for c, _ in COMPONENTS] + ["LoRA adapters", "other"]
    rows = [ComponentCount(c, *totals[c]) for c in order if c in totals]
    rows.append(ComponentCount("total", sum(r.total for r in rows), sum(r.trainable for r in rows)))
    return rows


def format_report(rows: list[ComponentCount]) -> str:
    """A fixed-width table: component, total, trainable, frozen."""
    lines = [f"{'component':<18} {'total':>15} {'trainable':>15} {'frozen':>15}"]
    for row in rows:
        lines.append(f"{row.name:<18} {row.total:>15,} {row.trainable:>15,} {row.frozen:>15,}")
    return "\n".join(lines)


def base_config(settings: ModelSettings):
    """The Hugging Face config of ``settings.base`` with the run's fusion (reads only config.json)."""
    from transformers import Qwen2_5_VLConfig

    from recon4d.vlm import micro_config, qwen2_5_vl_7b_config, tiny_config
    from recon4d.vlm.configuration import GeometryConfig, VLMConfigError, attach_geometry

    if settings.base in MODEL_SIZES:
        build = {"micro": micro_config, "tiny": tiny_config, "7b": qwen2_5_vl_7b_config}[settings.base]
        return build(settings.fusion or "gsm")
    folder = Path(settings.base)
    if not (folder / "config.json").is_file():
        raise VLMConfigError(f"model.base {folder} is neither a size ({', '.join(MODEL_SIZES)}) nor a checkpoint folder "
                             "with config.json; recon4d never downloads: fetch the checkpoint first.")
    config = Qwen2_5_VLConfig.from_pretrained(folder)
    geometry = GeometryConfig.from_hf_config(config, fusion=settings.fusion)
    return attach_geometry(config, geometry)


def set_trainable(model, settings: ModelSettings):
    """Apply the reference's frozen/trainable split (module docstring); returns the model."""
    model.requires_grad_(True)
    model.freeze_encoders()
    if not settings.train_merger:
        model.model.visual.merger.requires_grad_(False)
    if not settings.train_llm or settings.lora_rank:
        model.model.language_model.requires_grad_(False)
        model.lm_head.requires_grad_(False)
    return model


def add_lora(model, settings: ModelSettings):
    """Wrap the LLM's projections with LoRA adapters (peft); keeps the geometry modules and Qwen's
    merger trainable as :func:`set_trainable` left them. Returns the peft model."""
    from peft import LoraConfig, get_peft_model

    keep = {name for name, p in model.named_parameters() if p.requires_grad}
    config = LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=settings.lora_target, bias="none")
    wrapped = get_peft_model(model, config)
    for name, parameter in wrapped.named_parameters():
        if plain_name(name) in keep:
            parameter.requires_grad_(True)
    return wrapped


def build_model(settings: ModelSettings, meta: bool = False):
    """The model of ``settings``: random-initialised size or loaded folder, π³ encoder imported, the
    trainable split applied, LoRA added. ``meta=True`` builds it on the meta device (no memory;
    parameter counts only; no weights are read)."""
    import torch

    from recon4d.vlm import GeometryQwen2_5_VL

    config = base_config(settings)
    if meta:
        with torch.device("meta"):
            model = GeometryQwen2_5_VL(config)
    elif settings.base in MODEL_SIZES:
        torch.manual_seed(settings.init_seed)
        model = GeometryQwen2_5_VL(config)
    else:
        torch.manual_seed(settings.init_seed)
        model = GeometryQwen2_5_VL.from_pretrained(settings.base, config=config)
    if settings.pi3 and not meta:
        model.from_pi3(settings.pi3)
    set_trainable(model, settings)
    if settings.lora_rank:
        model = add_lora(model, settings)
    return model


def unwrap_lora(model):
    """The plain GeometryQwen2_5_VL: LoRA adapters merged into the weights when present."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def core_model(model):
    """The GeometryQwen2_5_VL inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
