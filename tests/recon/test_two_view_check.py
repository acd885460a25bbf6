"""A PnP pose that the step's two-view geometry contradicts (``ClassicConfig.two_view_check_deg``;
recon4d/recon/classic/camera_motion.py: _two_view_checked).

A follow camera turning 12° a step while walking, seen through short feature tracks: where PnP
against the map gets the turn wrong (as on pipeline_fidelity follow seed 115, 1.6° short a step),
the refined essential matrix of the step with its placed neighbour, scaled by the map points both
frames share, places the frame instead.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from recon4d.recon.classic.camera_motion import _two_view_checked, retriangulate, two_view_disagreement
from recon4d.recon.classic.config import ClassicConfig
from tests.recon.test_camera_start import FOCAL_PX, centres, short_tracks, turn_then_walk

CONFIG = ClassicConfig(two_view_check_deg=1.0)


def _scene():
    truth = turn_then_walk(4, 0.3, 12.0, n_turning=0)
    observed = short_tracks(truth, seed=2, life=4, n_points=20000)
    seen = np.isfinite(observed[..., 0])
    points = retriangulate(observed, seen, truth, CONFIG, FOCAL_PX)  # the map, in the truth's scale
    return truth, observed, seen, points


def _turned(pose: np.ndarray, degrees: float) -> np.ndarray:
    """The pose (3, 4) turned about the camera's vertical axis by ``degrees``, its centre kept."""
    turn = Rotation.from_euler("y", degrees, degrees=True).as_matrix()
    centre = -pose[:, :3].T @ pose[:, 3]
    rotation = turn @ pose[:, :3]
    return np.concatenate([rotation, (-rotation @ centre)[:, None]], axis=1)


def test_a_pnp_turn_two_view_contradicts_is_replaced():
    truth, observed, seen, points = _scene()
    wrong = _turned(truth[3], 3.0)
    placed = _two_view_checked(points, observed, seen, truth, 2, 3, wrong, CONFIG, FOCAL_PX)
    assert placed is not None
    turn_error_deg = np.degrees(Rotation.from_matrix(placed[:, :3] @ truth[3, :, :3].T).magnitude())
    assert turn_error_deg < 0.3
    step_m = np.linalg.norm(centres(truth[2:4])[1] - centres(truth[2:4])[0])
    centre_error = np.linalg.norm(centres(placed[None])[0] - centres(truth[3:4])[0])
    assert centre_error < 0.1 * step_m


def test_a_pnp_pose_two_view_agrees_with_stands():
    truth, observed, seen, points = _scene()
    assert _two_view_checked(points, observed, seen, truth, 2, 3, _turned(truth[3], 0.3), CONFIG, FOCAL_PX) is None


def test_a_chain_turned_off_its_steps_two_view_turns_is_measured():
    """``ClassicConfig.max_two_view_turn_deg`` flags such frames (recon4d/recon/classic/camera_motion.py:
    two_view_disagreement): the steps into and out of a frame turned 3° off read about 3° off."""
    truth = turn_then_walk(6, 0.3, 12.0, n_turning=0)
    observed = short_tracks(truth, seed=3, life=4, n_points=20000)
    chain = truth.copy()
    chain[3] = _turned(truth[3], 3.0)
    off_deg = two_view_disagreement(chain, observed, np.ones(len(observed), bool), FOCAL_PX, CONFIG)
    assert np.isnan(off_deg[0])
    assert off_deg[3] > 2.5 and off_deg[4] > 2.5
    assert np.nanmax(off_deg[[1, 2, 5]]) < 0.3
