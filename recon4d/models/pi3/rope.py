"""2D rotary position embedding (RoPE) of the π³ decoder, as in CroCo/DUSt3R."""

from __future__ import annotations

import torch
from torch import Tensor


def patch_positions(n_images: int, grid_h: int, grid_w: int, n_special: int,
                    device: torch.device | None = None) -> Tensor:
    """(y, x) position of every token of ``n_images`` token sequences.

    Patch tokens sit at ``(row + 1, col + 1)`` in row-major order; the ``n_special`` tokens
    that come first get ``(0, 0)`` so that RoPE leaves them unrotated.

    Returns ``(n_images, n_special + grid_h * grid_w, 2)`` int64.
    """
    rows = torch.arange(grid_h, device=device)
    cols = torch.arange(grid_w, device=device)
    grid = torch.cartesian_prod(rows, cols) + 1
    special = torch.zeros(n_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid]).unsqueeze(0).expand(n_images, -1, -1)


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def _rope_1d(x: Tensor, positions: Tensor, base: float) -> Tensor:
    """Rotate ``x`` (B, heads, T, D) by integer ``positions`` (B, T) along one axis."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=x.device).float() / dim))
    angles = positions.to(inv_freq.dtype)[..., None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1).to(x.dtype)[:, None]
    return x * angles.cos() + _rotate_half(x) * angles.sin()


def rope_2d(x: Tensor, positions: Tensor, base: float) -> Tensor:
    """Apply 2D RoPE: the first half of each head's channels encodes y, the second x.

    ``x``: (B, heads, T, D) with D divisible by 4; ``positions``: (B, T, 2) integer (y, x).
    """
    y_part, x_part = x.chunk(2, dim=-1)
    return torch.cat([_rope_1d(y_part, positions[..., 0], base),
                      _rope_1d(x_part, positions[..., 1], base)], dim=-1)
