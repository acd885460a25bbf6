"""Tiny random π³ weights on disk, in the layout the ``pi3`` backend loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def write_tiny_pi3(directory: Path, seed: int = 0) -> Path:
    """Write ``directory/config.json`` (Pi3Config.tiny()) and ``directory/model.safetensors``
    (random weights from ``seed``); returns the directory."""
    import torch
    from safetensors.torch import save_file

    from recon4d.models.pi3 import Pi3, Pi3Config

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = Pi3Config.tiny()
    torch.manual_seed(seed)
    model = Pi3(config)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    return directory
