"""Tests of the aperture-aware residual (background.aperture, relative_residual's edges, aperture_window)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon4d.errors import Recon4dError
import recon4d.tracking.classic.motion as motion_module
from recon4d.tracking.classic.background import BackgroundMotion, aperture, prior_intrinsics, relative_residual
from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.motion import pair_motion


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((height, width)) * 255).astype(np.uint8), (5, 5), 1.2)


def _edge_and_texture() -> np.ndarray:
    """(60, 120) uint8: a vertical step edge at x = 30 on the left half, noise texture on the right half."""
    image = np.full((60, 120), 40, np.uint8)
    image[:, 30:60] = 200
    image[:, 60:] = _texture(60, 60)
    return image


def test_aperture_tells_a_straight_edge_from_texture():
    image = _edge_and_texture()
    form = aperture(image, 7)
    # on the vertical edge only the x part (across it) is measured: A ≈ 1, B ≈ C ≈ 0
    np.testing.assert_allclose(form[20:40, 29:31], np.broadcast_to([1.0, 0.0, 0.0], (20, 2, 3)), atol=0.01)
    textured = form[15:45, 75:105]
    assert np.median(textured[..., 2]) > 0.2  # texture measures both directions...
    whole = aperture(image, 7, corner=0.2)[15:45, 75:105]
    assert np.median(whole[..., 0]) == 1.0 and np.median(whole[..., 2]) == 1.0  # ...fully past the corner ratio
    np.testing.assert_array_equal(form[20:40, 5:20], np.broadcast_to([1.0, 0.0, 1.0], (20, 15, 3)))  # blank


def test_relative_residual_counts_only_the_part_across_an_edge():
    image = _edge_and_texture()
    edges = aperture(image, 7)
    predicted = np.zeros((60, 120, 2), np.float32)
    along, across = predicted.copy(), predicted.copy()
    along[..., 1] = 2.0  # along the vertical edge: what flow cannot see there
    across[..., 0] = 2.0
    plain = relative_residual(along, predicted, 0.0)
    np.testing.assert_allclose(plain, 2.0)
    aware = relative_residual(along, predicted, 0.0, edges)
    assert aware[20:40, 29:31].max() < 0.2  # the edge's along-edge difference does not count
    assert np.median(aware[15:45, 75:105]) > 0.8  # the texture's does
    np.testing.assert_allclose(relative_residual(across, predicted, 0.0, edges)[20:40, 29:31], 2.0, rtol=1e-3)


class _GivenFlow:
    """A stand-in for DIS that returns given flows, a → b on its first call and b → a on its second."""

    def __init__(self, forward: np.ndarray, backward: np.ndarray) -> None:
        self._flows = [forward, backward]

    def calc(self, first, second, flow):
        return self._flows.pop(0)


def _translating(shift_px: float, size: tuple[int, int]) -> BackgroundMotion:
    """An epipolar model whose static flow at inverse depth 1 is a shift of about ``shift_px`` right."""
    intrinsics = prior_intrinsics(size, 60.0)
    translation = np.array([shift_px / intrinsics[0, 0], 0.0, 0.0])
    return BackgroundMotion("epipolar", (np.eye(3),), np.eye(3), translation / np.linalg.norm(translation),
                            intrinsics)


def test_pair_motion_judges_edges_across_them_only_when_asked(monkeypatch):
    # the picture moves 3 px right; on a band of horizontal stripes the flow misses that motion (0: along the
    # stripes the two frames look the same), as dense flow does on a lane marking or a roof line
    wide = _texture(120, 220)
    first, second = wide[:, 10:210].copy(), wide[:, 7:207].copy()
    stripes = np.where((np.arange(40) // 3) % 2 == 0, 200, 40).astype(np.uint8)[:, None]
    first[40:80], second[40:80] = stripes, stripes
    forward = np.zeros((120, 200, 2), np.float32)
    forward[..., 0] = 3.0
    forward[40:80, :, 0] = 0.0
    band = (slice(50, 70), slice(40, 160))
    translating = _translating(3.0, (200, 120))
    residuals = []
    for window in (0, 9):
        config = ClassicTrackerConfig(aperture_window=window)
        monkeypatch.setattr(motion_module, "resolve_pose", lambda model, *rest: translating)
        pair = pair_motion(first, second, config, _GivenFlow(forward.copy(), -forward))
        residuals.append(np.median(pair.residual[0][band]))
        assert np.median(pair.residual[0][10:35, 40:160]) < 0.2  # the texture moves with the background
    assert residuals[0] > 1.5  # the flow's miss along the stripes looks like motion...
    assert residuals[1] < 0.2  # ...unless only the part across them counts
    # a still or turning camera (a planar model) keeps the whole residual
    pan = BackgroundMotion("planar", (np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),))
    monkeypatch.setattr(motion_module, "resolve_pose", lambda model, *rest: pan)
    planar = pair_motion(first, second, ClassicTrackerConfig(aperture_window=9), _GivenFlow(forward.copy(), -forward))
    assert np.median(planar.residual[0][band]) > 1.5


@pytest.mark.parametrize("options", [{"aperture_window": -1}, {"aperture_corner": 0.0}, {"aperture_corner": 1.5}])
def test_aperture_options_are_checked(options):
    with pytest.raises(Recon4dError, match="aperture"):
        ClassicTrackerConfig(**options)


def test_pair_motions_compute_each_frame_s_form_once_with_the_same_pairs(monkeypatch):
    from recon4d.tracking.classic.motion import pair_motions

    frames = np.stack([_texture(54, 96, seed)[:, :] for seed in range(4)])
    config = ClassicTrackerConfig(aperture_window=9, aperture_corner=0.2)
    calls = []
    original = motion_module.aperture

    def counting(gray, window, corner=1.0):
        calls.append(window)
        return original(gray, window, corner)

    monkeypatch.setattr(motion_module, "aperture", counting)
    monkeypatch.setattr(motion_module, "resolve_pose", lambda model, *rest: _translating(3.0, (96, 54)))
    alone = [pair_motion(frames[t], frames[t + 1], config) for t in range(3)]
    assert len(calls) == 6
    calls.clear()
    streamed = list(pair_motions(frames, config, threads=2))
    assert len(calls) == len(frames)  # once per frame, not twice
    for one, other in zip(alone, streamed):
        np.testing.assert_array_equal(one.residual, other.residual)
