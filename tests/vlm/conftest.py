"""Fixtures of the VLM tests: the golden folder (required in CI), procedural weights, tiny models."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recon4d.vlm.checkpoint import released_key  # noqa: E402
from tests.conftest import missing_shared_data  # noqa: E402


@pytest.fixture(scope="session")
def vlm_golden(shared_data) -> Path:
    """../shared/data/vlm_golden; missing, it fails under CI=true and skips elsewhere."""
    golden = shared_data / "vlm_golden"
    if not golden.is_dir():
        missing_shared_data(f"the VLM golden folder {golden}")
    return golden


def procedural_weights(model, rule: str = "strict") -> dict:
    """The golden's weights for every state-dict tensor: randn(crc32(released key)) · 0.02, and for
    ``normone`` 1 + that on 1-D ``*.weight`` tensors (the norm scales)."""
    out = {}
    for key, tensor in model.state_dict().items():
        name = released_key(key)
        generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        value = torch.randn(tuple(tensor.shape), generator=generator, dtype=torch.float32) * 0.02
        if rule == "normone" and value.ndim == 1 and name.endswith(".weight"):
            value = 1 + value
        out[key] = value
    return out


def build(config, rule: str | None = None):
    """A model of ``config`` in eval mode; with ``rule``, the golden's procedural weights (skipping
    the random initialisation they replace)."""
    from transformers.initialization import no_init_weights

    from recon4d.vlm import GeometryQwen2_5_VL

    if rule is None:
        return GeometryQwen2_5_VL(config).eval()
    with no_init_weights():
        model = GeometryQwen2_5_VL(config)
    model.load_state_dict(procedural_weights(model, rule), strict=True)
    return model.eval()


def word_tokenizer(vocab_size: int):
    """A stand-in tokenizer: "\\n" is one token, every other whitespace-separated word one id below
    ``vocab_size - 16`` (the micro config's special ids sit above)."""
    import re

    def tokenize(text: str) -> list[int]:
        ids = []
        for piece in re.findall(r"\n|[^\s]+", text):
            ids.append(10 if piece == "\n" else 20 + zlib.crc32(piece.encode()) % (vocab_size - 40))
        return ids

    return tokenize


def random_frames(n_frames: int = 4, height: int = 56, width: int = 56, seed: int = 0):
    """(T, H, W, 3) uint8 random RGB frames."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (n_frames, height, width, 3), dtype=np.uint8)


def micro_batch(fusion: str, questions=("what moves left", "is the red cube closer than the chair"),
                answers=("A", "B"), frame_sizes=((56, 56), (56, 84)), train: bool = True, padding_side="right"):
    """A collated micro-config batch of len(questions) samples, one video each."""
    from recon4d.vlm import micro_config
    from recon4d.vlm.configuration import GeometryConfig
    from recon4d.vlm.processing import GeometryProcessor, collate

    config = micro_config(fusion)
    geometry = GeometryConfig.from_hf_config(config)
    processor = GeometryProcessor(word_tokenizer(config.text_config.vocab_size), geometry)
    samples = []
    for i, question in enumerate(questions):
        height, width = frame_sizes[i % len(frame_sizes)]
        video = processor.video(random_frames(4, height, width, seed=i))
        samples.append(processor.sample(f"<video>\n{question}\nOptions:\nA left\nB right", [video], [1.3 + i],
                                        answer=answers[i] if train else None))
    return config, samples, collate(samples, pad_id=geometry.token_ids.endoftext, padding_side=padding_side)
