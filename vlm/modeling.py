"""Geometry-aware Qwen2.5-VL: GSM (DSR Suite), GeoSR and the "none"/"add" baselines behind one switch.

Built on transformers' ``Qwen2_5_VLForConditionalGeneration`` (its ViT, decoder and generation
loop run unchanged); recon4d adds the geometry modules to the vision tower, writes the video
spans itself and computes the reference (transformers 4.51) LLM positions in training and in
``generate`` (VLM_FACTS §1.4, §3).

=====================  ===================  ==================================================
input                  shape                meaning
=====================  ===================  ==================================================
input_ids              (B, L)               prompt; each video span holds N_i + S video pads
attention_mask         (B, L)               1 = real token (left or right padding)
labels                 (B, L)               −100 except supervised tokens (training)
pixel_values_videos    (Σ T_i·H_i·W_i, 1176)  Qwen's flattened patches, videos row-major
video_grid_thw         (V, 3)               (T, H, W) patch grid of each video
second_per_grid_ts     (V,)                 seconds per temporal grid of each video
logits (output)        (B, L, vocab)        next-token logits
=====================  ===================  ==================================================

N_i = T_i·H_i·W_i / 4 merged visual tokens; S = 32 GSM tokens for "gsm"/"geosr", else 0.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import MultimodalCausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils.deprecation import deprecate_kwarg

from recon4d.models.pi3.weights import check_state_dict, load_safetensors
from recon4d.vlm.checkpoint import check_loaded_groups, checkpoint_keys, encoder_sizes, fusion_of_keys
from recon4d.vlm.configuration import GeometryConfig, VLMConfigError, attach_geometry
from recon4d.vlm.layout import qformer_text_mask, video_owners, video_run_ends, video_slot_runs
from recon4d.vlm.positions import reference_rope_index
from recon4d.vlm.vision import GeometryVisionTower, VideoTokens


def deepstack_kwargs(stacked: list[tuple[Tensor, tuple[Tensor, ...]]]) -> dict:
    """Qwen3-VL text-model arguments from (slot mask (B, L), per-layer (n, D) features) pairs:
    one joint mask and, per layer, the features of all masked slots in sequence order."""
    joint = stacked[0][0].clone()
    for mask, _ in stacked[1:]:
        joint |= mask
    layers = []
    for depth in range(len(stacked[0][1])):
        rows = stacked[0][1][depth].new_zeros(int(joint.sum()), stacked[0][1][depth].shape[-1])
        for mask, features in stacked:
            rows[mask[joint]] = features[depth].to(rows.dtype)
        layers.append(rows)
    return {"visual_pos_masks": joint, "deepstack_visual_embeds": layers}


class GeometryVLMixin:
    """What the geometry-aware models share whatever their Qwen base: loading, the video spans,
    GeoSR's masking draw and the forward (see the module docstring).

    A host class sets ``base_config_class``, builds ``model.visual`` as a :class:`GeometryModules`
    tower, and supplies ``get_rope_index`` and :meth:`spans_per_video`.
    """

    base_config_class: type = Qwen2_5_VLConfig
    """The transformers config class of the base (read by :meth:`from_pretrained`)."""

    def install_geometry(self, config, tower_class: type) -> None:
        """Read ``config.geometry``, keep it on the model and replace the stock vision tower by
        ``tower_class`` built with it (called by the host's ``__init__`` after the base's)."""
        geometry = GeometryConfig.from_hf_config(config)
        attach_geometry(config, geometry)
        self.geometry = geometry
        # Replacing the stock tower costs one extra build of the ViT outside `from_pretrained`
        # (which builds on the meta device); it keeps transformers' own __init__ untouched.
        self.model.visual = tower_class._from_config(config.vision_config, text_config=config.text_config,
                                                     geometry=geometry)
        self.post_init()

    def spans_per_video(self, video_grid_thw: Tensor) -> list[int]:
        """``<|vision_start|>`` spans each video occupies in the prompt (Qwen2.5-VL: one per video)."""
        return [1] * int(video_grid_thw.shape[0])

    def expected_runs(self, video_grid_thw: Tensor) -> list[int]:
        """``<|video_pad|>`` run lengths of the prompt's video spans, row-major: per video its merged
        visual tokens, the GSM slots after the visual tokens of its last span."""
        merge = self.config.vision_config.spatial_merge_size ** 2
        runs: list[int] = []
        for grid, spans in zip(video_grid_thw.tolist(), self.spans_per_video(video_grid_thw)):
            per_span = grid[0] * grid[1] * grid[2] // merge // spans
            runs += [per_span] * (spans - 1) + [per_span + self.geometry.gsm_slots]
        return runs

    def gsm_slot_mask(self, input_ids: Tensor, video_grid_thw: Tensor) -> Tensor:
        """(B, L) bool: the GSM slots (the last S ``<|video_pad|>`` of each video's last span)."""
        mask = torch.zeros_like(input_ids, dtype=torch.bool)
        slots = self.geometry.gsm_slots
        if not slots:
            return mask
        ends = video_run_ends(input_ids, self.config.video_token_id)
        last_spans = torch.tensor(self.spans_per_video(video_grid_thw)).cumsum(0) - 1
        for row, end in (ends[i] for i in last_spans.tolist()):
            mask[row, end - slots:end] = True
        return mask

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, fusion: str | None = None,
                        geometry: GeometryConfig | None = None, **kwargs):
        """Load a recon4d, released DSR/GeoSR (transformers 4.51 layout) or stock Qwen2.5-VL folder.

        The fusion comes from ``geometry``, else ``fusion``, else the folder's ``config.geometry``,
        else the tensors the folder holds. Modules a stock base lacks are initialised (norms 1,
        queries N(0, 1), linears N(0, 0.02)); the geometry encoder then comes from :meth:`from_pi3`.
        Unexpected tensors, missing Qwen tensors and half-present module groups raise.
        """
        if not Path(pretrained_model_name_or_path).is_dir():
            raise VLMConfigError(
                f"{pretrained_model_name_or_path} is not a local checkpoint folder; recon4d never downloads "
                "implicitly: fetch it first (e.g. `hf download <repo> --local-dir <folder>`) and pass the folder.")
        config = kwargs.pop("config", None)
        if config is None:
            config = cls.base_config_class.from_pretrained(pretrained_model_name_or_path)
        if geometry is None:
            geometry = GeometryConfig.from_hf_config(config, fusion=fusion)
            if not getattr(config, "geometry", None):
                # A released or stock config.json: the tensors tell the fusion and the encoder size.
                keys = checkpoint_keys(pretrained_model_name_or_path)
                if keys is None and fusion is None:
                    raise VLMConfigError(
                        f"cannot tell the fusion of {pretrained_model_name_or_path} (no safetensors and no recon4d "
                        "geometry settings in its config); pass fusion='gsm' (or 'none', 'add', 'geosr').")
                if keys is not None:
                    geometry = replace(geometry, fusion=fusion or fusion_of_keys(keys),
                                       **encoder_sizes(pretrained_model_name_or_path, keys))
        attach_geometry(config, geometry)
        want_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(pretrained_model_name_or_path, *model_args, config=config,
                                                  output_loading_info=True, **kwargs)
        except RuntimeError as error:
            if "mismatch" not in str(error):
                raise
            raise VLMConfigError(
                f"checkpoint {pretrained_model_name_or_path} has tensors of another size than a {geometry.fusion!r} "
                f"model of this config ({str(error).splitlines()[0][:300]}); use a checkpoint of the same size or "
                "pass the matching geometry=GeometryConfig(...).") from None
        absent = check_loaded_groups(model.state_dict().keys(), set(info["missing_keys"]),
                                     set(info["unexpected_keys"]), f"checkpoint {pretrained_model_name_or_path}")
        if info.get("mismatched_keys"):
            raise VLMConfigError(f"checkpoint {pretrained_model_name_or_path} has tensors of the wrong shape: "
                                 f"{sorted(info['mismatched_keys'])[:8]}; use a checkpoint of the same size.")
        if "geometry encoder" in absent:
            warnings.warn(f"{pretrained_model_name_or_path} has no geometry encoder; import it with "
                          "model.from_pi3('<pi3 folder>/model.safetensors') before training or inference.",
                          stacklevel=2)
        model.initialised_groups = tuple(absent)
        return (model, info) if want_info else model

    def from_pi3(self, path: str | Path) -> GeometryVLMixin:
        """Import the geometry encoder from a π³ ``model.safetensors`` as the reference does
        (tensors whose name starts with ``encoder.``, prefix stripped); strict names and shapes."""
        if not self.geometry.uses_encoder:
            raise VLMConfigError("fusion 'none' has no geometry encoder to import π³ weights into.")
        state = load_safetensors(path)
        encoder = {key[len("encoder."):]: tensor for key, tensor in state.items() if key.startswith("encoder.")}
        target = self.model.visual.spatial_encoder
        check_state_dict(target.state_dict(), encoder, f"the encoder tensors of {path}")
        dtype = target.patch_embed.proj.weight.dtype
        with torch.no_grad():
            for name, tensor in target.state_dict(keep_vars=True).items():
                tensor.copy_(encoder[name].to(dtype))
        return self

    def freeze_encoders(self) -> GeometryVLMixin:
        """Freeze Qwen's ViT (patch embedding, blocks and, for Qwen3-VL, its learned position table) and
        the geometry encoder, as the reference recipe does; Qwen's merger(s), the LLM and the geometry
        modules stay trainable."""
        visual = self.model.visual
        visual.patch_embed.requires_grad_(False)
        visual.blocks.requires_grad_(False)
        if isinstance(getattr(visual, "pos_embed", None), torch.nn.Module):
            visual.pos_embed.requires_grad_(False)
        if self.geometry.uses_encoder:
            visual.spatial_encoder.requires_grad_(False)
        return self

    def _prepare_position_ids_for_generation(self, inputs_tensor, model_kwargs):
        # Overridden so that `generate` uses the model's own rule (`get_rope_index`: the reference
        # rule for Qwen2.5-VL; no `mm_token_type_ids` needed): returns [text positions; t; h; w]
        # (4, B, L) as transformers 5 expects, and stores the rope deltas; later steps continue at
        # last + 1, which is max + 1 under these rules.
        text_positions = GenerationMixin._prepare_position_ids_for_generation(self, inputs_tensor, model_kwargs)
        cache = model_kwargs.get("cache")
        past = cache.get_seq_length() if cache is not None else 0
        new_pixels = model_kwargs.get("pixel_values_videos") is not None or model_kwargs.get("pixel_values") is not None
        if past and self.model.rope_deltas is not None and not new_pixels:
            return text_positions[None] + self.model.rope_deltas
        input_ids = model_kwargs.get("input_ids", inputs_tensor)
        if input_ids is not None and input_ids.ndim == 2 and not input_ids.is_floating_point():
            positions, deltas = self.get_rope_index(
                input_ids, image_grid_thw=model_kwargs.get("image_grid_thw"),
                video_grid_thw=model_kwargs.get("video_grid_thw"),
                second_per_grid_ts=model_kwargs.get("second_per_grid_ts"),
                attention_mask=model_kwargs.get("attention_mask"))
        else:
            positions = text_positions.unsqueeze(0).expand(3, -1, -1)
            deltas = torch.zeros(text_positions.shape[0], 1, dtype=torch.long, device=text_positions.device)
        self.model.rope_deltas = deltas
        return torch.cat([text_positions[None], positions.to(text_positions.device)], dim=0)

    def llm_positions(self, input_ids: Tensor | None, inputs_embeds: Tensor, attention_mask: Tensor | None,
                      image_grid_thw: Tensor | None, video_grid_thw: Tensor | None,
                      second_per_grid_ts: Tensor | None, cache) -> Tensor:
        """Positions when the caller gave none: the reference rule on a prompt, deltas when decoding."""
        past = cache.get_seq_length() if cache is not None else 0
        if input_ids is not None and past == 0:
            positions, deltas = self.get_rope_index(input_ids, image_grid_thw, video_grid_thw, second_per_grid_ts,
                                                    attention_mask)
            self.model.rope_deltas = deltas
            return positions
        if self.model.rope_deltas is None:
            raise VLMConfigError("cannot place new tokens: no prompt positions were computed (call with "
                                 "input_ids first, or pass position_ids).")
        batch, length = inputs_embeds.shape[:2]
        steps = torch.arange(past, past + length, device=inputs_embeds.device).view(1, 1, -1)
        return (steps + self.model.rope_deltas.to(inputs_embeds.device).view(1, -1, 1)).expand(3, batch, -1)

    # ----------------------------------------------------------------------------- forward
    def masked_videos(self, owners: list[int], batch: int, device) -> list[bool]:
        """GeoSR training: each sample is masked with probability β (per sample; the reference has one)."""
        if not (self.training and self.geometry.fusion == "geosr"):
            return [False] * len(owners)
        draw = (torch.rand(batch, device=device) < self.geometry.mask_probability).tolist()
        return [draw[row] for row in owners]

    def encode_videos(self, input_ids: Tensor, inputs_embeds: Tensor, pixel_values_videos: Tensor,
                      video_grid_thw: Tensor, second_per_grid_ts: Tensor | None, attention_mask: Tensor | None,
                      labels: Tensor | None, encoder_features: list[Tensor] | None = None) -> VideoTokens:
        """The tokens of every video span of the batch, with each video's own prompt text.

        ``encoder_features``: per video the geometry encoder's grouped tokens computed earlier
        (``model.visual.encoder_features``, e.g. from the training's cache); the encoder is then skipped.
        """
        config, geometry = self.config, self.geometry
        span_owners = video_owners(input_ids, config.vision_start_token_id, config.video_token_id, attention_mask)
        n_videos = video_grid_thw.shape[0]
        spans = self.spans_per_video(video_grid_thw)
        if len(span_owners) != sum(spans):
            raise VLMConfigError(f"the prompts hold {len(span_owners)} video spans but the {n_videos} videos given "
                                 f"need {sum(spans)}.")
        # A video's first span tells its sample (Qwen3-VL writes one span per temporal grid).
        owners = [span_owners[i] for i in (torch.tensor(spans).cumsum(0) - torch.tensor(spans)).tolist()]
        expected = self.expected_runs(video_grid_thw)
        runs = video_slot_runs(input_ids, config.video_token_id)
        if runs != expected:
            raise VLMConfigError(
                f"video spans hold {runs} <|video_pad|> tokens but fusion {geometry.fusion!r} needs {expected} "
                f"(visual tokens + {geometry.gsm_slots} GSM slots per video); build prompts with "
                "recon4d.vlm.processing (add_gsm_slots for processor output).")
        seconds = ([second_per_grid_ts[i] for i in range(n_videos)] if second_per_grid_ts is not None
                   else [1.0] * n_videos)
        text_states = None
        if geometry.uses_qformers:
            text_mask = qformer_text_mask(input_ids, geometry.token_ids.non_text(), labels, attention_mask)
            text_states = [inputs_embeds[row][text_mask[row]] for row in owners]
        masked = self.masked_videos(owners, input_ids.shape[0], input_ids.device)
        return self.model.visual.video_tokens(pixel_values_videos, video_grid_thw, text_states, seconds, masked,
                                              encoder_features)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        cache=None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        pixel_values: Tensor | None = None,
        pixel_values_videos: Tensor | None = None,
        image_grid_thw: Tensor | None = None,
        video_grid_thw: Tensor | None = None,
        mm_token_type_ids: Tensor | None = None,
        second_per_grid_ts: Tensor | None = None,
        logits_to_keep: int | Tensor = 0,
        geometry_features: list[Tensor] | None = None,
        **kwargs,
    ) -> MultimodalCausalLMOutputWithPast:
        """Next-token logits (and the mean cross-entropy over ``labels``); shapes in the module docstring.

        ``mm_token_type_ids`` (from transformers' processor) is accepted and not needed.
        ``geometry_features``: per video (N_i, 8·C) precomputed ``model.visual.encoder_features``
        (the training's geometry cache); the frozen geometry encoder is then not run.
        """
        if (pixel_values is not None or pixel_values_videos is not None) and input_ids is None:
            raise VLMConfigError("images and videos need input_ids (their placeholders locate the spans).")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        # Qwen3-VL's DeepStack: per early LLM layer, features added at the image and visual-token slots.
        stacked: list[tuple[Tensor, tuple[Tensor, ...]]] = []
        if pixel_values is not None:
            features = self.model.get_image_features(pixel_values, image_grid_thw)
            images = torch.cat(features.pooler_output)
            image_mask = input_ids == self.config.image_token_id
            if int(image_mask.sum()) != images.shape[0]:
                raise VLMConfigError(f"{int(image_mask.sum())} <|image_pad|> tokens for {images.shape[0]} image tokens.")
            inputs_embeds = inputs_embeds.masked_scatter(image_mask.unsqueeze(-1), images.to(inputs_embeds.dtype))
            if getattr(features, "deepstack_features", None):
                stacked.append((image_mask, tuple(torch.cat(f) for f in features.deepstack_features)))
        if pixel_values_videos is not None:
            tokens = self.encode_videos(input_ids, inputs_embeds, pixel_values_videos, video_grid_thw,
                                        second_per_grid_ts, attention_mask, labels, geometry_features)
            video_mask = input_ids == self.config.video_token_id
            inputs_embeds = inputs_embeds.masked_scatter(video_mask.unsqueeze(-1), tokens.embeds.to(inputs_embeds.dtype))
            if tokens.deepstack is not None:
                stacked.append((video_mask & ~self.gsm_slot_mask(input_ids, video_grid_thw), tokens.deepstack))
        if stacked:
            kwargs.update(deepstack_kwargs(stacked))
        if position_ids is None:
            position_ids = self.llm_positions(input_ids, inputs_embeds, attention_mask, image_grid_thw,
                                              video_grid_thw, second_per_grid_ts, cache)
        outputs = self.model.language_model(input_ids=None, position_ids=position_ids, attention_mask=attention_mask,
                                            cache=cache, inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs)
        hidden = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size,
                                      **kwargs)
        return MultimodalCausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache,
                                                hidden_states=outputs.hidden_states, attentions=outputs.attentions)


