"""recon4d/lift/trajectory.py: the robust smoother against hand-built spikes, jumps and gaps."""

import numpy as np
import pytest

from recon4d.lift.trajectory import (
    SmoothConfig,
    camera_depth,
    camera_distance,
    drift_scale,
    noise_scale,
    penalised_fit,
    reanchor_pieces,
    repeated_median_prediction,
    smooth_track,
    spike_outliers,
)
from recon4d.quality import MotionLimits, motion_limits

PERSON = motion_limits("person")


def walk(n_frames=32, fps=8.0, speed=1.5, noise=0.05, seed=0, depth=5.0):
    """A person walking across a still camera (identity pose) at ``depth`` m, with noise."""
    times = np.arange(n_frames) / fps
    truth = np.stack([speed * times - 2.0, 0.2 * np.sin(times), np.full(n_frames, depth)], axis=1)
    noisy = truth + np.random.default_rng(seed).normal(0.0, noise, truth.shape)
    return times, truth, noisy, np.tile(np.eye(4), (n_frames, 1, 1))


def test_one_spike_cannot_make_a_fast_step():
    times, truth, noisy, cams = walk()
    spiked = noisy.copy()
    spiked[10, 2] += 3.0  # a depth spike: 24 m/s in and out at 8 fps
    spiked[20, 0] += 2.5
    track = smooth_track(times, spiked, cams, PERSON)
    assert np.flatnonzero(track.outlier).tolist() == [10, 20]
    assert np.nanmax(track.speed_mps) < 3.0  # true speed 1.5 m/s
    assert np.abs(track.center - truth).max() < 0.12
    assert track.frame_ok.all()  # lone outliers are repaired by their neighbours
    assert track.raw_depth_jumps == 4  # into and out of each spike (the sideways one moves 1.1 m off the ray)


def test_two_adjacent_bad_frames_are_caught_and_not_trusted():
    times, truth, noisy, cams = walk(seed=1)
    spiked = noisy.copy()
    spiked[12:14, 2] += 4.0
    track = smooth_track(times, spiked, cams, PERSON)
    assert track.outlier[12:14].all() and track.outlier.sum() == 2
    assert not track.frame_ok[12:14].any() and track.frame_ok.sum() == len(times) - 2
    assert np.abs(track.center - truth).max() < 0.2


def test_smoothing_reduces_noise_without_lagging_a_turn():
    times, truth, noisy, cams = walk(noise=0.15, seed=2)
    track = smooth_track(times, noisy, cams, PERSON)
    raw_error = np.sqrt(np.mean((noisy - truth) ** 2))
    smooth_error = np.sqrt(np.mean((track.center - truth) ** 2))
    assert smooth_error < 0.6 * raw_error
    raw_speed = np.linalg.norm(np.diff(noisy, axis=0), axis=1) * 8.0
    assert np.nanstd(track.speed_mps) < 0.5 * np.std(raw_speed)


def test_a_level_shift_breaks_the_track_and_keeps_the_longest_piece():
    times, truth, noisy, cams = walk(seed=3)
    shifted = noisy.copy()
    shifted[22:, 2] += 3.0  # the contact moved to something else: 3 m deeper for good
    track = smooth_track(times, shifted, cams, PERSON)
    assert track.breaks.sum() == 1 and 21 <= np.flatnonzero(track.breaks)[0] <= 23
    assert not track.frame_ok[21:].any()  # the shorter side is not trusted
    assert track.frame_ok[:19].all()
    ok_steps = track.frame_ok[1:] & track.frame_ok[:-1]
    assert np.nanmax(track.depth_step_m[1:][ok_steps]) < 1.0


