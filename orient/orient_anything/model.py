"""The Orient Anything network (Wang et al. 2024): DINOv2 → CLS token → MLP head, loaded strictly.

It mirrors the public ``DINOv2_MLP`` (SpatialVision/Orient-Anything, ``vision_tower.py``) so the
public checkpoint (``dino_weight.pt``, a ``torch.save``-d state dict of the whole model) loads
with every key and shape checked:

    dinov2.*              transformers ``Dinov2Model`` (the public code subclasses it only to
                          change token masking during training; same parameters, same eval forward)
    down_sampler.net1.*   Linear(C, n) + BatchNorm1d(n) + ReLU      C: DINOv2 width (1024 for -L)
    down_sampler.net2.*   Linear(n, n) + BatchNorm1d(n)             n: outputs, 722 or 902

The head reads ``last_hidden_state[:, 0]``, the CLS token after DINOv2's final layernorm (the
same tensor as ``pooler_output``). Its hidden width equals its output count, as in the public
``MLP_dim(in_dim, out_dim)``.

Position embeddings: the checkpoint was trained and published with transformers 4.x, whose DINOv2
resamples its 37×37 position grid to the patch grid of a smaller image with the DINO "+0.1"
scale factor; transformers 5 resamples to the target size instead, which moves the sampling
positions and changes CLS by up to ~4e-3 on 224-pixel inputs. :func:`public_position_encoding`
does the 4.x arithmetic and :class:`OrientAnythingNet` installs it, whichever transformers is
installed.

Key names: the checkpoint was saved with transformers 4.x, whose DINOv2 attention tensors are
``attention.attention.{query,key,value}`` and ``attention.output.dense``; transformers 5 calls
them ``attention.{q,k,v,o}_proj``. :func:`to_public_names` and :func:`to_model_names` translate,
so checks and error messages always speak the public checkpoint's names, whichever transformers
is installed.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import torch
from torch import Tensor, nn

from recon4d.checks import check_shape
from recon4d.optional import require
from recon4d.errors import Recon4dError
from recon4d.orient.orient_anything.layout import ROTATION_BINS

__all__ = [
    "CONFIG_FILE",
    "CheckpointError",
    "OrientAnythingNet",
    "OrientHead",
    "find_checkpoint",
    "load_dinov2_config",
    "load_orient_anything",
    "public_position_encoding",
    "read_state_dict",
    "to_model_names",
    "to_public_names",
]

CONFIG_FILE = Path("dinov2") / "config.json"
"""The DINOv2 backbone's transformers config (facebook/dinov2-large ``config.json``), inside the component."""
_LAST_LAYER = "down_sampler.net2.0.weight"
# transformers 4.x (public checkpoint) name → transformers 5 name, for DINOv2 attention.
_RENAMES = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)


class CheckpointError(Recon4dError, KeyError):
    """An Orient Anything checkpoint does not match the network (names or shapes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _rename(key: str, pairs) -> str:
    for old, new in pairs:
        if old in key:
            return key.replace(old, new)
    return key


def to_public_names(state: dict) -> dict:
    """The same mapping with transformers-5 DINOv2 names written as in the public checkpoint."""
    back = tuple((new, old) for old, new in _RENAMES)
    return {_rename(key, back): value for key, value in state.items()}


def to_model_names(state: dict, model: nn.Module) -> dict:
    """``state`` (public or transformers-5 names) renamed to what ``model``'s transformers uses."""
    public = to_public_names(state)
    if any("attention.attention.query." in key for key in model.state_dict()):
        return public
    return {_rename(key, _RENAMES): value for key, value in public.items()}


