"""Loading π³ weights: strict safetensors loading and the procedural test weights (DESIGN §8)."""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from torch import Tensor, nn

from recon4d.optional import require
from recon4d.errors import Recon4dError

NOT_PROCEDURAL = ("image_mean", "image_std")


class CheckpointError(Recon4dError, KeyError):
    """A checkpoint's tensors do not match the model's state dict (names or shapes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def procedural_tensor(key: str, shape: tuple[int, ...]) -> Tensor:
    """The deterministic stand-in for one checkpoint tensor: N(0, 0.02²) seeded by crc32(key)."""
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    return torch.randn(shape, generator=generator) * 0.02


def procedural_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Procedural weights for every tensor of ``model`` except the ImageNet mean/std buffers.

    They stand in for the public checkpoint in numeric tests (DESIGN §8); load them with
    ``model.load_state_dict(procedural_state_dict(model))``.
    """
    state = model.state_dict()
    return {key: (state[key].clone() if key in NOT_PROCEDURAL else procedural_tensor(key, tuple(state[key].shape)))
            for key in sorted(state)}


def check_state_dict(expected: dict[str, Tensor], found: dict[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming missing, unexpected and mis-shaped tensors."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mis_shaped = sorted(f"{k} {tuple(found[k].shape)} (model wants {tuple(expected[k].shape)})"
                        for k in set(expected) & set(found) if found[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if mis_shaped:
        problems.append(f"wrong shapes: {', '.join(mis_shaped)}")
    if problems:
        raise CheckpointError(
            f"{source} does not match the π³ state dict ({'; '.join(problems)}). "
            "Use the public π³ checkpoint (model.safetensors) or one saved from this model."
        )


def load_safetensors(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a ``.safetensors`` file, on CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"π³ weights file {path} does not exist; see `recon4d weights list`.")
    safetensors_torch = require("safetensors.torch", extra="pi3", purpose="loading π³ weights")
    return safetensors_torch.load_file(str(path), device="cpu")