class GeometryQwen2_5_VL(GeometryVLMixin, Qwen2_5_VLForConditionalGeneration):
    """Qwen2.5-VL with the geometry modules of ``config.geometry`` (see the module docstring).

    ``model.geometry`` is the :class:`GeometryConfig`; ``model.model.visual`` the
    :class:`GeometryVisionTower`. :meth:`encode_videos` returns what the video spans receive
    (GeoSR relevance and keep masks included) without running the LLM.
    """

    def __init__(self, config: Qwen2_5_VLConfig) -> None:
        super().__init__(config)
        self.install_geometry(config, GeometryVisionTower)

    # --------------------------------------------------------------------------- positions
    def get_rope_index(self, input_ids: Tensor, image_grid_thw: Tensor | None = None,
                       video_grid_thw: Tensor | None = None, second_per_grid_ts: Tensor | None = None,
                       attention_mask: Tensor | None = None, **_: object) -> tuple[Tensor, Tensor]:
        """The reference LLM positions (3, B, L) and rope deltas (B, 1); see ``positions.reference_rope_index``."""
        config = self.config
        return reference_rope_index(
            input_ids, image_grid_thw=image_grid_thw, video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts, attention_mask=attention_mask,
            merge_size=config.vision_config.spatial_merge_size,
            tokens_per_second=config.vision_config.tokens_per_second, vision_start_id=config.vision_start_token_id,
            image_id=config.image_token_id, video_id=config.video_token_id)


# Read and write the released (transformers 4.51) layout: the renaming transformers applies to
# its own Qwen2.5-VL, registered for this class (custom classes get none by default).
register_checkpoint_conversion_mapping(
    GeometryQwen2_5_VL.__name__, get_checkpoint_conversion_mapping("Qwen2_5_VLForConditionalGeneration"),
    overwrite=True)
