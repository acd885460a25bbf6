"""Configuration of the geometry-aware Qwen2.5-VL (and Qwen3-VL): one switch for GSM, GeoSR and the baselines.

The Hugging Face config of a model stays a stock ``Qwen2_5_VLConfig`` (so a released DSR/GeoSR
checkpoint folder loads as it is and stock transformers still reads ours); the recon4d settings
travel in it as the plain dict ``config.geometry`` (:class:`GeometryConfig` as a dict).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from recon4d.errors import Recon4dError

FUSIONS = ("none", "add", "gsm", "geosr")

QWEN_SPECIAL_IDS = {
    "endoftext": 151643,
    "im_start": 151644,
    "im_end": 151645,
    "vision_start": 151652,
    "vision_end": 151653,
    "vision_pad": 151654,
    "image_pad": 151655,
    "video_pad": 151656,
}


QWEN3_PIXEL_MEAN = (0.5, 0.5, 0.5)
"""Qwen3-VL's pixel normalisation (its processors' mean and std)."""
QWEN3_PIXEL_STD = (0.5, 0.5, 0.5)


class VLMConfigError(Recon4dError, ValueError):
    """A VLM configuration value is invalid (unknown fusion, inconsistent sizes, ...)."""


@dataclass(frozen=True)
class TokenIds:
    """Qwen special-token ids the model and the processing rely on (defaults: the real Qwen ids)."""

    endoftext: int = QWEN_SPECIAL_IDS["endoftext"]
    """``<|endoftext|>``, also Qwen's padding token."""
    im_start: int = QWEN_SPECIAL_IDS["im_start"]
    """``<|im_start|>``, opens a chat turn."""
    im_end: int = QWEN_SPECIAL_IDS["im_end"]
    """``<|im_end|>``, closes a chat turn (and ends generation)."""
    vision_start: int = QWEN_SPECIAL_IDS["vision_start"]
    """``<|vision_start|>``, opens an image or video span."""
    vision_end: int = QWEN_SPECIAL_IDS["vision_end"]
    """``<|vision_end|>``, closes an image or video span."""
    vision_pad: int = QWEN_SPECIAL_IDS["vision_pad"]
    """``<|vision_pad|>`` (unused by Qwen2.5-VL, excluded from the Q-Former text all the same)."""
    image_pad: int = QWEN_SPECIAL_IDS["image_pad"]
    """``<|image_pad|>``, one per merged image token."""
    video_pad: int = QWEN_SPECIAL_IDS["video_pad"]
    """``<|video_pad|>``, one per merged video token and one per GSM token."""

    @classmethod
    def from_hf_config(cls, config) -> TokenIds:
        """The ids a Qwen2.5-VL config states (vision ids, bos = endoftext, eos = im_end); the two it
        does not state follow Qwen's vocabulary layout (im_start = endoftext + 1, vision_pad =
        vision_end + 1)."""
        text = config.text_config
        # Qwen3-VL's text config states neither id.
        bos, eos = getattr(text, "bos_token_id", None), getattr(text, "eos_token_id", None)
        endoftext = bos if bos is not None else cls.endoftext
        im_end = eos if isinstance(eos, int) else cls.im_end
        return cls(endoftext=endoftext, im_start=endoftext + 1, im_end=im_end,
                   vision_start=config.vision_start_token_id, vision_end=config.vision_end_token_id,
                   vision_pad=config.vision_end_token_id + 1, image_pad=config.image_token_id,
                   video_pad=config.video_token_id)

    def non_text(self) -> tuple[int, ...]:
        """Ids that never feed Q-Former 1 (VLM_FACTS §1.5: the reference's fixed list)."""
        return (self.vision_start, self.vision_end, self.vision_pad, self.image_pad, self.video_pad,
                self.endoftext, self.im_start, self.im_end)


