"""Checkpoint layout: the released DSR/GeoSR key names (transformers 4.51) and the module groups.

transformers 5 nests the modules as ``model.visual.*`` and ``model.language_model.*``; the
released checkpoints (and Qwen's own) use ``visual.*`` and ``model.*``. recon4d registers the
stock Qwen2.5-VL renaming for its model class, so ``from_pretrained`` reads the released layout
and ``save_pretrained`` writes it back (VLM_FACTS §3).
"""

from __future__ import annotations

import json
from pathlib import Path

from recon4d.vlm.configuration import VLMConfigError

# The modules recon4d adds, by group; a checkpoint holds each group wholly or not at all.
GROUPS = {
    "geometry encoder": ("visual.spatial_encoder.",),
    "spatial merger": ("visual.spatial_merger.",),
    "Q-Formers": ("visual.q_former_queries", "visual.q_former_1.", "visual.q_former_2.", "visual.q_former_norm."),
    "GeoSR fusion": ("visual.geometry_q_norm.", "visual.geometry_kv_norm.", "visual.geometry_kv_attn.",
                     "visual.gated_fusion_norm_visual.", "visual.gated_fusion_norm_geometry.",
                     "visual.gated_fusion_proj."),
}


def released_key(key: str) -> str:
    """A transformers-5 state-dict key in the released (4.51) layout: ``model.visual.x`` → ``visual.x``,
    ``model.language_model.x`` → ``model.x``; ``lm_head.*`` unchanged."""
    if key.startswith("model.visual."):
        return key[len("model."):]
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    return key


def model_key(key: str) -> str:
    """Inverse of :func:`released_key`."""
    if key.startswith("visual."):
        return "model." + key
    if key.startswith("model.") and not key.startswith(("model.visual.", "model.language_model.")):
        return "model.language_model." + key[len("model."):]
    return key


def group_of(released: str) -> str | None:
    """The recon4d module group of a released-layout key, or None for a stock Qwen2.5-VL key."""
    for name, prefixes in GROUPS.items():
        if released.startswith(prefixes):
            return name
    return None


def fusion_of_keys(keys) -> str:
    """The fusion a set of released-layout keys was saved from ("none" for a stock Qwen2.5-VL)."""
    groups = {group_of(key) for key in keys}
    if "GeoSR fusion" in groups:
        return "geosr"
    if "Q-Formers" in groups:
        return "gsm"
    if "spatial merger" in groups:
        return "add"
    return "none"


def checkpoint_keys(folder: str | Path) -> list[str] | None:
    """Tensor names of a local checkpoint folder (safetensors, sharded or not); None if not local."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return sorted(json.loads(index.read_text())["weight_map"])
    single = folder / "model.safetensors"
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), "pt") as handle:
            return sorted(handle.keys())
    return None


def checkpoint_shapes(folder: str | Path, keys) -> dict[str, tuple[int, ...]]:
    """Shapes of the named tensors of a local safetensors folder (read from the headers only)."""
    from safetensors import safe_open

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    files = (json.loads(index.read_text())["weight_map"] if index.is_file()
             else {key: "model.safetensors" for key in keys})
    shapes = {}
    for name in sorted(set(files[key] for key in keys if key in files)):
        with safe_open(str(folder / name), "pt") as handle:
            for key in keys:
                if files.get(key) == name:
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


DINOV2_HEAD_WIDTH = 64
"""Every DINOv2 ViT (S/B/L/g) uses 64-wide heads; a checkpoint stores no head count."""


def encoder_sizes(folder: str | Path, keys: list[str]) -> dict[str, int]:
    """Geometry-encoder sizes of a released-style folder, read from its tensor shapes (a released
    ``config.json`` does not state them): width, depth, heads, registers, position grid, patch."""
    prefix = "visual.spatial_encoder."
    if prefix + "pos_embed" not in keys:
        return {}
    shapes = checkpoint_shapes(folder, [prefix + name for name in ("pos_embed", "register_tokens",
                                                                    "patch_embed.proj.weight")])
    width = shapes[prefix + "pos_embed"][-1]
    grid = int(round((shapes[prefix + "pos_embed"][1] - 1) ** 0.5))
    depth = len({key.split(".")[3] for key in keys if key.startswith(prefix + "blocks.")})
    return {"encoder_width": width, "encoder_depth": depth, "encoder_heads": max(1, width // DINOV2_HEAD_WIDTH),
            "encoder_registers": shapes[prefix + "register_tokens"][1], "encoder_pos_grid": grid,
            "spatial_patch_size": shapes[prefix + "patch_embed.proj.weight"][-1]}


def check_loaded_groups(model_keys, missing: set[str], unexpected: set[str], source: str) -> list[str]:
    """Raise on keys a load would silently drop or half-fill; return the groups that were absent.

    Allowed: a group of recon4d modules wholly missing (a stock base, or a GSM checkpoint loaded
    as GeoSR), which is then initialised. Not allowed: unexpected keys, missing stock keys, or a
    group only partly present. Keys in the transformers-5 layout.
    """
    problems = []
    if unexpected:
        fusion = fusion_of_keys(released_key(k) for k in unexpected)
        hint = f" (they look like a {fusion!r} checkpoint: pass fusion={fusion!r})" if fusion != "none" else ""
        problems.append(f"{len(unexpected)} tensors the model has no place for{hint}: "
                        f"{', '.join(sorted(unexpected)[:8])}")
    missing_released = {released_key(k) for k in missing}
    stock_missing = sorted(k for k in missing_released if group_of(k) is None)
    if stock_missing:
        problems.append(f"{len(stock_missing)} Qwen2.5-VL tensors are missing: {', '.join(stock_missing[:8])}")
    absent = []
    for name in GROUPS:
        wanted = {released_key(k) for k in model_keys if group_of(released_key(k)) == name}
        lacking = wanted & missing_released
        if lacking and lacking != wanted:
            problems.append(f"the {name} is only partly in the checkpoint (missing {', '.join(sorted(lacking)[:8])})")
        elif lacking:
            absent.append(name)
    if problems:
        raise VLMConfigError(f"{source} does not fit this model: {'; '.join(problems)}. Use a checkpoint of the "
                             "same fusion and size, or a stock Qwen2.5-VL base.")
    return absent
