"""Tests of recon4d/synth/motion.py and layout.py: stops, crossings, groups, props."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon4d.synth.layout import Prop, footprint_hits, sight_blocked
from recon4d.synth.motion import GroundPath, draw_path, draw_subject_path

STOP = (1.0, 0.8, 0.4)  # start, hold, ramp (s)


def gate_reference(times: np.ndarray, stops) -> np.ndarray:
    """Speed factor (1 moving, 0 stopped) of the time warp, written out piecewise."""
    gate = np.ones_like(times)
    for start, hold, ramp in stops:
        x = times - start
        down = (x >= 0) & (x < ramp)
        gate[down] -= 0.5 - 0.5 * np.cos(np.pi * x[down] / ramp)
        gate[(x >= ramp) & (x < ramp + hold)] = 0.0
        y = x - ramp - hold
        up = (y >= 0) & (y < ramp)
        gate[up] -= 0.5 + 0.5 * np.cos(np.pi * y[up] / ramp)
    return gate


def test_travel_time_is_the_integral_of_the_speed_gate():
    path = GroundPath("ellipse", (0.0, 0.0), (2.0, 1.5), 0.3, 0.1, 0.6, stops=(STOP, (3.0, 0.5, 0.3)))
    fine = np.linspace(-1.0, 5.0, 600_001)
    gate = gate_reference(fine, path.stops)
    integral = np.concatenate([[0.0], np.cumsum((gate[1:] + gate[:-1]) / 2 * np.diff(fine))])
    integral -= np.interp(0.0, fine, integral)  # travel time is 0 at t = 0
    times = np.linspace(-1.0, 5.0, 97)
    np.testing.assert_allclose(path.travel_time(times), np.interp(times, fine, integral), atol=1e-8)


def test_a_stopped_object_holds_still_and_keeps_its_heading():
    path = GroundPath("ellipse", (0.5, -0.5), (2.0, 1.2), 0.0, 0.0, 0.7, stops=(STOP,))
    hold = np.linspace(STOP[0] + STOP[2], STOP[0] + STOP[2] + STOP[1], 9)
    xy, tangent = path.at(hold)
    np.testing.assert_allclose(xy, np.broadcast_to(xy[0], xy.shape), atol=1e-12)
    np.testing.assert_allclose(tangent, np.broadcast_to(tangent[0], tangent.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(tangent, axis=1), 1.0)
    # Before and after the stop it moves, and the heading points along the motion.
    times = np.array([0.5, 0.5 + 1e-4, 3.0, 3.0 + 1e-4])
    xy, tangent = path.at(times)
    for i in (0, 2):
        step = xy[i + 1] - xy[i]
        assert np.linalg.norm(step) > 1e-5
        assert step @ tangent[i] / np.linalg.norm(step) > 0.999


def test_transit_is_straight_at_constant_speed():
    path = GroundPath("transit", (1.0, 2.0), (0.0, 0.0), math.radians(30), 2.0, 3.0)
    xy, tangent = path.at(np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(np.linalg.norm(np.diff(xy, axis=0), axis=1), 3.0)
    np.testing.assert_allclose(xy[2], [1.0, 2.0])
    np.testing.assert_allclose(tangent, np.broadcast_to([math.cos(math.radians(30)), 0.5], (4, 2)))


def test_group_members_keep_their_distance():
    base = GroundPath("ellipse", (0.0, 0.0), (2.2, 1.9), 0.4, 1.0, 0.5, stops=(STOP,))
    times = np.linspace(0.0, 5.0, 61)
    left = GroundPath(**{**base.__dict__, "lateral_m": 0.45}).at(times)[0]
    right = GroundPath(**{**base.__dict__, "lateral_m": -0.45}).at(times)[0]
    np.testing.assert_allclose(np.linalg.norm(left - right, axis=1), 0.9, atol=1e-9)
    behind = GroundPath(**{**base.__dict__, "lag_s": 1.0}).at(times)[0]
    gap = np.linalg.norm(base.at(times)[0] - behind, axis=1)
    assert gap.min() > 0.5  # lag in travel time: while both stand still the gap stays


@pytest.mark.parametrize("category", ["person", "dog", "car", "ball", "box"])
def test_drawn_paths_stay_in_the_yard_at_plausible_speeds(category):
    rng = np.random.default_rng(7)
    times = np.linspace(0.0, 5.0, 61)
    for role in ("stay", "transit"):
        for _ in range(20):
            path = draw_path(category, role, 5.0, rng)
            xy, _ = path.at(times)
            speed = np.linalg.norm(np.diff(xy, axis=0), axis=1) / np.diff(times)
            assert speed.max() < 5.0
            assert np.linalg.norm(xy, axis=1).max() < (11.0 + 1e-9 if role == "transit" else 7.5)
            assert path.kind != "line" or category in ("ball", "box")  # agents and cars never reverse


def test_subject_path_keeps_the_follower_at_distance():
    path, lag = draw_subject_path("person", 5.0, np.random.default_rng(2))
    times = np.linspace(0.0, 5.0, 101)
    chord = np.linalg.norm(path.at(times)[0] - path.at(times - lag)[0], axis=1)
    assert path.stops == () and 3.0 <= chord.min() and chord.max() <= 8.0


# --- layout -----------------------------------------------------------------------------------


class _Block:
    """A stand-in body: only the extent matters to footprints."""

    def __init__(self, extent):
        self.extent = np.asarray(extent, float)


def test_footprint_distance_and_hits():
    prop = Prop(_Block([4.0, 0.4, 2.0]), np.array([1.0, 1.0]), math.pi / 2)  # long side along world y
    points = np.array([[1.0, 1.0], [1.0, 2.9], [1.5, 1.0], [1.0, 4.0], [3.2, 1.0]])
    np.testing.assert_allclose(prop.distance(points), [0.0, 0.0, 0.3, 1.0, 2.0], atol=1e-12)
    np.testing.assert_array_equal(footprint_hits([prop], points, 0.5), [True, True, True, False, False])


def test_sight_blocked_matches_sampling_the_line():
    rng = np.random.default_rng(0)
    props = [Prop(_Block([rng.uniform(0.5, 4), rng.uniform(0.2, 1.0), 2.0]), rng.uniform(-3, 3, 2),
                  float(rng.uniform(0, 6.3))) for _ in range(3)]
    camera, target = rng.uniform(-6, 6, (400, 2)), rng.uniform(-6, 6, (400, 2))
    got = sight_blocked(props, camera, target, object_height=1.5)
    samples = camera[:, None] + np.linspace(0, 1, 4001)[None, :, None] * (target - camera)[:, None]
    expected = footprint_hits(props, samples, 1e-9).any(axis=1)
    assert got.any() and not got.all()
    np.testing.assert_array_equal(got, expected)
    assert not sight_blocked(props, camera, target, object_height=3.0).any()  # props lower than 0.8× the object
