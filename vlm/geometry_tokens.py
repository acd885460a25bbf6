"""Geometry tokens: the π³ DINOv2 encoder over Qwen's own resized frames, grouped 2×2×2 (VLM_FACTS §1.2).

The frames are rebuilt from Qwen's flattened ``pixel_values_videos``, un-normalised with CLIP
statistics and re-normalised for the encoder; its patch tokens are grouped two frames × 2 × 2
patches into one 8·C row per Qwen visual token, in the same (t, h/2, w/2) raster order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from recon4d.checks import check_shape
from recon4d.errors import ShapeError


def frames_from_patches(patches: Tensor, grid_thw: Tensor, patch_size: int, temporal_patch: int = 2,
                        merge_size: int = 2, channels: int = 3) -> Tensor:
    """Undo Qwen's patch flattening of one video: (T·H/p·W/p, 3·2·p·p) → (2T, 3, H, W).

    Rows are in Qwen's order (t, h/2, w/2, 2, 2), features in (channel, frame, y, x) order.
    """
    t, h, w = (int(v) for v in grid_thw.tolist())
    check_shape("pixel_values_videos (one video)", patches, (t * h * w, channels * temporal_patch * patch_size ** 2))
    x = patches.view(t, h // merge_size, w // merge_size, merge_size, merge_size, channels, temporal_patch,
                     patch_size, patch_size)
    x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8)
    return x.reshape(t * temporal_patch, channels, h * patch_size, w * patch_size)


def renormalise(frames: Tensor, from_mean, from_std, to_mean, to_std) -> Tensor:
    """``(x · from_std + from_mean − to_mean) / to_std`` per channel, in float32, for (N, 3, H, W).

    The operations run in the reference's order so float32 results are bit-identical.
    """
    def column(values) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)

    x = frames.float() * column(from_std) + column(from_mean)
    return (x - column(to_mean)) / column(to_std)


def group_2x2x2(tokens: Tensor, grid_thw: Tensor, merge_size: int = 2, temporal_patch: int = 2) -> Tensor:
    """Encoder patch tokens (2T, H/p·W/p, C) → one row per merged Qwen token (T·H/2p·W/2p, 8C).

    Within a row the 8C features are ordered [frame][dy][dx][C] (VLM_FACTS §1.2 step 4).
    """
    t, h, w = (int(v) for v in grid_thw.tolist())
    channels = tokens.shape[-1]
    if tokens.shape[:2] != (t * temporal_patch, h * w):
        raise ShapeError(f"geometry tokens have shape {tuple(tokens.shape)}; the video grid {t}×{h}×{w} "
                         f"needs ({t * temporal_patch}, {h * w}, C).")
    x = tokens.reshape(t, temporal_patch, h // merge_size, merge_size, w // merge_size, merge_size, channels)
    x = x.permute(0, 2, 4, 1, 3, 5, 6)
    return x.reshape(t * (h // merge_size) * (w // merge_size), -1)
