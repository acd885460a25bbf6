"""Feature tracks that start from the frame's global shift (recon4d/recon/classic/features.py:
``TrackerConfig.shift_guess_px``, ``global_shift``; ``ClassicConfig.feature_shift_px``).

A camera that turns 5–12° between sampled frames (the follow scenes of pipeline_fidelity)
shifts the image by 45–120 px; Lucas–Kanade from where the point was then slides onto a
neighbouring brick of a repeated texture. The frames here are a brick pattern over fine noise,
panned by a known number of columns per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.recon.classic.config import ClassicConfig
from recon4d.recon.classic.features import TrackerConfig, _follow, _step_shift, global_shift, track_features
from recon4d.recon.classic.reconstructor import ClassicReconstructor

HEIGHT, WIDTH = 180, 320


def brick_wall(width: int, seed: int = 0) -> np.ndarray:
    """(HEIGHT, width) uint8: mortar lines every 12 rows and, offset by row of bricks, every 24 columns."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, width)).astype(np.float32), (0, 0), 1.5)
    rows, cols = np.mgrid[0:HEIGHT, 0:width]
    mortar = ((rows % 12) < 2) | (((cols + 12 * ((rows // 12) % 2)) % 24) < 2)
    return np.clip(0.4 * noise + 150 - 100 * mortar, 0, 255).astype(np.uint8)


def panned(shift_px: int, n_frames: int = 4) -> np.ndarray:
    """(T, HEIGHT, WIDTH, 3) uint8 frames of the wall panned ``shift_px`` columns per frame."""
    wall = brick_wall(WIDTH + shift_px * n_frames)
    frames = np.stack([wall[:, t * shift_px:t * shift_px + WIDTH] for t in range(n_frames)])
    return np.repeat(frames[..., None], 3, axis=-1)


def steps(shift_guess_px, frames):
    """Displacement (n, 2) of the tracks seen in frames 0 and 1, and their start points (n, 2)."""
    tracks = track_features(frames, lambda t: np.zeros((HEIGHT, WIDTH), np.int16),
                            TrackerConfig(max_corners=300, shift_guess_px=shift_guess_px))
    both = tracks.seen[:, 0] & tracks.seen[:, 1]
    return tracks.xy[both, 1] - tracks.xy[both, 0], tracks.xy[both, 0]


def test_global_shift_measures_the_pan_and_is_off_below_its_threshold_or_when_unset():
    frames = panned(40)[..., 0]
    # The rows of bricks repeat every 12 px (3 px at the 1/4 size measured): ±3 px is a good start.
    np.testing.assert_allclose(global_shift(frames[0], frames[1], TrackerConfig(shift_guess_px=8.0)), [-40, 0],
                               atol=3.0)
    assert global_shift(frames[0], frames[1], TrackerConfig(shift_guess_px=None)) is None
    slow = panned(3)[..., 0]
    assert global_shift(slow[0], slow[1], TrackerConfig(shift_guess_px=8.0)) is None


def test_a_fast_pan_over_bricks_keeps_its_tracks_on_their_own_brick():
    # Measured: from where the points were, all 210 tracks followed over a 60 px step landed on
    # another brick (0 right); started from the global shift 242 of 285 are right.
    moved, _ = steps(None, panned(60))
    assert (np.abs(moved[:, 0] + 60) < 1.0).sum() <= 0.1 * len(moved)
    moved, _ = steps(8.0, panned(60))
    right = np.abs(moved[:, 0] + 60) < 1.0
    assert len(moved) >= 200 and right.mean() >= 0.7


def test_points_lost_from_every_start_are_followed_again_from_where_they_were():
    # A still frame pair of smooth noise: the (wrong) start 40 px off loses the points, the last
    # try keeps them put. (On the brick wall a start two bricks off slides onto them: a wrong
    # start is worse than none there, which is why the shift is measured on the whole frame.)
    noise = np.random.default_rng(2).uniform(0, 255, (HEIGHT, WIDTH)).astype(np.float32)
    frame = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 3.0), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    points = np.array([[60.0, 60.0], [160.0, 90.0], [250.0, 120.0]], np.float32)
    ahead, kept = _follow(frame, frame, points, TrackerConfig(shift_guess_px=8.0), [np.array([40.0, 0.0], np.float32)])
    assert kept.all()
    np.testing.assert_allclose(ahead, points, atol=0.05)


def test_the_last_step_is_the_next_start():
    before = np.zeros((10, 2), np.float32)
    np.testing.assert_allclose(_step_shift(before, before + [30.0, -4.0], TrackerConfig(shift_guess_px=8.0)),
                               [30.0, -4.0])
    assert _step_shift(before, before + [3.0, 0.0], TrackerConfig(shift_guess_px=8.0)) is None
    assert _step_shift(before, before + [30.0, 0.0], TrackerConfig()) is None


def test_the_classic_reconstructor_passes_feature_shift_px_to_its_tracker():
    assert ClassicReconstructor(ClassicConfig(feature_shift_px=12.0)).tracker.shift_guess_px == 12.0
    assert ClassicReconstructor(ClassicConfig(feature_shift_px=None)).tracker.shift_guess_px is None
