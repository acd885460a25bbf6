"""Orient Anything gating: a prediction whose confidence is NaN is not confident (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recon4d.orient.orient_anything.orienter import OrientAnythingOrienter  # noqa: E402
from recon4d.types import Clip, Tracks2D  # noqa: E402

from .tiny_orient_anything import write_tiny_orient_anything  # noqa: E402


def test_nan_confidence_gives_no_orientation(tmp_path, monkeypatch):
    write_tiny_orient_anything(tmp_path / "orient-anything")
    orienter = OrientAnythingOrienter.from_config({"conf_threshold": "0", "resize_size": "64", "image_size": "56"},
                                                  "cpu", tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3), np.uint8)
    masks = np.zeros((1, 2, 32, 48), bool)
    masks[:, :, 8:24, 10:30] = True
    tracks = Tracks2D(ids=[0], categories=("person",), is_agent=[True],
                      boxes_xyxy=np.tile(np.array([10, 8, 30, 24], np.float32), (1, 2, 1)),
                      visible=np.ones((1, 2), bool), masks=masks)
    clip = Clip(frames=frames, timestamps_s=[0.0, 0.1], frame_index=[0, 1], fps=10.0, source="x", source_size=(48, 32))
    finite = orienter.orient(clip, tracks)
    assert np.isfinite(finite.angles_deg).all() and np.isfinite(finite.conf).all()

    real = orienter._logits
    monkeypatch.setattr(orienter, "_logits", lambda images: np.full_like(real(images), np.nan))
    unsure = orienter.orient(clip, tracks)
    assert np.isnan(unsure.conf).all()
    assert np.isnan(unsure.angles_deg).all()  # with threshold 0, a NaN conf used to keep its angles
