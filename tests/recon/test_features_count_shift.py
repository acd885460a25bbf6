"""A follow camera: the background slides 60 px while the subject it follows stays put in the image
(``TrackerConfig.count_shift``, off by default, :mod:`recon4d.shift_search`)."""

from __future__ import annotations

import cv2
import numpy as np

from recon4d.recon.classic.features import TrackerConfig, global_shift, track_features
from recon4d.shift_search import refined_shift, shift_scores

HEIGHT, WIDTH, STEP = 216, 384, 60


def followed(n_frames: int = 3, step_px: int = STEP) -> tuple[np.ndarray, np.ndarray]:
    """(T, HEIGHT, WIDTH, 3) uint8 frames of a textured backdrop slid ``step_px`` to the left a frame with a
    strongly textured 120 × 160 subject in the middle of every one, and the (HEIGHT, WIDTH) int16 regions
    (0 background, 1 the subject)."""
    rng = np.random.default_rng(5)
    backdrop = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, WIDTH + step_px * n_frames)).astype(np.float32),
                                (0, 0), 2.0)
    subject = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160)).astype(np.float32), (0, 0), 2.0)
    frames = []
    for t in range(n_frames):
        picture = backdrop[:, t * step_px:t * step_px + WIDTH].copy()
        picture[48:168, 112:272] = subject
        frames.append(np.clip(picture, 0, 255).astype(np.uint8))
    regions = np.zeros((HEIGHT, WIDTH), np.int16)
    regions[40:176, 104:280] = 1
    return np.repeat(np.stack(frames)[..., None], 3, axis=-1), regions


def test_the_count_finds_the_background_past_the_subject_phase_correlation_does_not():
    frames, regions = followed()
    gray, background = frames[..., 0], regions == 0
    counted = global_shift(gray[0], gray[1], TrackerConfig(shift_guess_px=8.0, count_shift=True), background)
    np.testing.assert_allclose(counted, [-STEP, 0], atol=4.0)
    phase = global_shift(gray[0], gray[1], TrackerConfig(shift_guess_px=8.0, count_shift=False), background)
    assert phase is None or abs(phase[0] + STEP) > 20  # the subject holds it near 0


def test_a_still_camera_gets_no_start():
    frames, regions = followed(step_px=0)
    still = global_shift(frames[0, ..., 0], frames[1, ..., 0], TrackerConfig(shift_guess_px=8.0, count_shift=True),
                         regions == 0)
    assert still is None


def test_the_background_tracks_follow_the_slide():
    frames, regions = followed()
    config = TrackerConfig(max_corners=600, shift_guess_px=8.0)
    moved = {}
    for count in (True, False):
        tracks = track_features(frames, lambda t: regions, TrackerConfig(**{**config.__dict__, "count_shift": count}))
        both = tracks.seen[:, 0] & tracks.seen[:, 1] & (tracks.label == 0)
        moved[count] = tracks.xy[both, 1] - tracks.xy[both, 0]
    right = {count: int((np.abs(step[:, 0] + STEP) < 1.0).sum()) for count, step in moved.items()}
    assert right[True] >= 0.8 * len(moved[True]) and right[True] >= 100
    assert right[False] < 0.5 * right[True]


def test_all_shifts_at_once_score_as_one_at_a_time():
    frames, regions = followed()
    a, b = frames[0, ..., 0], frames[1, ..., 0]
    scores = shift_scores(a, b, scale=8, tolerance=6.0)
    size = (WIDTH // 8, HEIGHT // 8)
    small_a, small_b = (cv2.resize(x, size, interpolation=cv2.INTER_AREA).astype(np.float32) for x in (a, b))
    textured = np.hypot(cv2.Sobel(small_a, cv2.CV_32F, 1, 0), cv2.Sobel(small_a, cv2.CV_32F, 0, 1)) >= 8.0
    small_a = np.rint(small_a)
    reach_x, reach_y = scores.reach
    for dy in range(-reach_y, reach_y + 1):
        for dx in range(-reach_x, reach_x + 1):
            moved = np.full_like(small_b, -1000.0)  # b(p + (dx, dy)), nothing outside b
            rows, cols = np.mgrid[0:size[1], 0:size[0]]
            inside = (rows + dy >= 0) & (rows + dy < size[1]) & (cols + dx >= 0) & (cols + dx < size[0])
            moved[inside] = small_b[(rows + dy)[inside], (cols + dx)[inside]]
            expected = np.count_nonzero(textured & (np.abs(small_a - moved) < 6.0)) / textured.sum()
            assert scores.at((8.0 * dx, 8.0 * dy)) == np.float32(expected)
    (dx, dy), score, still = refined_shift(a, b, counted=regions == 0)
    assert (dx, dy) == (-STEP, 0) and score > still
