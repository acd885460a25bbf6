"""π³ (Wang et al. 2025): permutation-equivariant feed-forward reconstruction of N images."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from recon4d.checks import check_shape
from recon4d.errors import ShapeError
from recon4d.models.pi3.blocks import Block
from recon4d.models.pi3.config import Pi3Config
from recon4d.models.pi3.dinov2 import DinoV2Encoder
from recon4d.models.pi3.heads import CameraHead, HeadDecoder, PatchHead
from recon4d.models.pi3.rope import patch_positions
from recon4d.models.pi3.weights import check_state_dict, load_safetensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def camera_to_world_points(cam_to_world: Tensor, local_points: Tensor) -> Tensor:
    """``R @ p + t`` per pixel: (B, N, 4, 4) and (B, N, H, W, 3) → (B, N, H, W, 3)."""
    rotation, translation = cam_to_world[..., :3, :3], cam_to_world[..., :3, 3]
    return torch.einsum("bnij,bnhwj->bnhwi", rotation, local_points) + translation[:, :, None, None]


class Pi3(nn.Module):
    """π³ network; state-dict compatible with the public checkpoint (``Pi3()``).

    ==================  ======================  ===========================================
    name                shape                   meaning
    ==================  ======================  ===========================================
    imgs (input)        (B, N, 3, H, W)         RGB in [0, 1]; H, W multiples of 14
    points              (B, N, H, W, 3)         world frame (frame of the predicted poses)
    local_points        (B, N, H, W, 3)         camera frame, z = exp(prediction)
    conf                (B, N, H, W, 1)         confidence logits (sigmoid → [0, 1])
    camera_poses        (B, N, 4, 4)            cam_to_world, OpenCV convention
    ==================  ======================  ===========================================
    """

    def __init__(self, config: Pi3Config | None = None) -> None:
        super().__init__()
        self.config = config = config or Pi3Config()
        width = config.width
        self.encoder = DinoV2Encoder(config)
        self.decoder = nn.ModuleList(
            Block(width, config.decoder_heads, config.mlp_ratio, layer_scale=0.01, qk_norm=True,
                  rope_base=config.rope_base)
            for _ in range(config.decoder_depth)
        )
        self.register_token = nn.Parameter(torch.zeros(1, 1, config.register_tokens, width))

        def head_decoder(out_width: int) -> HeadDecoder:
            # The heads read the last two decoder layers concatenated, hence 2 * width.
            return HeadDecoder(2 * width, config.head_width, out_width, config.head_depth,
                               config.head_heads, config.mlp_ratio, config.rope_base)

        self.point_decoder = head_decoder(config.head_width)
        self.point_head = PatchHead(config.head_width, config.patch_size, 3)
        self.conf_decoder = head_decoder(config.head_width)
        self.conf_head = PatchHead(config.head_width, config.patch_size, 1)
        self.camera_decoder = head_decoder(config.camera_width)
        self.camera_head = CameraHead(config.camera_width)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @classmethod
    def from_pretrained(cls, path: str | Path, config: Pi3Config | None = None) -> Pi3:
        """Build π³ and load a ``.safetensors`` checkpoint, failing on any key or shape mismatch."""
        state = {key: tensor.float() for key, tensor in load_safetensors(path).items()}
        # Built on the meta device: random init of ~1B parameters would be thrown away.
        with torch.device("meta"):
            model = cls(config)
        check_state_dict(model.state_dict(), state, f"checkpoint {path}")
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()

    def _decode(self, tokens: Tensor, n_images: int, grid_h: int, grid_w: int) -> tuple[Tensor, Tensor]:
        """Alternate frame-wise and global attention over (B*N, T, C) encoder tokens.

        Returns the last two layers' outputs concatenated, (B*N, R + T, 2C), and the token
        positions (B*N, R + T, 2) used by the heads.
        """
        frames, _, width = tokens.shape
        batch = frames // n_images
        registers = self.register_token.expand(batch, n_images, -1, -1).reshape(frames, -1, width)
        x = torch.cat([registers, tokens], dim=1)
        length = x.shape[1]
        positions = patch_positions(frames, grid_h, grid_w, registers.shape[1], device=x.device)
        outputs = []
        for i, block in enumerate(self.decoder):
            # Even blocks attend within each image, odd blocks across all images of a batch item.
            group = frames if i % 2 == 0 else batch
            x = block(x.reshape(group, -1, width), positions.reshape(group, -1, 2))
            if i >= len(self.decoder) - 2:
                outputs.append(x.reshape(frames, length, width))
        return torch.cat(outputs, dim=-1), positions

    def forward(self, imgs: Tensor) -> dict[str, Tensor]:
        """Reconstruct N views per batch item; see the class docstring for shapes."""
        dims = check_shape("imgs", imgs, ("B", "N", 3, "H", "W"))
        batch, n_images, height, width = dims["B"], dims["N"], dims["H"], dims["W"]
        patch = self.config.patch_size
        if height % patch or width % patch:
            raise ShapeError(f"imgs height and width must be multiples of {patch}; got {height}×{width}.")
        grid_h, grid_w = height // patch, width // patch
        images = (imgs - self.image_mean) / self.image_std
        tokens = self.encoder(images.reshape(batch * n_images, 3, height, width))
        hidden, positions = self._decode(tokens, n_images, grid_h, grid_w)
        n_special = self.config.register_tokens

        def per_pixel(decoder: HeadDecoder, head: PatchHead) -> Tensor:
            feat = decoder(hidden, positions)[:, n_special:].float()
            return head(feat, grid_h, grid_w).reshape(batch, n_images, height, width, -1)

        raw = per_pixel(self.point_decoder, self.point_head)
        depth = torch.exp(raw[..., 2:])
        local_points = torch.cat([raw[..., :2] * depth, depth], dim=-1)
        conf = per_pixel(self.conf_decoder, self.conf_head)
        camera_feat = self.camera_decoder(hidden, positions)[:, n_special:].float()
        camera_poses = self.camera_head(camera_feat).reshape(batch, n_images, 4, 4)
        points = camera_to_world_points(camera_poses, local_points)
        return {"points": points, "local_points": local_points, "conf": conf, "camera_poses": camera_poses}