def public_position_encoding(position_embeddings: Tensor, patch_size: int, height: int, width: int) -> Tensor:
    """DINOv2 position embeddings (1, 1 + n², C) for a (height, width)-pixel input, as transformers 4.x.

    The CLS embedding is kept; the n×n patch grid is resampled bicubically (align_corners=False,
    in float32 whatever the parameter's dtype, cast back after) to (height // patch_size,
    width // patch_size) rows and columns, returned as (1, 1 + rows·cols, C). The resampling is
    given a *scale factor* of (rows + 0.1) / n and (cols + 0.1) / n, not a target size: the DINO
    "+0.1" guards the floor in the output size, and since torch samples source positions at
    (i + 0.5) / scale − 0.5, this factor (not rows / n) is what the public model saw during
    training. An input with as many patches as the grid and a square shape gets the grid as is.
    """
    n_positions = position_embeddings.shape[1] - 1
    grid = int(math.sqrt(n_positions))
    rows, cols = height // patch_size, width // patch_size
    if rows * cols == n_positions and height == width:
        return position_embeddings
    dim = position_embeddings.shape[-1]
    patches = position_embeddings[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    scale = ((rows + 0.1) / grid, (cols + 0.1) / grid)
    resampled = nn.functional.interpolate(patches.to(torch.float32), scale_factor=scale, mode="bicubic",
                                          align_corners=False).to(patches.dtype)
    if tuple(resampled.shape[-2:]) != (rows, cols):  # only if the +0.1 no longer covers a rounding
        raise Recon4dError(f"DINOv2 position grid {grid}×{grid} resampled to {tuple(resampled.shape[-2:])}, "
                           f"not the {rows}×{cols} patches of a {height}×{width} input.")
    return torch.cat([position_embeddings[:, :1], resampled.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)], dim=1)


def _public_interpolate_pos_encoding(embeddings: nn.Module, tokens: Tensor, height: int, width: int) -> Tensor:
    """Stands in for ``Dinov2Embeddings.interpolate_pos_encoding`` (bound to the module); ``tokens``
    (B, 1 + patches, C) are unused, as the grid follows from the pixel size."""
    patch_size = embeddings.patch_embeddings.patch_size
    patch_size = patch_size if isinstance(patch_size, int) else patch_size[0]
    return public_position_encoding(embeddings.position_embeddings, patch_size, height, width)