@dataclass(frozen=True)
class GeometryConfig:
    """What recon4d adds to Qwen2.5-VL. Defaults are the released DSR Suite / GeoSR models."""

    fusion: str = "gsm"
    """"none" (plain Qwen2.5-VL), "add" (geometry tokens added to the visual tokens),
    "gsm" (DSR Suite Geometry Selection Module) or "geosr" (GSM + GeoSR masking and gated fusion)."""
    num_queries: int = 32
    """Learned Q-Former queries, i.e. GSM tokens written into each video span."""
    encoder_width: int = 1024
    """Token width of the π³ DINOv2 geometry encoder (ViT-L)."""
    encoder_depth: int = 24
    """Blocks of the geometry encoder."""
    encoder_heads: int = 16
    """Attention heads of the geometry encoder."""
    encoder_registers: int = 4
    """Register tokens of the geometry encoder."""
    encoder_pos_grid: int = 37
    """Side of the encoder's learned position grid (518 px / 14)."""
    spatial_patch_size: int = 14
    """Patch side of the geometry encoder; must equal Qwen's patch so tokens pair one-to-one."""
    qformer_seconds_scale: float = 2.0
    """Temporal factor of Q-Former 2's key positions: floor(t · second_per_grid · 2); hard-coded 2 in
    the reference (not ``tokens_per_second``)."""
    clip_mean: tuple[float, float, float] = (0.48145466, 0.4576275, 0.40821073)
    """Mean used to undo Qwen's pixel normalisation. The reference's G value 0.4576275 is a typo of
    CLIP's 0.4578275; kept so the encoder sees what the released model was trained on (VLM_FACTS §1.2).
    Qwen3-VL normalises with 0.5 (its configs here set (0.5, 0.5, 0.5))."""
    clip_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    """Std used to undo Qwen's pixel normalisation (CLIP; 0.5 for Qwen3-VL)."""
    imagenet_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    """Mean of the geometry encoder's input normalisation (ImageNet)."""
    imagenet_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    """Std of the geometry encoder's input normalisation (ImageNet)."""
    mask_fraction: float = 0.8
    """GeoSR γ: share of visual tokens (ceil(γ·N), the most relevant ones) masked in training."""
    mask_probability: float = 0.5
    """GeoSR β: probability that a training sample is masked at all."""
    token_ids: TokenIds = field(default_factory=TokenIds)
    """Special-token ids (the Q-Former text excludes them)."""

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise VLMConfigError(f"fusion must be one of {', '.join(FUSIONS)}; got {self.fusion!r}.")
        if not 0.0 <= self.mask_fraction <= 1.0 or not 0.0 <= self.mask_probability <= 1.0:
            raise VLMConfigError(
                f"mask_fraction and mask_probability must lie in [0, 1]; got {self.mask_fraction} and "
                f"{self.mask_probability}.")
        if self.num_queries < 1:
            raise VLMConfigError(f"num_queries must be at least 1; got {self.num_queries}.")

    @property
    def uses_encoder(self) -> bool:
        """Whether the model holds the geometry encoder and spatial merger ("add", "gsm", "geosr")."""
        return self.fusion != "none"

    @property
    def uses_qformers(self) -> bool:
        """Whether the model holds the Q-Formers and writes GSM tokens ("gsm", "geosr")."""
        return self.fusion in ("gsm", "geosr")

    @property
    def gsm_slots(self) -> int:
        """Extra ``<|video_pad|>`` slots each video needs in the prompt (32 for GSM/GeoSR, else 0)."""
        return self.num_queries if self.uses_qformers else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (stored as ``config.geometry``)."""
        out = asdict(self)
        for key in ("clip_mean", "clip_std", "imagenet_mean", "imagenet_std"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GeometryConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise VLMConfigError(
                f"unknown geometry setting(s) {', '.join(unknown)}; known ones are {', '.join(sorted(known))}.")
        values = dict(values)
        for key in ("clip_mean", "clip_std", "imagenet_mean", "imagenet_std"):
            if key in values:
                values[key] = tuple(values[key])
        if isinstance(values.get("token_ids"), dict):
            values["token_ids"] = TokenIds(**values["token_ids"])
        return cls(**values)

    @classmethod
    def from_hf_config(cls, config, fusion: str | None = None) -> GeometryConfig:
        """The settings carried by a Hugging Face config; ``fusion`` overrides the stored one.

        A released DSR/GeoSR ``config.json`` has no ``geometry`` entry: its GeoSR mask settings
        (``vision_mask_prob``, ``vision_mask_apply_prob``) and ``spatial_patch_size`` are read instead.
        """
        stored = getattr(config, "geometry", None)
        if stored:
            geometry = cls.from_dict(stored)
        else:
            values: dict[str, Any] = {"token_ids": TokenIds.from_hf_config(config)}
            if getattr(config, "model_type", None) == "qwen3_vl":
                values.update(clip_mean=QWEN3_PIXEL_MEAN, clip_std=QWEN3_PIXEL_STD)
            patch = getattr(config.vision_config, "spatial_patch_size", None)
            if patch is not None:
                values["spatial_patch_size"] = int(patch)
            if getattr(config, "vision_mask_prob", None) is not None:
                values["mask_fraction"] = float(config.vision_mask_prob)
            elif getattr(config, "vision_mask_keep_prob", None) is not None:
                values["mask_fraction"] = 1.0 - float(config.vision_mask_keep_prob)
            if getattr(config, "vision_mask_apply_prob", None) is not None:
                values["mask_probability"] = float(config.vision_mask_apply_prob)
            geometry = cls(**values)
        return replace(geometry, fusion=fusion) if fusion is not None else geometry


def attach_geometry(config, geometry: GeometryConfig):
    """Write ``geometry`` into a ``Qwen2_5_VLConfig`` (in place) and return the config.

    Also sets ``vision_config.spatial_patch_size``, which the reference code reads, so a folder
    saved by recon4d loads in the reference classes too.
    """
    check_sizes(config, geometry)
    config.geometry = geometry.to_dict()
    config.vision_config.spatial_patch_size = geometry.spatial_patch_size
    return config


def check_sizes(config, geometry: GeometryConfig) -> None:
    """Raise :class:`VLMConfigError` when the Qwen config cannot host ``geometry``."""
    vision, text = config.vision_config, config.text_config
    # Qwen3-VL (16-px patches) gets its frames resized for the encoder (GeometryModules.encoder_frames);
    # for Qwen2.5-VL the released models pair 14-px patches one-to-one.
    qwen3 = getattr(config, "model_type", None) == "qwen3_vl"
    if geometry.uses_encoder and geometry.spatial_patch_size != vision.patch_size and not qwen3:
        raise VLMConfigError(
            f"the geometry encoder's patch ({geometry.spatial_patch_size} px) must equal Qwen's vision patch "
            f"({vision.patch_size} px): geometry tokens are paired one-to-one with Qwen's patches.")
    if geometry.uses_encoder and (vision.spatial_merge_size != 2 or vision.temporal_patch_size != 2):
        raise VLMConfigError(
            "the 2×2×2 grouping of geometry tokens needs spatial_merge_size = temporal_patch_size = 2; got "
            f"{vision.spatial_merge_size} and {vision.temporal_patch_size}.")
    if geometry.uses_qformers:
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        section = (text.rope_parameters or {}).get("mrope_section")
        if section is None or 2 * sum(section) != head_dim:
            raise VLMConfigError(
                f"text_config.rope_parameters['mrope_section'] must sum to head_dim/2 = {head_dim // 2} for the "
                f"Q-Formers' M-RoPE; got {section}.")
        if vision.out_hidden_size != text.hidden_size:
            raise VLMConfigError(
                f"vision out_hidden_size ({vision.out_hidden_size}) must equal the LLM width ({text.hidden_size}).")


def qwen_config(text: dict[str, Any], vision: dict[str, Any], tie_word_embeddings: bool = False):
    """A ``Qwen2_5_VLConfig`` from text and vision settings (5.x layout), real Qwen token ids."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=dict(text), vision_config=dict(vision), tie_word_embeddings=tie_word_embeddings,
        image_token_id=QWEN_SPECIAL_IDS["image_pad"], video_token_id=QWEN_SPECIAL_IDS["video_pad"],
        vision_start_token_id=QWEN_SPECIAL_IDS["vision_start"], vision_end_token_id=QWEN_SPECIAL_IDS["vision_end"],
    )