def test_a_piece_placed_too_deep_is_moved_back_along_its_rays():
    """From frame 22 on (and before frame 5) the lifted depth is 1.6 and 0.7 times the truth (the
    contact on another surface): the pieces split off there continue the longest piece's depth,
    so the stored trajectory has no 3 m step and keeps near the truth (up to how far the person
    walks away while the spikes around the break are skipped); they stay not ok. Without
    ``reanchor_breaks`` the step stays."""
    times, truth, noisy, cams = walk(seed=3, noise=0.03)
    wrong = noisy.copy()
    wrong[22:] *= 1.6  # the camera sits at the origin: a factor along each ray
    wrong[:5] *= 0.7
    longest = SmoothConfig(anchor_line=False, anchor_mean=False, anchor_join=False)  # the longest piece's depth
    track = smooth_track(times, wrong, cams, PERSON, longest)
    assert track.breaks.sum() == 2 and not track.frame_ok[22:].any() and not track.frame_ok[:6].any()
    assert np.abs(track.center - truth).max() < 0.5
    assert np.nanmax(np.linalg.norm(np.diff(track.center, axis=0), axis=1) * 8.0) < 3.0  # true 1.5 m/s; kept: 24
    kept = smooth_track(times, wrong, cams, PERSON, SmoothConfig(reanchor_breaks=False))  # the lifted depth
    assert np.linalg.norm(kept.center[24:] - truth[24:], axis=1).min() > 2.0
    np.testing.assert_array_equal(kept.frame_ok, track.frame_ok)


def test_reanchor_pieces_scales_each_piece_about_the_camera():
    camera = np.tile([1.0, 0.0, 0.0], (9, 1))
    ray = np.tile([0.0, 0.0, 4.0], (9, 1))
    center = camera + ray * np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])[:, None]
    out = reanchor_pieces(center, camera, np.array([0, 3, 7, 9]), keep=1)
    np.testing.assert_allclose(out, camera + ray)
    kept_first = reanchor_pieces(center, camera, np.array([0, 3, 7, 9]), keep=0)
    np.testing.assert_allclose(kept_first[3:], camera[3:] + 2 * ray[3:])
    spiked = center.copy()
    spiked[2] = camera[2] + 9 * ray[2]  # a spike next to the break does not anchor
    inlier = np.ones(9, bool)
    inlier[2] = False
    moved = reanchor_pieces(spiked, camera, np.array([0, 3, 7, 9]), keep=1, inlier=inlier)
    np.testing.assert_allclose(np.delete(moved, 2, axis=0), np.delete(camera + ray, 2, axis=0))


def test_line_anchors_do_not_read_an_approach_as_a_depth_error():
    """An object walking straight at the camera at 2 m/s; its first four frames lifted 1.2 times
    too deep. The medians of three frames each side are 0.2 s apart in time: they move the piece
    by its own motion (0.4 m) too far; lines through the same frames meet at the break exactly."""
    times = np.arange(10) * 0.1
    camera = np.zeros((10, 3))
    truth = np.stack([np.zeros(10), np.zeros(10), 10.0 - 2.0 * times], axis=1)
    wrong = truth.copy()
    wrong[:4] *= 1.2
    cuts = np.array([0, 4, 10])
    lines = reanchor_pieces(wrong, camera, cuts, keep=1, times=times)
    np.testing.assert_allclose(lines, truth, atol=1e-9)
    medians = reanchor_pieces(wrong, camera, cuts, keep=1)
    assert np.abs(medians[:4, 2] - truth[:4, 2]).min() > 0.3
    later = truth.copy()
    later[7:] *= 0.8  # the same for a piece after the kept one
    np.testing.assert_allclose(reanchor_pieces(later, camera, np.array([0, 7, 10]), keep=0, times=times), truth,
                               atol=1e-9)


def test_anchors_far_from_the_break_are_compared_by_their_medians():
    """Outliers in the five frames before a break leave the kept side's anchors 5 frames away:
    lines through them would be extrapolated over 0.5 s (here a turn there would be read as a
    depth error); medians are compared instead, as without ``times``."""
    times = np.arange(20) * 0.1
    camera = np.zeros((20, 3))
    center = np.stack([np.zeros(20), np.zeros(20), 10.0 - 2.0 * times], axis=1)
    center[10:] *= 1.2
    inlier = np.ones(20, bool)
    inlier[5:10] = False
    cuts = np.array([0, 10, 20])
    far = reanchor_pieces(center, camera, cuts, keep=0, inlier=inlier, times=times)
    np.testing.assert_allclose(far, reanchor_pieces(center, camera, cuts, keep=0, inlier=inlier))
    inlier[5:8] = True  # now the nearest anchor is 2 frames from the break: lines
    near = reanchor_pieces(center, camera, cuts, keep=0, inlier=inlier, times=times)
    np.testing.assert_allclose(near[10:], center[10:] / 1.2, atol=1e-9)