class OrientHead(nn.Module):
    """The public ``MLP_dim``: (B, in_dim) → (B, n_outputs) logits; hidden width = n_outputs."""

    def __init__(self, in_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.net1 = nn.Sequential(nn.Linear(in_dim, n_outputs), nn.BatchNorm1d(n_outputs), nn.ReLU())
        self.net2 = nn.Sequential(nn.Linear(n_outputs, n_outputs), nn.BatchNorm1d(n_outputs))

    def forward(self, features: Tensor) -> Tensor:
        return self.net2(self.net1(features))


class OrientAnythingNet(nn.Module):
    """DINOv2 + orientation head, state-dict compatible with the public checkpoint.

    ===================  ===============  ==================================================
    name                 shape            meaning
    ===================  ===============  ==================================================
    pixel_values (in)    (B, 3, H, W)     ImageNet-normalised RGB (224×224 in the public code)
    logits (out)         (B, n)           360 azimuth, 180 polar, 180|360 rotation, 2 conf
    ===================  ===============  ==================================================
    """

    def __init__(self, dinov2_config, n_outputs: int = 722) -> None:
        super().__init__()
        transformers = require("transformers", extra="track", purpose="the Orient Anything backbone")
        if n_outputs not in ROTATION_BINS:
            raise Recon4dError(f"Orient Anything heads have 722 or 902 outputs, not {n_outputs}.")
        self.n_outputs = n_outputs
        self.dinov2 = transformers.Dinov2Model(dinov2_config)
        # transformers 5 samples the position grid differently from the 4.x the checkpoint was
        # trained with (module docstring); a bound method survives deepcopy and .to().
        embeddings = self.dinov2.embeddings
        embeddings.interpolate_pos_encoding = types.MethodType(_public_interpolate_pos_encoding, embeddings)
        self.down_sampler = OrientHead(dinov2_config.hidden_size, n_outputs)

    @property
    def rotation_bins(self) -> int:
        return ROTATION_BINS[self.n_outputs]

    def cls_token(self, pixel_values: Tensor) -> Tensor:
        """(B, C) CLS token after DINOv2's final layernorm: what the head reads."""
        check_shape("pixel_values", pixel_values, ("B", 3, "H", "W"))
        return self.dinov2(pixel_values=pixel_values).last_hidden_state[:, 0]

    def forward(self, pixel_values: Tensor) -> Tensor:
        """Logits (B, n) of normalised images (B, 3, H, W); see the class docstring."""
        return self.down_sampler(self.cls_token(pixel_values))


def load_dinov2_config(directory: Path):
    """The ``transformers.Dinov2Config`` of ``directory/dinov2/config.json``."""
    transformers = require("transformers", extra="track", purpose="the Orient Anything backbone")
    file = Path(directory) / CONFIG_FILE
    if not file.is_file():
        raise Recon4dError(f"the DINOv2 config {file} is missing. Orient Anything is built on DINOv2: copy the "
                           "config.json of the backbone it was trained on (facebook/dinov2-large for the public "
                           "checkpoint) to that path.")
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Recon4dError(f"{file} is not valid JSON ({exc}); copy facebook/dinov2-large's config.json "
                           "there again.") from exc
    if not isinstance(data, dict) or data.get("model_type", "dinov2") != "dinov2":
        kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise Recon4dError(f"{file} is not a DINOv2 config (model_type {kind!r}); use facebook/dinov2-large's "
                           "config.json.")
    return transformers.Dinov2Config.from_dict(data)


def find_checkpoint(directory: Path) -> Path:
    """The one ``*.pt`` file directly in ``directory``."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.pt") if p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files) if files else "none"
        raise Recon4dError(f"{directory} must hold exactly one Orient Anything checkpoint (*.pt), found {found}. "
                           "Put the public dino_weight.pt there (e.g. croplargeEX2/dino_weight.pt from "
                           "Viglong/Orient-Anything) and remove any other .pt file.")
    return files[0]


def read_state_dict(file: Path) -> dict[str, Tensor]:
    """The tensors of a ``torch.save``-d state dict, on CPU (memory-mapped when the format allows)."""
    file = Path(file)
    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated download, not a torch file, pickled objects...
        raise Recon4dError(f"{file} is not a readable torch state dict ({exc}); download the checkpoint "
                           "again.") from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise Recon4dError(f"{file} does not hold a state dict (a mapping of names to tensors) but "
                           f"{type(state).__name__}; use the public dino_weight.pt.")
    return dict(state)


def _check_state_dict(expected: dict[str, Tensor], found: dict[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming missing, unexpected and mis-shaped tensors (public names)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mis_shaped = sorted(f"{k} {tuple(found[k].shape)} (network wants {tuple(expected[k].shape)})"
                        for k in set(expected) & set(found) if found[k].shape != expected[k].shape)
    problems = [f"{what}: {', '.join(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", mis_shaped)) if keys]
    if problems:
        raise CheckpointError(
            f"{source} does not match the Orient Anything network built from dinov2/config.json "
            f"({'; '.join(problems)}). Use the public dino_weight.pt with the config.json of the DINOv2 it was "
            "trained on (facebook/dinov2-large for the large checkpoints)."
        )


def _n_outputs(state: dict[str, Tensor], source: str) -> int:
    if _LAST_LAYER not in state or state[_LAST_LAYER].ndim != 2:
        raise CheckpointError(f"{source} has no orientation head ({_LAST_LAYER} is missing); it is not an "
                              "Orient Anything checkpoint.")
    n_outputs = int(state[_LAST_LAYER].shape[0])
    if n_outputs not in ROTATION_BINS:
        raise CheckpointError(f"{source} has a head with {n_outputs} outputs; Orient Anything heads have 722 "
                              "(180 rotation bins) or 902 (360 rotation bins).")
    return n_outputs


def load_orient_anything(directory: Path) -> OrientAnythingNet:
    """Build the network from ``directory`` (``dinov2/config.json`` + one ``*.pt``) on CPU, eval mode.

    The number of outputs comes from the checkpoint's last layer; every key and shape must match
    (:class:`CheckpointError` names the ones that do not).
    """
    directory = Path(directory)
    config = load_dinov2_config(directory)
    file = find_checkpoint(directory)
    source = f"checkpoint {file}"
    found = to_public_names(read_state_dict(file))
    n_outputs = _n_outputs(found, source)
    # Built on the meta device: a random init of DINOv2-L would be thrown away.
    with torch.device("meta"):
        model = OrientAnythingNet(config, n_outputs)
    _check_state_dict(to_public_names(model.state_dict()), found, source)
    state = {key: value.float() if value.is_floating_point() else value for key, value in found.items()}
    model.load_state_dict(to_model_names(state, model), strict=True, assign=True)
    return model.eval()