def tiny_config(fusion: str = "gsm"):
    """The configuration of ``vlm_golden/config_tiny.json`` (text 64-d × 2 layers, ViT 32-d × 2,
    vocab 151936 with the real Qwen ids) with the golden's depth-2, 56-px geometry encoder.

    About 113 M parameters (the real 8192-wide spatial merger and 1024-wide encoder dominate).
    """
    text = dict(
        vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, hidden_act="silu", max_position_embeddings=4096, initializer_range=0.02,
        rms_norm_eps=1e-6, use_cache=True, use_sliding_window=False, sliding_window=4096, max_window_layers=2,
        attention_dropout=0.0, bos_token_id=151643, eos_token_id=151645,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
    )
    vision = dict(
        depth=2, hidden_size=32, hidden_act="silu", intermediate_size=64, num_heads=2, in_channels=3,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
        out_hidden_size=64, fullatt_block_indexes=[1],
    )
    geometry = GeometryConfig(fusion=fusion, encoder_depth=2, encoder_pos_grid=4)
    return attach_geometry(qwen_config(text, vision), geometry)


def micro_config(fusion: str = "gsm", vocab_size: int = 512):
    """A much smaller configuration for fast CPU tests and training smoke runs (~1 M parameters).

    Same structure as :func:`tiny_config`, but a 64-wide, 1-block geometry encoder (one 64-wide head, as
    DINOv2) and a small
    vocabulary whose top 13 ids play Qwen's special tokens (``TokenIds`` remapped accordingly).
    """
    if vocab_size < 64:
        raise VLMConfigError(f"micro_config needs vocab_size >= 64; got {vocab_size}.")
    top = vocab_size - 1
    ids = TokenIds(endoftext=top - 13, im_start=top - 12, im_end=top - 11, vision_start=top - 4,
                   vision_end=top - 3, vision_pad=top - 2, image_pad=top - 1, video_pad=top)
    text = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, hidden_act="silu", max_position_embeddings=4096, rms_norm_eps=1e-6,
        use_sliding_window=False, bos_token_id=ids.endoftext, eos_token_id=ids.im_end,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [1, 1, 2]},
    )
    vision = dict(
        depth=1, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
        temporal_patch_size=2, tokens_per_second=2, window_size=112, out_hidden_size=32, fullatt_block_indexes=[0],
    )
    from transformers import Qwen2_5_VLConfig

    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=False, image_token_id=ids.image_pad,
        video_token_id=ids.video_pad, vision_start_token_id=ids.vision_start, vision_end_token_id=ids.vision_end)
    geometry = GeometryConfig(fusion=fusion, encoder_width=64, encoder_depth=1, encoder_heads=1,
                              encoder_pos_grid=4, token_ids=ids)
    return attach_geometry(config, geometry)