def test_line_anchored_pieces_keep_a_walk_towards_the_camera_steady():
    """``anchor_line``: a person walking at the camera whose first piece is lifted 1.3 times too
    deep keeps its speed across the break (1.5 m/s), where median anchors leave a step."""
    times = np.arange(32) / 8.0
    truth = np.stack([0.1 * times, np.zeros(32), 12.0 - 1.5 * times], axis=1)
    cams = np.tile(np.eye(4), (32, 1, 1))
    wrong = truth + np.random.default_rng(5).normal(0.0, 0.01, truth.shape)
    wrong[:12] *= 1.3
    line = smooth_track(times, wrong, cams, PERSON, SmoothConfig(anchor_mean=False, anchor_join=False))
    median = smooth_track(times, wrong, cams, PERSON, SmoothConfig(anchor_line=False, anchor_mean=False,
                                                                   anchor_join=False))
    assert line.breaks.sum() == 1 and median.breaks.sum() == 1
    assert np.abs(line.center - truth).max() < 0.15
    step_speed = np.linalg.norm(np.diff(line.center, axis=0), axis=1) * 8.0  # across the break too
    assert np.abs(step_speed - 1.5).max() < 0.3
    assert (np.linalg.norm(np.diff(median.center, axis=0), axis=1) * 8.0).max() > 2.5


def test_keep_mean_removes_the_step_without_believing_one_side():
    """Two pieces of 6 and 3 frames, the second twice as deep: moved to continue the longest, the
    run keeps the first piece's depth; with ``keep_mean`` it sits at the frames' geometric mean
    depth (2^(3/9) of the first piece's), still without a step."""
    camera = np.zeros((9, 3))
    ray = np.tile([0.0, 0.0, 1.0], (9, 1))
    center = ray * np.array([4.0] * 6 + [8.0] * 3)[:, None]
    cuts = np.array([0, 6, 9])
    np.testing.assert_allclose(reanchor_pieces(center, camera, cuts, keep=0), ray * 4.0)
    mean = reanchor_pieces(center, camera, cuts, keep=0, keep_mean=True)
    np.testing.assert_allclose(mean, ray * 4.0 * 2.0 ** (3 / 9))


def test_joined_pieces_are_smoothed_as_one_across_a_depth_break():
    """``anchor_join``: once moved, a piece that no longer jumps is smoothed with its neighbour,
    so the speed across the break is measured (1.5 m/s) rather than restarted; the moved piece
    stays not ok. A piece that jumps aside (3 m sideways: another object) is smoothed apart."""
    times = np.arange(32) / 8.0
    truth = np.stack([0.1 * times, np.zeros(32), 12.0 - 1.5 * times], axis=1)
    cams = np.tile(np.eye(4), (32, 1, 1))
    wrong = truth + np.random.default_rng(6).normal(0.0, 0.02, truth.shape)
    wrong[:12] *= 1.3
    config = SmoothConfig(anchor_mean=False)
    joined = smooth_track(times, wrong, cams, PERSON, config)
    apart = smooth_track(times, wrong, cams, PERSON, SmoothConfig(anchor_mean=False, anchor_join=False))
    assert apart.breaks.sum() == 1
    np.testing.assert_array_equal(joined.breaks, apart.breaks)
    at = np.flatnonzero(apart.breaks)[0]
    assert np.isnan(apart.speed_mps[at]) and abs(joined.speed_mps[at] - 1.5) < 0.2
    np.testing.assert_array_equal(joined.frame_ok, apart.frame_ok)
    aside = wrong.copy()
    aside[:12, 0] += 3.0
    split = smooth_track(times, aside, cams, PERSON, config)
    assert split.breaks.sum() == 1 and np.isnan(split.speed_mps[np.flatnonzero(split.breaks)[0]])


