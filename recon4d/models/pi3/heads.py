"""π³ output heads: per-patch linear heads for points/confidence and the camera head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon4d.models.pi3.blocks import Block


def svd_orthogonalize(m: Tensor) -> Tensor:
    """Nearest rotation to each 3×3 matrix after normalising its rows (9D → SO(3)).

    ``m``: (B, 9) or (B, 3, 3) → (B, 3, 3) with det +1 (Levinson et al. 2020, with a
    row normalisation first as in the reference).
    """
    m = F.normalize(m.reshape(-1, 3, 3), p=2, dim=-1).transpose(-1, -2)
    u, _, vh = torch.linalg.svd(m)
    v = vh.transpose(-1, -2)
    det = torch.det(v @ u.transpose(-1, -2))
    v = torch.cat([v[..., :2], v[..., 2:] * det[:, None, None]], dim=-1)
    return v @ u.transpose(-1, -2)


class HeadDecoder(nn.Module):
    """Linear projection, a few RoPE blocks, linear output: (B, T, C_in) → (B, T, C_out)."""

    def __init__(self, in_width: int, width: int, out_width: int, depth: int, heads: int,
                 mlp_ratio: int, rope_base: float) -> None:
        super().__init__()
        self.projects = nn.Linear(in_width, width)
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, rope_base=rope_base) for _ in range(depth)
        )
        self.linear_out = nn.Linear(width, out_width)

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        x = self.projects(tokens)
        for block in self.blocks:
            x = block(x, positions)
        return self.linear_out(x)


class PatchHead(nn.Module):
    """One linear layer per patch token, unfolded to pixels (DUSt3R ``LinearPts3d``)."""

    def __init__(self, width: int, patch_size: int, channels: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(width, channels * patch_size ** 2)

    def forward(self, tokens: Tensor, grid_h: int, grid_w: int) -> Tensor:
        """``tokens``: (B, grid_h*grid_w, C) → (B, grid_h*p, grid_w*p, channels)."""
        feat = self.proj(tokens).transpose(1, 2).reshape(len(tokens), -1, grid_h, grid_w)
        return F.pixel_shuffle(feat, self.patch_size).permute(0, 2, 3, 1)


class ResidualMlp(nn.Module):
    """``x + relu(fc3(relu(fc2(relu(fc1(x))))))`` (1×1-conv residual block of marepo)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.res_conv1 = nn.Linear(width, width)
        self.res_conv2 = nn.Linear(width, width)
        self.res_conv3 = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.res_conv1(x))
        y = F.relu(self.res_conv2(y))
        return x + F.relu(self.res_conv3(y))


class CameraHead(nn.Module):
    """Patch features → one cam_to_world pose per image (rotation by SVD, raw translation)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.res_conv = nn.ModuleList(ResidualMlp(width) for _ in range(2))
        self.more_mlps = nn.Sequential(nn.Linear(width, width), nn.ReLU(),
                                       nn.Linear(width, width), nn.ReLU())
        self.fc_t = nn.Linear(width, 3)
        self.fc_rot = nn.Linear(width, 9)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens``: (B, T, C) patch features → (B, 4, 4) cam_to_world."""
        x = tokens
        for block in self.res_conv:
            x = block(x)
        x = self.more_mlps(x.mean(dim=1))
        pose = torch.zeros(len(x), 4, 4, dtype=x.dtype, device=x.device)
        pose[:, :3, :3] = svd_orthogonalize(self.fc_rot(x))
        pose[:, :3, 3] = self.fc_t(x)
        pose[:, 3, 3] = 1.0
        return pose
