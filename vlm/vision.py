"""Qwen vision towers with the geometry modules of the released DSR/GeoSR models attached.

The tower's own forward is unchanged (Qwen visual tokens); the geometry side lives in extra
modules whose names are the released checkpoint's (``spatial_encoder``, ``spatial_merger``,
``q_former_queries``, ``q_former_{1,2}``, ``q_former_norm``, GeoSR's ``geometry_*`` and
``gated_fusion_*``), so their state-dict keys are ``visual.<name>.*`` in the released layout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import transformers.initialization as init
from torch import Tensor, nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLPatchMerger,
    Qwen2_5_VLRMSNorm,
)

from recon4d.models.pi3 import Pi3Config
from recon4d.models.pi3.blocks import LayerScale
from recon4d.models.pi3.dinov2 import DinoV2Encoder
from recon4d.vlm.configuration import GeometryConfig
from recon4d.vlm.geometry_tokens import frames_from_patches, group_2x2x2, renormalise
from recon4d.vlm.geosr import gated_fusion, keep_mask, relevance
from recon4d.vlm.positions import mrope_cos_sin, rope_inv_freq, spatial_key_positions
from recon4d.vlm.qformer import QFormerBlock


@dataclass(frozen=True)
class VideoTokens:
    """What the vision side writes into the video spans of a batch (videos in row-major order)."""

    embeds: Tensor
    """(Σ_i N_i + S, D): per video its N_i visual (or fused) tokens then S GSM tokens, concatenated."""
    visual: tuple[Tensor, ...]
    """Qwen's merged visual tokens per video, (N_i, D)."""
    spatial: tuple[Tensor, ...] | None
    """Geometry tokens after the spatial merger per video, (N_i, D); None for fusion "none"."""
    gsm: Tensor | None
    """(V, S, D) GSM tokens (after ``q_former_norm``); None unless fusion is "gsm"/"geosr"."""
    fused: tuple[Tensor, ...] | None
    """GeoSR gated-fusion output per video, (N_i, D); None unless fusion is "geosr"."""
    relevance: tuple[Tensor, ...] | None
    """GeoSR relevance of each visual token, (N_i,) float32 in [0, 1]; None unless "geosr"."""
    keep: tuple[Tensor | None, ...] | None
    """GeoSR keep mask per video, (N_i,) bool, None for a video that was not masked."""
    deepstack: tuple[Tensor, ...] | None = None
    """Qwen3-VL: per DeepStack layer the (Σ_i N_i, D) features of the visual tokens; None for Qwen2.5-VL."""