def test_speed_limit_marks_impossible_smooth_motion():
    times, _, noisy, cams = walk(speed=25.0, noise=0.02, seed=4)  # 25 m/s sideways: no person runs that fast
    no_jump_limit = SmoothConfig(max_depth_jump_m=100.0)  # this test is about speed alone
    track = smooth_track(times, noisy, cams, PERSON, no_jump_limit)
    assert not track.frame_ok.any()
    car = smooth_track(times, noisy, cams, motion_limits("car"), no_jump_limit)
    assert car.frame_ok.all()
    # with the default 1 m limit, 3 m between frames (2.6 m off the ray) also breaks the car's track
    assert not smooth_track(times, noisy, cams, motion_limits("car")).frame_ok[12:].any()


def test_arbitrary_scale_skips_metric_limits():
    times, _, noisy, cams = walk(speed=25.0, noise=0.02, seed=4)
    assert smooth_track(times, noisy, cams, PERSON, metric=False).frame_ok.all()


def test_gaps_split_runs_and_short_runs_are_not_ok():
    times, _, noisy, cams = walk()
    gappy = noisy.copy()
    gappy[[5, 6, 12, 14]] = np.nan
    track = smooth_track(times, gappy, cams, PERSON)
    assert np.isnan(track.center[[5, 6, 12, 14]]).all()
    assert not track.frame_ok[[13]].any() and not track.frame_ok[[5, 6, 12, 14]].any()
    assert track.frame_ok[7:12].all() and np.isnan(track.speed_mps[7])  # no speed across a gap
    empty = smooth_track(times, np.full_like(noisy, np.nan), cams, PERSON)
    assert not empty.frame_ok.any() and np.isnan(empty.center).all() and empty.raw_depth_jumps == 0


def test_uneven_sampling_uses_true_times():
    times = np.cumsum(np.tile([0.1, 0.2], 16))  # 32 frames alternating 0.1 s and 0.2 s gaps
    truth = np.stack([1.2 * times, np.zeros_like(times), np.full_like(times, 4.0)], axis=1)
    cams = np.tile(np.eye(4), (len(times), 1, 1))
    track = smooth_track(times, truth + np.random.default_rng(5).normal(0, 0.01, truth.shape), cams, PERSON)
    short, long = track.speed_mps[1::2], track.speed_mps[2::2]  # steps over 0.1 s and over 0.2 s
    assert abs(np.mean(short) - 1.2) < 0.05 and abs(np.mean(long) - 1.2) < 0.05
    assert np.allclose(track.speed_mps[1:], 1.2, atol=0.3)


def test_disabled_smoothing_keeps_raw_centres_but_repairs_spikes():
    times, _, noisy, cams = walk()
    spiked = noisy.copy()
    spiked[10, 2] += 3.0
    track = smooth_track(times, spiked, cams, PERSON, SmoothConfig(enabled=False))
    keep = np.ones(len(times), bool)
    keep[10] = False
    np.testing.assert_array_equal(track.center[keep], noisy[keep])
    assert abs(track.center[10, 2] - 5.0) < 0.2


def test_penalised_fit_matches_a_dense_solve_and_keeps_lines():
    rng = np.random.default_rng(6)
    times = np.sort(rng.uniform(0, 3, 12))
    values = rng.normal(size=(12, 2))
    weights = rng.uniform(0.2, 1.0, 12)
    lam = np.array([0.05, 0.5])
    fast = penalised_fit(times, values, weights, lam)
    # slow reference: the acceleration operator written out row by row
    n = len(times)
    D, h = np.zeros((n - 2, n)), np.zeros(n - 2)
    for j in range(1, n - 1):
        left, right = times[j] - times[j - 1], times[j + 1] - times[j]
        g = 2.0 / (left + right)
        D[j - 1, j - 1 : j + 2] = [g / left, -g * (1 / left + 1 / right), g / right]
        h[j - 1] = 0.5 * (left + right)
    for axis in range(2):
        A = np.diag(weights + 1e-9) + lam[axis] * D.T @ np.diag(h) @ D
        np.testing.assert_allclose(fast[:, axis], np.linalg.solve(A, weights * values[:, axis]), atol=1e-8)
    line = np.stack([2 * times + 1, -times], axis=1)
    np.testing.assert_allclose(penalised_fit(times, line, weights, np.array([1e3, 1e3])), line, atol=1e-5)


