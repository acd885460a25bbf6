"""Qwen3-VL as a second base (the paper's Table 10): the same fusion switch on transformers' Qwen3-VL.

Neither paper released Qwen3-VL code, so this follows the Qwen2.5-VL models where it can and
Qwen3-VL where it must (VLM_FACTS §3 "Qwen3-VL as a second base"):

* geometry tokens: Qwen3-VL's 16-px patches do not pair with DINOv2's 14-px ones, so the frames
  are resized to grid·14 px before the encoder (one encoder patch per Qwen patch), then grouped
  2×2×2 as for Qwen2.5-VL; pixels are un-normalised with Qwen3-VL's 0.5 mean/std;
* prompt layout: Qwen3-VL writes each temporal grid of a video as its own span
  ``<t seconds><|vision_start|> pads <|vision_end|>``; the S GSM slots follow the visual pads of
  the video's *last* span (:func:`recon4d.vlm.processing.qwen3_video_span`);
* LLM positions: transformers' own Qwen3-VL rule with the GSM slots typed as text (they continue
  after the last frame like the text after it); the Q-Formers use Qwen3-VL's interleaved M-RoPE
  tables, with the same positions as for Qwen2.5-VL (queries and text 0..n−1, keys
  (⌊t·second_per_grid·2⌋, h, w)), since Qwen3-VL's LLM has no temporal position to borrow (time is
  in its timestamp text);
* DeepStack features go to the visual-token slots only (not the GSM slots); with GeoSR the fused
  tokens replace the visual tokens in the embeddings and DeepStack still adds Qwen's features.

State-dict names are Qwen3-VL's (``model.visual.*``, ``model.language_model.*``) plus the same
geometry names as the Qwen2.5-VL models (``model.visual.spatial_encoder.*`` ...).
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel

from recon4d.vlm.configuration import GeometryConfig
from recon4d.vlm.modeling import GeometryVLMixin
from recon4d.vlm.positions import text_rope_index
from recon4d.vlm.vision import GeometryModules


class GeometryQwen3VisionTower(GeometryModules, Qwen3VLVisionModel):
    """Qwen3-VL's ViT (DeepStack included) plus the GSM/GeoSR modules selected by ``geometry.fusion``."""

    interleaved_mrope = True

    def __init__(self, config, text_config=None, geometry: GeometryConfig | None = None) -> None:
        super().__init__(config)
        self.add_geometry(config, text_config, geometry)
        # The new modules were added after the stock post_init: initialise them too.
        self.post_init()


class GeometryQwen3VL(GeometryVLMixin, Qwen3VLForConditionalGeneration):
    """Qwen3-VL with the geometry modules of ``config.geometry``; inputs as :class:`GeometryQwen2_5_VL`
    except that each video occupies one prompt span per temporal grid (see the module docstring)."""

    base_config_class = Qwen3VLConfig

    def __init__(self, config: Qwen3VLConfig) -> None:
        super().__init__(config)
        self.install_geometry(config, GeometryQwen3VisionTower)

    def spans_per_video(self, video_grid_thw: Tensor) -> list[int]:
        """One ``<|vision_start|>`` span per temporal grid of each video (Qwen3-VL's timestamps layout)."""
        return [int(t) for t in video_grid_thw[:, 0].tolist()]

    def token_types(self, input_ids: Tensor, video_grid_thw: Tensor | None) -> Tensor:
        """(B, L) int: 1 image pad, 2 visual video pad, 0 otherwise (text, padding and the GSM slots)."""
        types = torch.zeros_like(input_ids, dtype=torch.int)
        types[input_ids == self.config.image_token_id] = 1
        video = input_ids == self.config.video_token_id
        if video_grid_thw is not None:
            video &= ~self.gsm_slot_mask(input_ids, video_grid_thw)
        types[video] = 2
        return types

    def get_rope_index(self, input_ids: Tensor, image_grid_thw: Tensor | None = None,
                       video_grid_thw: Tensor | None = None, second_per_grid_ts: Tensor | None = None,
                       attention_mask: Tensor | None = None, **_: object) -> tuple[Tensor, Tensor]:
        """LLM positions (3, B, L) by transformers' Qwen3-VL rule with the GSM slots as text, and rope
        deltas (B, 1) = max position + 1 − L (decoding continues at past + delta, padding included)."""
        if image_grid_thw is None and video_grid_thw is None:
            return text_rope_index(input_ids, attention_mask)
        positions, _ = self.model.get_rope_index(input_ids, self.token_types(input_ids, video_grid_thw),
                                                 image_grid_thw=image_grid_thw, video_grid_thw=video_grid_thw,
                                                 attention_mask=attention_mask)
        deltas = positions.amax(dim=(0, 2)).unsqueeze(1) + 1 - input_ids.shape[1]
        return positions, deltas
