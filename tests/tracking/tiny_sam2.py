"""Tiny random GroundingDINO and SAM2 weights in the layout the ``sam2`` tracker loads.

    write_tiny_grounding_dino(weights_dir / "grounding-dino")   # config.json, model.safetensors, tokenizer, processor
    write_tiny_sam2(weights_dir / "sam2")                        # tiny.pt ({"model": state_dict}) + config.yaml

Both are deterministic for a seed, take well under a second each and leave torch's global
random state alone. The models are random: they run the real code paths but see nothing.
"""

from __future__ import annotations

from pathlib import Path

# Real BERT (bert-base-uncased) positions that GroundingDINO hard-codes as its special
# tokens ([CLS], [SEP], ".", "?"); the tiny vocabulary keeps them at these ids.
_BERT_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
_WORDS = ("person", "box", "dog", "cat", "horse", "bird", "car", "bicycle", "motorcycle", "ball", "cup", "bottle",
          "chair", "backpack", "man", "woman", "child", "red", "blue", "green", "a", "the")

TINY_SAM2_IMAGE_SIZE = 64

# A reduced sam2.1_hiera_t.yaml: 64 px input (strides 4/8/16/32 give 16/8/4/2 feature maps,
# so the RoPE feat_sizes are 64 / 16 = 4), one or two blocks per Hiera stage (a global-attention block must not be a pooling one), 32-wide neck and
# memory attention, 16-wide memory. SAM2 hard-codes 8 heads (width / 2 must divide by 8)
# and the mask decoder sizes, and the object pointer is split into width / memory-width tokens.
TINY_SAM2_CONFIG = f"""\
# @package _global_
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: 8
      num_heads: 1
      stages: [1, 1, 2, 1]
      global_att_blocks: [3]
      window_spec: [4, 4, 4, 2]
      window_pos_embed_bkg_spatial_size: [4, 4]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 32
        normalize: true
        scale: null
        temperature: 10000
      d_model: 32
      backbone_channel_list: [64, 32, 16, 8]
      fpn_top_down_levels: [2, 3]
      fpn_interp_model: nearest
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: 32
    pos_enc_at_input: true
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: 64
      dropout: 0.1
      pos_enc_at_attn: false
      self_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [4, 4]
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.1
      d_model: 32
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      cross_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [4, 4]
        rope_k_repeat: true
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.1
        kv_in_dim: 16
    num_layers: 1
  memory_encoder:
    _target_: sam2.modeling.memory_encoder.MemoryEncoder
    out_dim: 16
    in_dim: 32
    position_encoding:
      _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
      num_pos_feats: 16
      normalize: true
      scale: null
      temperature: 10000
    mask_downsampler:
      _target_: sam2.modeling.memory_encoder.MaskDownSampler
      embed_dim: 32
      kernel_size: 3
      stride: 2
      padding: 1
    fuser:
      _target_: sam2.modeling.memory_encoder.Fuser
      layer:
        _target_: sam2.modeling.memory_encoder.CXBlock
        dim: 32
        kernel_size: 7
        padding: 3
        layer_scale_init_value: 1e-6
        use_dwconv: true
      num_layers: 1
  num_maskmem: 7
  image_size: {TINY_SAM2_IMAGE_SIZE}
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  use_high_res_features_in_sam: true
  multimask_output_in_sam: true
  iou_prediction_use_sigmoid: true
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: true
  proj_tpos_enc_in_obj_ptrs: true
  use_signed_tpos_enc_to_obj_ptrs: true
  only_obj_ptrs_in_the_past_for_eval: true
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  compile_image_encoder: false
"""


def tiny_vocab() -> dict[str, int]:
    """A WordPiece vocabulary with the real BERT special-token ids and a few category words."""
    size = max(_BERT_IDS.values()) + 1 + len(_WORDS)
    tokens = [f"[unused{i}]" for i in range(size)]
    for token, index in _BERT_IDS.items():
        tokens[index] = token
    for i, word in enumerate(_WORDS):
        tokens[max(_BERT_IDS.values()) + 1 + i] = word
    return {token: i for i, token in enumerate(tokens)}


def write_tiny_grounding_dino(directory: Path, seed: int = 0) -> Path:
    """A random GroundingDINO (tiny Swin + tiny BERT, 20 queries) saved with its processor."""
    import torch
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                      window_size=2, out_indices=[2, 3, 4])
    bert = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    # decoder_layers ≥ 2: GroundingDINO ties the box heads of its decoder layers together
    config = GroundingDinoConfig(backbone_config=swin, text_config=bert, num_queries=20, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, max_text_len=32,
                                 encoder_n_points=2, decoder_n_points=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(directory)
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def write_tiny_sam2(directory: Path, seed: int = 0, name: str = "tiny.pt") -> Path:
    """A random SAM2 video model (:data:`TINY_SAM2_CONFIG`): ``config.yaml`` and ``name`` = {"model": state_dict}."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(TINY_SAM2_CONFIG)
    config = OmegaConf.create(TINY_SAM2_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = instantiate(config.model, _recursive_=True)
    torch.save({"model": model.state_dict()}, directory / name)
    return directory
