"""DINOv2 ViT with register tokens, the image encoder of π³ (patch tokens only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon4d.models.pi3.blocks import LAYER_NORM_EPS, Block
from recon4d.models.pi3.config import Pi3Config


def resize_pos_embed(grid: Tensor, grid_h: int, grid_w: int) -> Tensor:
    """Resample a square (1, M*M, C) patch positional embedding to (1, grid_h*grid_w, C).

    DINOv2-with-registers resizes to an explicit output size, bicubic with antialiasing
    (``interpolate_offset=0``), always in float32.
    """
    side = int(round(grid.shape[1] ** 0.5))
    square = grid.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if (side, side) != (grid_h, grid_w):
        square = F.interpolate(square, size=(grid_h, grid_w), mode="bicubic", antialias=True)
    return square.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1).to(grid.dtype)


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: (B, 3, H, W) → (B, H/p * W/p, C)."""

    def __init__(self, patch_size: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class DinoV2Encoder(nn.Module):
    """ViT-L/14 with 4 registers; ``forward`` returns the final-normed patch tokens."""

    def __init__(self, config: Pi3Config) -> None:
        super().__init__()
        width = config.width
        self.patch_size = config.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.pos_embed_grid ** 2, width))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.encoder_registers, width))
        self.patch_embed = PatchEmbed(config.patch_size, width)
        self.blocks = nn.ModuleList(
            Block(width, config.encoder_heads, config.mlp_ratio, layer_scale=1.0)
            for _ in range(config.encoder_depth)
        )
        self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, images: Tensor) -> Tensor:
        """``images``: (B, 3, H, W) normalised → patch tokens (B, H/p * W/p, C), row-major."""
        _, _, height, width = images.shape
        patches = self.patch_embed(images)
        pos = self.pos_embed
        grid_pos = resize_pos_embed(pos[:, 1:], height // self.patch_size, width // self.patch_size)
        cls = self.cls_token.expand(len(patches), -1, -1) + pos[:, :1]
        registers = self.register_tokens.expand(len(patches), -1, -1)
        # Registers are added after the positional embedding, so they carry none.
        x = torch.cat([cls, registers, patches + grid_pos], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.register_tokens.shape[1]:]