def test_repeated_median_ignores_bad_neighbours():
    times = np.arange(9) * 0.1
    values = (3 * times)[:, None].copy()
    values[[3, 5]] += 10.0  # two of frame 4's six neighbours are wild
    prediction = repeated_median_prediction(times, values)
    assert abs(prediction[4, 0] - 1.2) < 1e-9
    assert spike_outliers(times, values, np.array([0.05]), 5.0).tolist() == [i in (3, 5) for i in range(9)]


def test_noise_scale_is_robust_and_floored():
    times = np.arange(40) * 0.1
    values = np.random.default_rng(7).normal(0, 0.1, (40, 1))
    values[7] += 50
    assert 0.07 < noise_scale(times, values, 0.01)[0] < 0.14
    assert noise_scale(times, np.zeros((40, 1)), 0.02)[0] == 0.02


def test_drift_scale_sees_a_run_of_samples_off_together_that_the_jitter_misses():
    # 32 samples of a steady walk (1 cm jitter); samples 12-17 are 1.5 m off together (a depth
    # 15 % off at 10 m for six frames). The jitter (second differences, a MAD) misses the run;
    # the drift covers the RMS error of the track.
    times = np.arange(32) / 6.0
    values = np.stack([1.2 * times, np.zeros(32), np.full(32, 10.0)], axis=1)
    values += np.random.default_rng(1).normal(0, 0.01, values.shape)
    offset = np.zeros_like(values)
    offset[12:18, 2] = 1.5
    error_rms = np.sqrt(np.mean(offset ** 2, axis=0))  # per axis
    assert noise_scale(times, values + offset, 0.02)[2] < 0.3 * error_rms[2]
    drift = drift_scale(values + offset, (5, 9, 15), 0.02)
    assert drift[2] >= 0.9 * error_rms[2] and drift[2] < 1.5 * error_rms[2]
    assert (drift[:2] < 0.05).all()
    # A steady motion leaves nothing, ends included (point reflection), nor do white noise's
    # levels change: there it is the jitter.
    np.testing.assert_allclose(drift_scale(values - values + np.arange(32)[:, None] * [0.3, 0.1, 0.0], (5, 9, 15), 0.02),
                               0.02)
    white = np.random.default_rng(2).normal(0, 0.2, (400, 3))
    np.testing.assert_allclose(drift_scale(white, (5, 9, 15), 0.02), noise_scale(np.arange(400.0), white, 0.02),
                               rtol=0.15)
    assert (drift_scale(values[:2], (5,), 0.02) == 0.02).all()


