"""Detection scores of the classic tracker: how strongly a detection moves against the background."""

from __future__ import annotations

import numpy as np
import pytest

from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.evidence import detection_scores, frame_evidence
from recon4d.tracking.classic.tracker import ClassicTracker
from recon4d.types import Clip

N_FRAMES, HEIGHT, WIDTH = 14, 180, 320


def two_movers(fast_px: float, slow_px: float) -> np.ndarray:
    """(T, H, W, 3) uint8: a still textured background and two textured squares crossing it, the upper one
    ``fast_px`` and the lower one ``slow_px`` per frame to the right."""
    rng = np.random.default_rng(3)
    background = (rng.random((HEIGHT, WIDTH, 3)) * 255).astype(np.uint8)
    patches = [(rng.random((36, 36, 3)) * 255).astype(np.uint8) for _ in range(2)]
    frames = np.repeat(background[None], N_FRAMES, axis=0)
    for t in range(N_FRAMES):
        for patch, (top, speed) in zip(patches, ((30, fast_px), (110, slow_px))):
            left = int(round(40 + speed * t))
            frames[t, top:top + 36, left:left + 36] = patch
    return frames


def clip_of(frames: np.ndarray) -> Clip:
    return Clip(frames=frames, timestamps_s=np.arange(len(frames)) / 12.0, frame_index=np.arange(len(frames)),
                fps=12.0, source="synthetic", source_size=(WIDTH, HEIGHT))


def test_frame_evidence_of_a_strong_and_a_weak_mover():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    moving = mask.copy()
    moving[5:10] = False  # half the mask passed the motion test
    image_flow = np.zeros((20, 20, 2), np.float32)
    strong, weak = image_flow.copy(), image_flow.copy()
    strong[mask] = (6.0, 8.0)  # 10 px per step against a still background
    weak[mask] = (1.2, 1.6)  # 2 px
    share, strength = frame_evidence(mask, moving, strong, strong, 2.0, 0.2)
    assert share == pytest.approx(0.5) and strength == pytest.approx(5.0)
    assert frame_evidence(mask, moving, weak, weak, 2.0, 0.2)[1] == pytest.approx(1.0)
    # the same object motion over a background moving 5 px counts 1 + 0.2 · 5 times less
    panned = strong.copy()
    panned[..., 0] += 5.0
    assert frame_evidence(mask, moving, panned, strong, 2.0, 0.2)[1] == pytest.approx(2.5)
    assert np.isnan(frame_evidence(np.zeros((20, 20), bool), moving, strong, strong, 2.0, 0.2)).all()


def test_detection_scores_are_clipped_to_the_unit_interval_and_keep_nan():
    scores = detection_scores(np.array([[0.0, 1.5, 3.0, 9.0, np.nan]]), 3.0)
    assert scores.dtype == np.float32 and scores.shape == (1, 5)
    np.testing.assert_allclose(scores, [[0.0, 0.5, 1.0, 1.0, np.nan]])


def test_tracker_scores_a_fast_mover_above_a_slow_one():
    clip = clip_of(two_movers(fast_px=5.0, slow_px=2.0))
    assert ClassicTracker().track(clip).scores is None  # off by default
    tracks = ClassicTracker(ClassicTrackerConfig(detection_score_full=8.0)).track(clip)
    scores = tracks.scores
    assert tracks.n_objects == 2 and scores.shape == (2, N_FRAMES) and scores.dtype == np.float32
    assert np.isnan(scores[~tracks.visible]).all()
    finite = scores[np.isfinite(scores)]
    assert len(finite) > N_FRAMES and ((finite >= 0) & (finite <= 1)).all()
    top = np.nanmean(np.where(tracks.visible, tracks.boxes_xyxy[..., 1], np.nan), axis=1)
    fast, slow = np.argsort(top)  # the fast square is the upper one
    assert np.nanmean(scores[fast]) > np.nanmean(scores[slow]) + 0.2
