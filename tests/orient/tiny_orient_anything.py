"""A tiny random Orient Anything model written in the layout the orient-anything backend loads.

    write_tiny_orient_anything(weights_dir / "orient-anything")   # then --orient orient-anything

Layout (as for the public files): ``dino_weight.pt``, a ``torch.save``-d state dict of the whole
model under the public checkpoint's key names (transformers 4.x DINOv2 names,
``down_sampler.net{1,2}`` head), and ``dinov2/config.json``, a DINOv2 config in the shape of
facebook/dinov2-large's (hidden 32, 2 layers, 2 heads, 28-pixel images of 14-pixel patches).
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_DINOV2_CONFIG = {
    "architectures": ["Dinov2Model"],
    "attention_probs_dropout_prob": 0.0,
    "drop_path_rate": 0.0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 32,
    "image_size": 28,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-06,
    "layerscale_value": 1.0,
    "mlp_ratio": 4,
    "model_type": "dinov2",
    "num_attention_heads": 2,
    "num_channels": 3,
    "num_hidden_layers": 2,
    "patch_size": 14,
    "qkv_bias": True,
    "use_swiglu_ffn": False,
}


def write_tiny_orient_anything(directory: Path, n_outputs: int = 722, seed: int = 0) -> Path:
    """Write a random tiny model with ``n_outputs`` (722 or 902) to ``directory``; returns it."""
    import torch
    from transformers import Dinov2Config

    from recon4d.orient.orient_anything.model import OrientAnythingNet, to_public_names

    directory = Path(directory)
    (directory / "dinov2").mkdir(parents=True, exist_ok=True)
    (directory / "dinov2" / "config.json").write_text(json.dumps(TINY_DINOV2_CONFIG, indent=2))
    torch.manual_seed(seed)
    model = OrientAnythingNet(Dinov2Config.from_dict(TINY_DINOV2_CONFIG), n_outputs)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        else:  # random everywhere (layer scales and norms too), so outputs depend on every tensor
            state[key] = torch.randn(value.shape, generator=generator) * 0.5
    torch.save(to_public_names(state), directory / "dino_weight.pt")
    return directory