def test_camera_depth_in_each_camera():
    cams = np.tile(np.eye(4), (2, 1, 1))
    cams[1, :3, 3] = [0, 0, -1.0]  # second camera one metre behind
    assert camera_depth(np.array([[0, 0, 2.0], [0, 0, 2.0]]), cams).tolist() == [2.0, 3.0]
    turned = np.tile(np.eye(4), (2, 1, 1))
    turned[1, :3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # the second camera looks sideways
    point = np.array([[0, 0, 2.0], [0, 0, 2.0]])
    assert camera_depth(point, turned)[1] == 0.0 and camera_distance(point, turned).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("bad", [{"spike_sigma": 0}, {"iterations": -1}, {"min_run": 0}, {"accel_time_s": np.nan}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SmoothConfig(**bad)


def test_limits_are_per_category():
    assert motion_limits("Pedestrian") == PERSON and motion_limits("truck").max_speed_mps > 30
    assert motion_limits("zebra") == motion_limits("object")
    assert isinstance(PERSON, MotionLimits) and PERSON.max_speed_mps == 12.0


def test_core_acceleration_penalty_is_the_smoothers_operator():
    from recon4d.quality import acceleration_penalty

    rng = np.random.default_rng(8)
    times = np.sort(rng.uniform(0, 2, 9))
    values = rng.normal(size=(9, 3))
    lam = np.array([0.2, 0.2, 0.2])
    dense = np.linalg.solve(np.eye(9) + 0.2 * acceleration_penalty(times), values)
    np.testing.assert_allclose(penalised_fit(times, values, np.ones(9), lam), dense, atol=1e-7)


def test_smoothed_noise_keeps_what_the_smoother_lets_through():
    from recon4d.quality import smoothed_noise, smoothing_lambda

    times = np.arange(64) / 8.0
    rng = np.random.default_rng(9)
    white = smoothed_noise(times, 0.1, 0.0, rng, 200)
    assert white.shape == (200, 64, 3) and abs(white.std() - 0.1) < 0.005
    lam = float(smoothing_lambda(0.1, "person"))
    assert lam == pytest.approx(0.1 ** 2 / ((0.025 * 15.0) ** 2 * 0.5))
    smooth = smoothed_noise(times, 0.1, lam, rng, 200)
    assert smooth.std() < 0.6 * white.std()
    lag1 = np.mean(smooth[:, 1:] * smooth[:, :-1]) / np.mean(smooth ** 2)
    assert lag1 > 0.8  # correlated in time, as a smoothed trajectory's error is


def test_doubtful_frames_take_the_fit_of_the_sound_ones():
    # Frames 10-13 are off by 0.3 m in depth together: too many, and too small, for the spike
    # test, so the fit follows them; named doubtful (their box is on something else), they do not.
    times, truth, noisy, cams = walk(seed=2)
    shifted = noisy.copy()
    shifted[10:14, 2] += 0.3
    doubtful = np.zeros(len(times), bool)
    doubtful[10:14] = True
    plain = smooth_track(times, shifted, cams, PERSON)
    assert np.abs(plain.center[10:14, 2] - truth[10:14, 2]).max() > 0.12
    track = smooth_track(times, shifted, cams, PERSON, doubtful=doubtful)
    assert np.abs(track.center[:, 2] - truth[:, 2]).max() < 0.06
    assert track.outlier[10:14].all() and not track.frame_ok[10:14].any()


def test_doubtful_frames_at_the_ends_of_a_run_count_like_the_others():
    # Before the first and after the last sound frame the fit would be a line guessed from one
    # side: those doubtful frames are not set aside (the same result as without any).
    times, truth, noisy, cams = walk(seed=3)
    doubtful = np.zeros(len(times), bool)
    doubtful[:3] = doubtful[-2:] = True
    plain = smooth_track(times, noisy, cams, PERSON)
    track = smooth_track(times, noisy, cams, PERSON, doubtful=doubtful)
    np.testing.assert_allclose(track.center, plain.center)
    assert (track.outlier == plain.outlier).all()


def test_doubtful_frames_next_to_a_break_keep_their_own_centre():
    # The depth steps by 3 m at frame 14 and the run breaks; the doubtful frames 14-15 lie past
    # the last inlier of the piece before, where no fit reaches: they keep their lifted centre.
    times, truth, noisy, cams = walk(seed=4, noise=0.03)
    stepped = noisy.copy()
    stepped[14:, 2] += 3.0
    doubtful = np.zeros(len(times), bool)
    doubtful[14:16] = True
    config = SmoothConfig(reanchor_breaks=False)
    plain = smooth_track(times, stepped, cams, PERSON, config)
    assert np.abs(plain.center[14:16, 2] - stepped[14:16, 2]).max() > 1.0  # carried on from the first piece
    track = smooth_track(times, stepped, cams, PERSON, config, doubtful=doubtful)
    assert track.breaks.any() and not track.frame_ok[14:16].any()
    np.testing.assert_allclose(track.center[14:16], stepped[14:16])