def qwen2_5_vl_7b_config(fusion: str = "gsm"):
    """Qwen2.5-VL-7B-Instruct's architecture (``config.json`` of the public checkpoint) with ``fusion``.

    Build it on the meta device to inspect the 7B layout without allocating memory.
    """
    text = dict(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, hidden_act="silu", max_position_embeddings=128000, initializer_range=0.02,
        rms_norm_eps=1e-6, use_cache=True, use_sliding_window=False, sliding_window=32768, max_window_layers=28,
        attention_dropout=0.0, bos_token_id=151643, eos_token_id=151645,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    )
    vision = dict(
        depth=32, hidden_size=1280, hidden_act="silu", intermediate_size=3420, num_heads=16, in_channels=3,
        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
        out_hidden_size=3584, fullatt_block_indexes=[7, 15, 23, 31],
    )
    return attach_geometry(qwen_config(text, vision), GeometryConfig(fusion=fusion))


def qwen3_vl_micro_config(fusion: str = "gsm", vocab_size: int = 512):
    """A Qwen3-VL configuration as small as :func:`micro_config` (the second base, issue 13 item 6).

    Text 32-d × 2 layers, 4 heads of 8 (2 KV heads), interleaved M-RoPE sections [2, 1, 1]; ViT
    16-d × 2 blocks with 16-px patches, a 4×4 learned position grid and one DeepStack layer; the same
    64-wide, 1-block geometry encoder (14-px patches: frames are resized to pair with Qwen3's patches);
    the top ids of the vocabulary play Qwen's special tokens.
    """
    from transformers import Qwen3VLConfig

    if vocab_size < 64:
        raise VLMConfigError(f"qwen3_vl_micro_config needs vocab_size >= 64; got {vocab_size}.")
    top = vocab_size - 1
    ids = TokenIds(endoftext=top - 13, im_start=top - 12, im_end=top - 11, vision_start=top - 4,
                   vision_end=top - 3, vision_pad=top - 2, image_pad=top - 1, video_pad=top)
    text = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, hidden_act="silu", max_position_embeddings=4096, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 1, 1],
                         "mrope_interleaved": True},
    )
    vision = dict(
        depth=2, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=16, spatial_merge_size=2,
        temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=16, deepstack_visual_indexes=[0],
    )
    config = Qwen3VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=False, image_token_id=ids.image_pad,
        video_token_id=ids.video_pad, vision_start_token_id=ids.vision_start, vision_end_token_id=ids.vision_end)
    geometry = GeometryConfig(fusion=fusion, encoder_width=64, encoder_depth=1, encoder_heads=1,
                              encoder_pos_grid=4, token_ids=ids, clip_mean=QWEN3_PIXEL_MEAN,
                              clip_std=QWEN3_PIXEL_STD)
    return attach_geometry(config, geometry)
