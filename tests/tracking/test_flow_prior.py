"""A follow camera's turn that dense flow misses, found from ORB features: flow_prior.feature_homography,
flow_prior.prior_flow and pair_motion with ``flow_prior_features``."""

from __future__ import annotations

import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig
from recon4d.tracking.classic.flow_prior import feature_homography, flow_misses, prior_flow
from recon4d.tracking.classic.motion import dense_flow, pair_motion, pair_motions
from tests.tracking.test_flow_shift import _followed_pair

SUBJECT = (slice(60, 156), slice(164, 220))
"""The inside of the subject of _followed_pair (clear of its outline)."""


def test_feature_homography_finds_the_background_past_a_subject_that_stays_put():
    first, second, _ = _followed_pair()
    homography, points_a, points_b = feature_homography(first, second, 500)
    assert np.allclose(homography[:2, 2], (-60.0, 0.0), atol=1.0)
    assert np.allclose(homography[:2, :2], np.eye(2), atol=0.01)
    assert np.median(points_b[:, 0] - points_a[:, 0]) == np.float32(-60.0)


def test_prior_flow_takes_the_background_from_the_homography_and_keeps_the_subject():
    first, second, background = _followed_pair()
    plain = dense_flow(ClassicTrackerConfig()).calc(first, second, None)
    homography, points_a, points_b = feature_homography(first, second, 500)
    assert flow_misses(plain, points_a, points_b) > 20  # plain DIS follows the subject
    fixed = prior_flow(first, second, dense_flow(ClassicTrackerConfig()), plain, homography, 2.0)
    assert np.mean(np.abs(plain[background][:, 0] + 60) < 1) < 0.05
    assert np.mean(np.abs(fixed[background][:, 0] + 60) < 1) > 0.5
    assert np.abs(fixed[SUBJECT]).max() < 0.5
    assert flow_misses(fixed, points_a, points_b) < 1


def test_pair_motion_starts_from_the_features_only_when_asked_and_needed():
    first, second, background = _followed_pair()
    plain = pair_motion(first, second, ClassicTrackerConfig())
    started = pair_motion(first, second, ClassicTrackerConfig(flow_prior_features=500))
    assert abs(np.median(plain.flow_ab[background][:, 0]) + 60) > 20
    assert abs(np.median(started.flow_ab[background][:, 0]) + 60) < 1
    assert abs(np.median(started.flow_ba[np.roll(background, -60, axis=1)][:, 0]) - 60) < 1
    assert np.median(started.residual[0][SUBJECT]) > 2  # the subject stays put against a moving background
    assert np.median(plain.residual[0][SUBJECT]) < 1
    # a small step plain DIS follows: the features agree with its flow, nothing is taken again
    near_first, near_second, _ = _followed_pair(step_px=4)
    near = pair_motion(near_first, near_second, ClassicTrackerConfig())
    asked = pair_motion(near_first, near_second, ClassicTrackerConfig(flow_prior_features=500))
    assert np.array_equal(near.flow_ab, asked.flow_ab) and np.array_equal(near.residual, asked.residual)


def test_started_flows_leave_a_worker_s_plain_flows_alone():
    """DIS keeps state from a started call into its next plain one: pairs computed by threads that reuse
    their DIS equal pairs computed one by one."""
    first, second, _ = _followed_pair()
    gray = np.stack([first, second, first, second])
    config = ClassicTrackerConfig(flow_prior_features=500)
    alone = [pair_motion(gray[t], gray[t + 1], config) for t in range(3)]
    for threads in (1, 2):
        for pair, single in zip(pair_motions(gray, config, threads=threads), alone):
            assert np.array_equal(pair.flow_ab, single.flow_ab) and np.array_equal(pair.flow_ba, single.flow_ba)


def test_the_option_is_checked():
    import pytest

    from recon4d.errors import Recon4dError

    with pytest.raises(Recon4dError, match="flow_prior_features"):
        ClassicTrackerConfig(flow_prior_features=-1)
