"""Pre-norm transformer block shared by the DINOv2 encoder and the π³ decoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon4d.models.pi3.rope import rope_2d

LAYER_NORM_EPS = 1e-6


class Mlp(nn.Module):
    """Linear → GELU (exact) → Linear."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (CaiT)."""

    def __init__(self, width: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention (SDPA), optionally with per-head LayerNorm on q/k and 2D RoPE."""

    def __init__(self, width: int, heads: int, qk_norm: bool = False,
                 rope_base: float | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        head_width = width // heads
        self.q_norm = nn.LayerNorm(head_width, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_width, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.rope_base = rope_base

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """``x``: (B, T, C); ``positions``: (B, T, 2) token (y, x) for RoPE, or None."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope_base is not None:
            q = rope_2d(q, positions, self.rope_base)
            k = rope_2d(k, positions, self.rope_base)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: int = 4, layer_scale: float | None = None,
                 qk_norm: bool = False, rope_base: float | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = Attention(width, heads, qk_norm=qk_norm, rope_base=rope_base)
        self.ls1 = LayerScale(width, layer_scale) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width, width * mlp_ratio)
        self.ls2 = LayerScale(width, layer_scale) if layer_scale else nn.Identity()

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """``x``: (B, T, C) → (B, T, C)."""
        x = x + self.ls1(self.attn(self.norm1(x), positions))
        return x + self.ls2(self.mlp(self.norm2(x)))
