"""Optimizer parameter groups with their own learning rates, and the warm-up schedules.

Groups follow the reference's naming rule (``trainer.py``, VLM_FACTS §1.7): a trainable parameter
whose name holds "merger" (Qwen's merger, the spatial merger) takes ``merger_learning_rate``; any
other under "visual" (Q-Formers, queries, GeoSR fusion) ``geometry_learning_rate``; the rest (LLM,
lm_head, LoRA adapters) ``learning_rate``. Biases and 1-D tensors (norm scales) get no weight
decay. The reference's shipped DeepSpeed config replaced these groups by one at 2e-7; recon4d
builds the optimizer itself and its DeepSpeed configs carry no ``optimizer``/``scheduler`` block,
so the groups reach the optimizer that steps (tests/vlm/test_train.py checks both paths).
"""

from __future__ import annotations

import math
from typing import Callable

from recon4d.vlm.train_config import OptimSettings
from recon4d.vlm.trainable import plain_name

GROUP_NAMES = ("llm", "merger", "geometry")


def group_of(name: str) -> str:
    """"merger", "geometry" or "llm" for a parameter name (the reference's rule)."""
    name = plain_name(name)
    if "merger" in name:
        return "merger"
    if "visual" in name:
        return "geometry"
    return "llm"


def decays(name: str, parameter) -> bool:
    """Weight decay applies to matrices, not to biases and 1-D scales."""
    return parameter.ndim >= 2 and not plain_name(name).endswith(".bias")


def param_groups(model, settings: OptimSettings) -> list[dict]:
    """Non-empty AdamW groups ``{"name", "params", "lr", "weight_decay"}`` over the trainable
    parameters, named ``llm``, ``llm_no_decay``, ``merger``, ... ."""
    rates = {"llm": settings.learning_rate, "merger": settings.merger_learning_rate,
             "geometry": settings.geometry_learning_rate}
    buckets: dict[str, list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        kind = group_of(name)
        key = kind if decays(name, parameter) else f"{kind}_no_decay"
        buckets.setdefault(key, []).append(parameter)
    groups = []
    for kind in GROUP_NAMES:
        for key, decay in ((kind, settings.weight_decay), (f"{kind}_no_decay", 0.0)):
            if key in buckets:
                groups.append({"name": key, "params": buckets[key], "lr": rates[kind], "weight_decay": decay})
    return groups


def build_optimizer(model, settings: OptimSettings, cpu_offload: bool = False):
    """AdamW over :func:`param_groups`; DeepSpeed's CPU Adam (same update) when the optimizer state
    is offloaded to the CPU, as ZeRO-Offload requires."""
    import torch

    groups = param_groups(model, settings)
    if not groups:
        raise ValueError("no trainable parameters: check model.train_llm / train_merger / lora_rank.")
    betas = (settings.adam_beta1, settings.adam_beta2)
    if cpu_offload:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, lr=settings.learning_rate, betas=betas, eps=settings.adam_epsilon,
                                weight_decay=settings.weight_decay, adamw_mode=True)
    return torch.optim.AdamW(groups, lr=settings.learning_rate, betas=betas, eps=settings.adam_epsilon,
                             weight_decay=settings.weight_decay)


def warmup_steps(settings: OptimSettings, total_steps: int) -> int:
    """Warm-up length: ``warmup_steps`` or ceil(ratio · total) (as HF's Trainer rounds)."""
    if settings.warmup_steps is not None:
        return settings.warmup_steps
    return math.ceil(settings.warmup_ratio * total_steps)


def lr_factor(settings: OptimSettings, total_steps: int) -> Callable[[int], float]:
    """Multiplier of every group's learning rate at optimizer step s (0-based): linear warm-up from 0,
    then cosine to 0 at ``total_steps`` or constant (HF Trainer's schedules, which the reference uses)."""
    warmup = warmup_steps(settings, total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if settings.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))

    return factor


def build_scheduler(optimizer, settings: OptimSettings, total_steps: int):
    """A LambdaLR that scales each group's own learning rate by :func:`lr_factor`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(settings, total_steps))