def pad_rows(chunks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack (n_i, D) chunks into (V, max n, D) with zeros, and a (V, max n) bool validity mask."""
    longest = max(chunk.shape[0] for chunk in chunks)
    out = chunks[0].new_zeros(len(chunks), longest, chunks[0].shape[-1])
    valid = torch.zeros(len(chunks), longest, dtype=torch.bool, device=chunks[0].device)
    for i, chunk in enumerate(chunks):
        out[i, :chunk.shape[0]] = chunk
        valid[i, :chunk.shape[0]] = True
    return out, valid


def key_bias(valid: Tensor, dtype: torch.dtype) -> Tensor:
    """0 where ``valid``, −inf elsewhere: the additive attention mask of the Q-Formers."""
    return torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill(~valid, float("-inf"))


class GeometryModules:
    """The GSM/GeoSR modules selected by ``geometry.fusion``, mixed into a transformers Qwen vision tower.

    The host tower (Qwen2.5-VL's or Qwen3-VL's ViT) keeps its own forward; :meth:`video_tokens`
    runs it and adds the geometry side. Hosts call :meth:`add_geometry` in ``__init__``.
    """

    interleaved_mrope = False
    """Whether the host LLM interleaves the M-RoPE axes over channels (Qwen3-VL) or keeps them in
    contiguous sections (Qwen2.5-VL); the Q-Formers use the host's layout."""

    def add_geometry(self, config, text_config, geometry: GeometryConfig | None) -> None:
        """Build the modules of ``geometry`` (default: GSM) next to the stock tower's."""
        geometry = geometry or GeometryConfig()
        self.geometry = geometry
        self.text_config = text_config
        hidden = config.out_hidden_size
        if geometry.uses_encoder:
            self.spatial_encoder = DinoV2Encoder(Pi3Config(
                patch_size=geometry.spatial_patch_size, width=geometry.encoder_width,
                encoder_depth=geometry.encoder_depth, encoder_heads=geometry.encoder_heads,
                encoder_registers=geometry.encoder_registers, pos_embed_grid=geometry.encoder_pos_grid))
            # The geometry encoder is frozen in both papers; it is imported from π³ (`from_pi3`).
            self.spatial_encoder.requires_grad_(False)
            self.spatial_merger = Qwen2_5_VLPatchMerger(dim=hidden, context_dim=8 * geometry.encoder_width,
                                                        spatial_merge_size=1)
        if geometry.uses_qformers:
            if text_config is None:
                raise ValueError(f"{type(self).__name__} needs the text config for its Q-Formers.")
            self.q_former_queries = nn.Parameter(torch.randn(geometry.num_queries, hidden))
            self.q_former_1 = QFormerBlock(text_config)
            self.q_former_2 = QFormerBlock(text_config)
            self.q_former_norm = Qwen2_5_VLRMSNorm(hidden, eps=1e-6)
        if geometry.fusion == "geosr":
            self.geometry_q_norm = Qwen2_5_VLRMSNorm(hidden, eps=1e-6)
            self.geometry_kv_norm = Qwen2_5_VLRMSNorm(hidden, eps=1e-6)
            self.geometry_kv_attn = nn.MultiheadAttention(hidden, text_config.num_attention_heads, batch_first=True)
            self.gated_fusion_norm_visual = nn.LayerNorm(hidden)
            self.gated_fusion_norm_geometry = nn.LayerNorm(hidden)
            self.gated_fusion_proj = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Sigmoid())

    def _init_weights(self, module: nn.Module) -> None:
        """Norms 1, linears N(0, 0.02) with zero bias, queries N(0, 1), DINOv2 tokens as DINOv2.

        The reference leaves queries, RMSNorm scales and DINOv2 LayerScales as uninitialised memory
        when it loads a stock base outside ZeRO-3 (VLM_FACTS §1.6); these values are its ``__init__``'s.
        ``transformers.initialization`` skips tensors that a checkpoint already filled.
        """
        std = self.config.initializer_range
        if isinstance(module, nn.MultiheadAttention):
            init.normal_(module.in_proj_weight, mean=0.0, std=std)
            init.zeros_(module.in_proj_bias)
            return
        super()._init_weights(module)
        if isinstance(module, GeometryModules) and hasattr(module, "q_former_queries"):
            init.normal_(module.q_former_queries, mean=0.0, std=1.0)
        elif isinstance(module, DinoV2Encoder):
            init.trunc_normal_(module.pos_embed, std=0.02)
            init.normal_(module.cls_token, std=1e-6)
            init.normal_(module.register_tokens, std=1e-6)
        elif isinstance(module, LayerScale):
            init.constant_(module.gamma, 1.0)

    def encoder_frames(self, patches: Tensor, grid_thw: Tensor) -> Tensor:
        """One video's frames as the geometry encoder sees them, still in Qwen's normalisation:
        (2T, 3, H, W) with H, W = grid · encoder patch.

        Qwen2.5-VL's 14-px patches equal the encoder's, so its frames are Qwen's resized frames
        exactly (the reference). A host with another patch (Qwen3-VL: 16 px) has its frames resized
        bilinearly (antialiased) so that one encoder patch covers one Qwen patch and the 2×2×2
        grouping still pairs tokens one-to-one (resizing commutes with the per-channel normalisation).
        """
        frames = frames_from_patches(patches, grid_thw, self.config.patch_size, self.config.temporal_patch_size,
                                     self.config.spatial_merge_size, self.config.in_channels)
        patch = self.geometry.spatial_patch_size
        if patch == self.config.patch_size:
            return frames
        size = (int(grid_thw[1]) * patch, int(grid_thw[2]) * patch)
        return nn.functional.interpolate(frames.float(), size=size, mode="bilinear", align_corners=False,
                                         antialias=True).to(frames.dtype)

    def encoder_features(self, pixel_values_videos: Tensor, video_grid_thw: Tensor) -> list[Tensor]:
        """The frozen part of the geometry tokens: per video the encoder's patch tokens grouped 2×2×2,
        [(N_i, 8·C)] (VLM_FACTS §1.2 steps 1–4); what the training's geometry cache stores.

        Videos of one frame size share one encoder call. Without trainable encoder parameters the
        encoder runs without autograd (same values, no stored activations).
        """
        geometry, encoder = self.geometry, self.spatial_encoder
        sizes = (video_grid_thw.prod(-1)).tolist()
        frames = [self.encoder_frames(chunk, grid) for chunk, grid in zip(pixel_values_videos.split(sizes),
                                                                          video_grid_thw)]
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, video in enumerate(frames):
            by_size[tuple(video.shape[-2:])].append(index)
        grouped: list[Tensor | None] = [None] * len(frames)
        dtype = encoder.patch_embed.proj.weight.dtype
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in encoder.parameters())
        for indices in by_size.values():
            images = torch.cat([frames[i] for i in indices])
            images = renormalise(images, geometry.clip_mean, geometry.clip_std, geometry.imagenet_mean,
                                 geometry.imagenet_std).to(dtype)
            with torch.set_grad_enabled(needs_grad):
                tokens = encoder(images)
            for i, chunk in zip(indices, tokens.split([len(frames[i]) for i in indices])):
                grouped[i] = group_2x2x2(chunk, video_grid_thw[i], self.config.spatial_merge_size,
                                         self.config.temporal_patch_size)
        return grouped

    def spatial_tokens(self, pixel_values_videos: Tensor, video_grid_thw: Tensor,
                       encoder_features: list[Tensor] | None = None) -> list[Tensor]:
        """Geometry tokens per video after the spatial merger: [(N_i, D)] (VLM_FACTS §1.2).

        ``encoder_features``: :meth:`encoder_features` computed earlier (e.g. cached); the encoder is
        then not run.
        """
        grouped = (encoder_features if encoder_features is not None
                   else self.encoder_features(pixel_values_videos, video_grid_thw))
        merged = self.spatial_merger(torch.cat(grouped).to(self.spatial_merger.mlp[0].weight.dtype))
        return list(merged.split([g.shape[0] for g in grouped]))

    def select(self, spatial: list[Tensor], text_states: list[Tensor], video_grid_thw: Tensor,
               seconds_per_grid: list[float | Tensor]) -> tuple[Tensor, Tensor]:
        """The two Q-Formers over V videos: GSM tokens (V, S, D) and Q-Former 2's probabilities.

        ``spatial``: per video (N_i, D); ``text_states``: per video the (L_i, D) embeddings of its
        sample's prompt text (§1.5). Returns ``(gsm, probs)`` with probs (V, heads, S, max N_i).
        """
        text_config, geometry = self.text_config, self.geometry
        n_videos = len(spatial)
        for i, text in enumerate(text_states):
            if text.shape[0] == 0:
                raise ValueError(f"video {i}'s sample has no prompt text for Q-Former 1 (all its tokens are "
                                 "special or supervised); GSM needs the question text.")
        head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
        rope = text_config.rope_parameters
        inv_freq = rope_inv_freq(head_dim, rope["rope_theta"], device=self.q_former_queries.device)
        section = list(rope["mrope_section"])
        interleaved = self.interleaved_mrope
        queries = self.q_former_queries.unsqueeze(0).expand(n_videos, -1, -1)
        n_queries = queries.shape[1]

        # Query and text positions are cast to the states' dtype first, as the reference does (in
        # bf16 text positions above 256 round); 0..n-1 on all three axes, per video.
        query_pos = torch.arange(n_queries, device=queries.device).to(queries.dtype)
        query_pos = query_pos.view(1, 1, -1).expand(3, n_videos, -1)
        query_rope = mrope_cos_sin(query_pos, inv_freq, section, queries.dtype, interleaved)
        text, text_valid = pad_rows(text_states)
        text_pos = torch.arange(text.shape[1], device=text.device).to(text.dtype).view(1, 1, -1)
        text_rope = mrope_cos_sin(text_pos.expand(3, n_videos, -1), inv_freq, section, text.dtype, interleaved)
        first, _ = self.q_former_1(queries, text, key_bias(text_valid, text.dtype), query_rope, text_rope)

        keys, key_valid = pad_rows(spatial)
        key_pos = torch.zeros(3, n_videos, keys.shape[1], dtype=torch.long, device=keys.device)
        for i, (grid, seconds) in enumerate(zip(video_grid_thw, seconds_per_grid)):
            block = spatial_key_positions(grid.cpu(), self.config.spatial_merge_size, seconds,
                                          geometry.qformer_seconds_scale)
            key_pos[:, i, :block.shape[1]] = block.to(keys.device)
        key_rope = mrope_cos_sin(key_pos, inv_freq, section, keys.dtype, interleaved)
        second, probs = self.q_former_2(first, keys, key_bias(key_valid, keys.dtype), query_rope, key_rope)
        return self.q_former_norm(second), probs

    def fuse(self, visual: list[Tensor], spatial: list[Tensor], gsm: Tensor, probs: Tensor,
             masked: list[bool]) -> tuple[list[Tensor], list[Tensor], list[Tensor | None]]:
        """GeoSR: relevance, keep masks for the ``masked`` videos, cross-attention 3 and gated fusion.

        Returns per video the fused tokens (N_i, D), the relevance (N_i,) and the keep mask or None.
        """
        geometry = self.geometry
        scores = [relevance(probs[i], v.shape[0]) for i, v in enumerate(visual)]
        keeps = [keep_mask(s, geometry.mask_fraction) if m else None for s, m in zip(scores, masked)]
        spatial_pad, valid = pad_rows(spatial)
        memory = self.geometry_kv_norm(gsm)
        attended, _ = self.geometry_kv_attn(self.geometry_q_norm(spatial_pad), memory, memory, need_weights=False)
        visual_pad, _ = pad_rows(visual)
        keep_pad = torch.ones_like(valid)
        for i, keep in enumerate(keeps):
            if keep is not None:
                keep_pad[i, :keep.shape[0]] = keep
        fused = gated_fusion(visual_pad, attended, self.gated_fusion_norm_visual, self.gated_fusion_norm_geometry,
                             self.gated_fusion_proj, keep_pad)
        return [fused[i, :v.shape[0]] for i, v in enumerate(visual)], scores, keeps

    def video_tokens(self, pixel_values_videos: Tensor, video_grid_thw: Tensor,
                     text_states: list[Tensor] | None = None, seconds_per_grid: list[float | Tensor] | None = None,
                     masked: list[bool] | None = None, encoder_features: list[Tensor] | None = None) -> VideoTokens:
        """Everything the video spans receive, for V videos (see :class:`VideoTokens`).

        ``text_states`` (GSM/GeoSR): per video its prompt embeddings; ``seconds_per_grid``: per
        video seconds per temporal grid (default 1.0); ``masked`` (GeoSR): which videos get the
        top-⌈γN⌉ mask (default none); ``encoder_features``: precomputed :meth:`encoder_features`.
        """
        n_videos = video_grid_thw.shape[0]
        pixels = pixel_values_videos.type(self.dtype)
        stock = self(pixels, grid_thw=video_grid_thw)
        visual = list(stock.pooler_output.split((video_grid_thw.prod(-1) // self.spatial_merge_unit).tolist()))
        # Qwen3-VL's DeepStack features go to the visual tokens' slots (not the GSM slots) of early LLM layers.
        deepstack = getattr(stock, "deepstack_features", None)
        deepstack = tuple(deepstack) if deepstack else None
        fusion = self.geometry.fusion
        if fusion == "none":
            return VideoTokens(torch.cat(visual), tuple(visual), None, None, None, None, None, deepstack)
        spatial = self.spatial_tokens(pixels, video_grid_thw, encoder_features)
        if fusion == "add":
            added = [v + s.to(v.dtype) for v, s in zip(visual, spatial)]
            return VideoTokens(torch.cat(added), tuple(visual), tuple(spatial), None, None, None, None, deepstack)
        if text_states is None or len(text_states) != n_videos:
            raise ValueError(f"fusion {fusion!r} needs the prompt text of each of the {n_videos} videos.")
        seconds = seconds_per_grid if seconds_per_grid is not None else [1.0] * n_videos
        gsm, probs = self.select(spatial, text_states, video_grid_thw, seconds)
        fused = scores = keeps = None
        outputs = visual
        if fusion == "geosr":
            fused, scores, keeps = self.fuse(visual, spatial, gsm, probs, masked or [False] * n_videos)
            outputs = fused
        embeds = torch.cat([torch.cat([out, gsm[i].to(out.dtype)]) for i, out in enumerate(outputs)])
        return VideoTokens(embeds, tuple(visual), tuple(spatial), gsm, None if fused is None else tuple(fused),
                           None if scores is None else tuple(scores), None if keeps is None else tuple(keeps),
                           deepstack)


class GeometryVisionTower(GeometryModules, Qwen2_5_VisionTransformerPretrainedModel):
    """Qwen2.5-VL's ViT plus the GSM/GeoSR modules selected by ``geometry.fusion``."""

    def __init__(self, config, text_config=None, geometry: GeometryConfig | None = None) -> None:
        super().__init__(config)
        self.add_geometry(config, text_config, geometry)
        # The new modules were added after the stock post_init: initialise them too.
        self.post_init()
