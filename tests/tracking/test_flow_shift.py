"""A picture that moves further than dense flow reaches while a subject stays put (a follow camera):
flow_shift.global_shift and flow_shift.shifted_flow (``flow_shift_px``)."""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.flow_shift import global_shift, shifted_flow
from recon4d.tracking.classic.motion import dense_flow, pair_motion


def _followed_pair(step_px: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 384 x 216 frames: a textured background slid ``step_px`` to the left, a textured 80 x 120 subject
    in the middle of both; and the (h, w) bool background pixels clear of the subject and of the border
    the background enters through."""
    rng = np.random.default_rng(3)
    backdrop = cv2.GaussianBlur(rng.uniform(0, 255, (216, 600)).astype(np.float32), (0, 0), 2.0)
    subject = cv2.GaussianBlur(rng.uniform(0, 255, (120, 80)).astype(np.float32), (0, 0), 2.0)

    def frame(offset: int) -> np.ndarray:
        picture = backdrop[:, offset:offset + 384].copy()
        picture[48:168, 152:232] = subject
        return np.clip(picture, 0, 255).astype(np.uint8)

    background = np.ones((216, 384), bool)
    background[40:176, 144:240] = False
    background[:, 384 - step_px - 24:] = False
    return frame(100), frame(100 + step_px), background


def test_global_shift_finds_the_background_past_a_subject_that_stays_put():
    first, second, _ = _followed_pair()
    assert global_shift(first, second, scale=4, least_px=16) == (-60.0, 0.0)


def test_shifted_flow_takes_the_background_from_the_shift_and_keeps_the_subject():
    """Measured: plain DIS puts the background at -0.5 px (it follows the subject), none of it within 1 px
    of the true -60; started from the shift, 67 % of it is, and the subject keeps its flow of 0."""
    first, second, background = _followed_pair()
    dis = dense_flow(ClassicTrackerConfig())
    plain = dis.calc(first, second, None)
    fixed = shifted_flow(first, second, dis, plain, (-60.0, 0.0))
    assert np.mean(np.abs(plain[background][:, 0] + 60) < 1) < 0.05
    assert np.mean(np.abs(fixed[background][:, 0] + 60) < 1) > 0.5
    assert np.abs(fixed[60:156, 164:220]).max() < 0.5


def test_pair_motion_uses_the_shift_only_when_asked():
    first, second, background = _followed_pair()
    plain = pair_motion(first, second, ClassicTrackerConfig())
    shifted = pair_motion(first, second, ClassicTrackerConfig(flow_shift_px=16))
    assert abs(np.median(plain.flow_ab[background][:, 0]) + 60) > 20
    assert abs(np.median(shifted.flow_ab[background][:, 0]) + 60) < 1
    assert abs(np.median(shifted.flow_ba[np.roll(background, -60, axis=1)][:, 0]) - 60) < 1
