"""Sizes of the π³ network; the defaults are the public checkpoint's architecture."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pi3Config:
    """Widths and depths of every part of π³ (encoder, alternating decoder, heads)."""

    patch_size: int = 14
    """Side of a square image patch in pixels; image sides must be multiples of it."""
    width: int = 1024
    """Token width of the DINOv2 encoder and of the frame/global decoder."""
    encoder_depth: int = 24
    """Number of DINOv2 blocks (ViT-L/14)."""
    encoder_heads: int = 16
    """Attention heads of the encoder."""
    encoder_registers: int = 4
    """DINOv2 register tokens ("Vision Transformers Need Registers")."""
    pos_embed_grid: int = 37
    """Side of the encoder's learned positional-embedding grid (518 px / 14)."""
    decoder_depth: int = 36
    """Decoder blocks; even ones attend within a frame, odd ones across all frames."""
    decoder_heads: int = 16
    """Attention heads of the decoder."""
    register_tokens: int = 5
    """Learned tokens prepended to every frame before the decoder."""
    head_width: int = 1024
    """Token width inside the point, confidence and camera decoders."""
    head_depth: int = 5
    """Blocks in each of the point, confidence and camera decoders."""
    head_heads: int = 16
    """Attention heads of the point, confidence and camera decoders."""
    camera_width: int = 512
    """Feature width of the camera head."""
    mlp_ratio: int = 4
    """Hidden width of every MLP as a multiple of its token width."""
    rope_base: float = 100.0
    """Frequency base of the decoder's 2D RoPE ("rope100" in the reference)."""

    @classmethod
    def tiny(cls) -> Pi3Config:
        """A few-thousand-parameter network with the same structure, for fast tests."""
        return cls(width=32, encoder_depth=2, encoder_heads=2, pos_embed_grid=4, decoder_depth=2,
                   decoder_heads=2, register_tokens=2, head_width=32, head_depth=1, head_heads=2,
                   camera_width=16)
