"""Robust, physically limited smoothing of lifted object trajectories (the post-lift step).

Lifted centres are noisy per frame (one depth per mask, loose masks, a wrong ground contact)
and a single bad frame turns into a 20 m/s spike in a speed question. Per object, over the
frames that got a centre:

1. **Spikes.** Each frame is predicted from its six nearest neighbours in time by a repeated
   median line (Siegel 1982; breakdown 50 %, so two bad neighbours do not move it); a frame
   farther than ``spike_sigma`` noise scales from its prediction is an outlier. The noise
   scale of each world axis is robust too: the MAD of each frame's distance from the straight
   line through its two neighbours.
2. **Breaks.** Between consecutive inlier frames, a change of the distance from the camera
   (the depth along the viewing ray) above ``max_depth_jump_m`` cannot be smoothed into motion (a swapped identity, a box that lost
   the feet its ground contact came from): the trajectory is split there. At most one side of
   such a jump can be right, so only the longest piece of a run of consecutive frames stays
   ok (the others are kept, smoothed on their own, but marked not ok), and the first frame
   after a break is never ok, so no question interval spans it. With ``reanchor_breaks`` (on by
   default) the other pieces are first moved along their viewing rays by one factor each, so
   that their distance from the camera continues the neighbour nearer the longest piece where
   the two sides' lines through their three frames nearest the break meet (``anchor_line``;
   medians of those frames would read the object's own approach as a depth error): a
   monocular depth error is a factor along the ray that lasts while its cause lasts (the feet
   hidden, a box bottom on a shadow or another surface), where an uncorrected piece would put
   a 1 m+ step, a 10 m/s spike, into every speed and distance answer spanning it. Which side is
   right is not known (the longest piece is not always), so the whole run is then scaled back
   to its lifted mean log distance (``anchor_mean``). The moved run is smoothed in one piece
   where it no longer jumps (``anchor_join``: the speed carries on across the break); a jump
   aside, another object taken over, still splits it. The moved pieces and the frames after
   each break stay not ok.
3. **Smoothing.** Each piece is fitted by a penalised least-squares smoother on the true
   frame times (a cubic smoothing spline on samples: minimise Σ wᵢ|yᵢ − zᵢ|² + λ Σ hⱼ|aⱼ|²
   with aⱼ the discrete acceleration and hⱼ its time span), with Tukey biweights
   re-estimated a few times (IRLS). λ = σ² / q with σ the measured noise and q = (a_typ)²·τ
   the spectral density of the category's accelerations (a_typ = ``accel_fraction`` of its
   acceleration limit, τ = ``accel_time_s``): a noisy track is smoothed harder, a fast
   category less. Outlier frames get the smoothed value.
4. **Limits.** A step of the smoothed trajectory faster than the category's speed limit
   (:func:`recon4d.quality.motion_limits`) or changing its distance from the camera by more
   than ``max_depth_jump_m`` marks both its frames not ok; pieces shorter than ``min_run`` frames
   are not ok either.

Metric limits are skipped when the scale is arbitrary (not metres). Assumes the frames' camera
poses are right; frames whose pose is not trusted should be left out by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon4d.quality import ACCEL_TIME_S, MAX_DEPTH_JUMP_M, TYPICAL_ACCEL_FRACTION, MotionLimits

_NEIGHBOURS = 6  # frames predicting each frame in the spike test
_TUKEY_C = 4.685  # 95 % efficiency under Gaussian noise


@dataclass(frozen=True)
class SmoothConfig:
    """How trajectories are cleaned; defaults suit the classic pipeline's noisy lifting."""

    enabled: bool = True
    """Smooth at all; when False the raw centres are kept and only the checks run."""
    spike_sigma: float = 5.0
    """A frame farther than this many noise scales from its neighbours' prediction is an outlier."""
    noise_floor_m: float = 0.02
    """Smallest noise scale assumed per axis (world units), so clean tracks are not over-flagged."""
    accel_fraction: float = TYPICAL_ACCEL_FRACTION
    """Typical acceleration as a fraction of the category's acceleration limit (sets λ)."""
    accel_time_s: float = ACCEL_TIME_S
    """Correlation time of the accelerations, seconds (sets λ)."""
    iterations: int = 4
    """Reweighting rounds of the robust smoother."""
    max_depth_jump_m: float = MAX_DEPTH_JUMP_M
    """Largest change of the distance from the camera between consecutive frames that is believed."""
    min_run: int = 3
    """Pieces of trajectory with fewer frames are not ok (too short to check)."""
    reanchor_breaks: bool = True
    """Move the pieces split off at a depth jump along their rays so that the run has no step
    (they stay not ok); False keeps their lifted depth, and the step (a 1 m+ jump, 6–10 m/s in a
    speed answer) makes phases the truth does not have. Measured with
    ``benchmarks/phase_diagnose.py`` on the classic tracker's tracks of seeds 101–125: of the
    267 wrong answers about matched objects, 149 had more phases than the truth, 41 of those
    with such a step inside the question's interval (the steps were 1 m+ changes of the
    contact depth while the box bottom slid a few pixels: mask flicker, a shadow, feet hidden);
    QA agreement (ungated) 0.272 → 0.298 (101–112: 0.300 → 0.362; 113–125: 0.246 → 0.238),
    centre error (mean over scenes) 0.653 → 0.614 (0.681 → 0.620; 0.623 → 0.607) with the
    defaults below; jumps inside wrong answers' intervals 83 → 26. ``benchmarks/pipeline_fidelity.py``
    (main 122a58b → these defaults): 101–130 QA 0.261 → 0.279, centre 0.638 → 0.564 (0.404 → 0.360
    where the box covers its object), gated 0.919 → 0.931 at 7.2 %, compiled under the default gate
    0.884 (956) → 0.906 (939); 131–150 QA 0.290 → 0.305, centre 0.747 → 0.573 (0.576 → 0.425),
    gated 0.969 at 8.0 % → 0.957 at 8.6 % (62 → 66 right), compiled 0.897 (622) unchanged;
    ``benchmarks/recon_fidelity.py`` (ground-truth tracks) unchanged, QA 0.739. Moved to continue the longest
    piece with median anchors alone (the old option): 0.264 → 0.272 but centres 0.709 → 0.714
    on 101–120 (``pipeline_fidelity.py``)."""
    anchor_line: bool = True
    """With ``reanchor_breaks``: compare the two sides of a break where their least-squares lines
    (over ``anchor_frames`` frames each) meet the break's time, not their medians (which read an
    object's own motion over the frames between the medians as a depth error). (101–112, with
    the longest piece kept and pieces smoothed apart: QA 0.300 → 0.312, centre 0.681 → 0.678.)"""
    anchor_frames: int = 3
    """Inlier frames each side of a break that anchor a moved piece's depth."""
    anchor_mean: bool = True
    """With ``reanchor_breaks``: after the pieces are moved to continue the longest one, scale the
    whole run so that its mean log distance from the camera is the lifted one (no piece is
    believed over the others: the longest is not always right). (101–112, with the options
    above and ``anchor_join``: QA 0.335 → 0.367, centre 0.676 → 0.621.)"""
    anchor_join: bool = True
    """With ``reanchor_breaks``: smooth a run in one piece where the moved pieces no longer jump
    (neither their distance from the camera nor their position changes by ``max_depth_jump_m``
    between inlier frames), so the speed carries on across a break instead of restarting with
    each piece's own straight line; the pieces' trust is unchanged (the moved ones stay not ok).
    A jump aside (another object taken over) still splits the smoothing. (101–112, with line
    anchors and the longest piece kept: QA 0.312 → 0.335, centre 0.678 → 0.676.)"""

    def __post_init__(self) -> None:
        for name in ("spike_sigma", "noise_floor_m", "accel_fraction", "accel_time_s", "max_depth_jump_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"SmoothConfig.{name} must be a positive number, got {value!r}.")
        if int(self.iterations) != self.iterations or self.iterations < 0:
            raise ValueError(f"SmoothConfig.iterations must be an integer >= 0, got {self.iterations!r}.")
        if int(self.anchor_frames) != self.anchor_frames or self.anchor_frames < 1:
            raise ValueError(f"SmoothConfig.anchor_frames must be an integer >= 1, got {self.anchor_frames!r}.")
        if int(self.min_run) != self.min_run or self.min_run < 1:
            raise ValueError(f"SmoothConfig.min_run must be an integer >= 1, got {self.min_run!r}.")


@dataclass(frozen=True)
class SmoothedTrack:
    """One object's cleaned trajectory; all (T, ...) over the clip's frames.

    center:      (T, 3) float64 smoothed world centre, NaN where the input was NaN.
    outlier:     (T,) bool frames rejected as outliers (their centre is the smoothed value).
    breaks:      (T,) bool frames that start a new piece after an unbelievable jump.
    frame_ok:    (T,) bool frames that passed every check.
    raw_depth_jumps: number of consecutive input frames whose distance from the camera changed
                 by more than ``max_depth_jump_m`` (before any cleaning).
    raw_jump:    (T,) bool the input's distance from the camera jumps by more than
                 ``max_depth_jump_m`` from the previous frame to this one.
    speed_mps:   (T,) float64 speed of the stored trajectory from the previous frame (NaN at
                 the first frame of a piece).
    depth_step_m: (T,) float64 |change of the distance from the camera| of the stored trajectory
                 from the previous frame (NaN at the first frame of a piece).
    """

    center: np.ndarray
    outlier: np.ndarray
    breaks: np.ndarray
    frame_ok: np.ndarray
    raw_depth_jumps: int
    raw_jump: np.ndarray
    speed_mps: np.ndarray
    depth_step_m: np.ndarray


def camera_depth(points_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(T,) OpenCV z of world points (T, 3) in the camera of each frame (T, 4, 4)."""
    rotation, origin = cam_to_world[:, :3, :3], cam_to_world[:, :3, 3]
    return np.einsum("ti,ti->t", rotation[:, :, 2], points_world - origin)


def camera_distance(points_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(T,) distance of world points (T, 3) from the camera centre of each frame (T, 4, 4).

    A monocular depth error moves a point along its viewing ray, so a wrong depth shows as a
    jump in this distance; unlike the z of the camera frame, a camera that only turns leaves it
    unchanged.
    """
    return np.linalg.norm(points_world - cam_to_world[:, :3, 3], axis=-1)


def noise_scale(times: np.ndarray, values: np.ndarray, floor: float) -> np.ndarray:
    """Robust per-axis noise σ (D,) of samples (n, D) at ``times`` (n,): MAD of each sample's
    distance from the line through its two neighbours, / √1.5 (its variance under white noise
    for even spacing), at least ``floor``."""
    if len(times) < 3:
        return np.full(values.shape[1], floor)
    left, right = times[1:-1] - times[:-2], times[2:] - times[1:-1]
    between = (values[:-2] * right[:, None] + values[2:] * left[:, None]) / (left + right)[:, None]
    sigma = 1.4826 * np.median(np.abs(values[1:-1] - between), axis=0) / np.sqrt(1.5)
    return np.maximum(sigma, floor)


def drift_scale(values: np.ndarray, windows: tuple[int, ...], floor: float) -> np.ndarray:
    """Per-axis error σ (D,) of samples (n, D) that lasts several samples: for each window of
    ``windows`` (odd sample counts) the RMS residual of the samples from their running median,
    the largest over the windows, at least ``floor``.

    Unlike :func:`noise_scale` (second differences: frame-to-frame jitter, and a MAD that ignores
    any error held by under half the samples) it sees a run of samples that is off together (a
    contact on a cut box bottom, a wrong ground under part of the track): a run shorter than half
    a window does not move that window's median. The ends are padded by point reflection
    (2·first − the next samples), so a steady motion leaves no residual there. Fewer than three
    samples: ``floor``.
    """
    n, dims = values.shape
    sigma = np.full(dims, float(floor))
    if n < 3:
        return sigma
    for window in windows:
        half = min(window // 2, n - 1)
        before = 2.0 * values[:1] - values[half:0:-1]
        after = 2.0 * values[-1:] - values[-2:-half - 2:-1]
        padded = np.concatenate([before, values, after])  # (n + 2·half, D)
        median = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0), axis=-1)  # (n, D)
        sigma = np.maximum(sigma, np.sqrt(np.mean((values - median) ** 2, axis=0)))
    return sigma


def repeated_median_prediction(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each sample (n, D) predicted at its time from its ``_NEIGHBOURS`` nearest neighbours in
    index (not itself) by a repeated-median line, per axis; (n, D). Needs n >= 3."""
    n = len(times)
    m = min(_NEIGHBOURS, n - 1)
    start = np.clip(np.arange(n) - m // 2, 0, n - 1 - m)
    window = start[:, None] + np.arange(m + 1)[None]  # (n, m+1), contains i
    others = np.sort(np.where(window == np.arange(n)[:, None], -1, window), axis=1)[:, 1:]  # drop i: (n, m)
    t, y = times[others], values[others]  # (n, m), (n, m, D)
    dt = t[:, :, None] - t[:, None, :]  # (n, m, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (y[:, :, None, :] - y[:, None, :, :]) / dt[..., None]  # (n, m, m, D)
    off_diagonal = ~np.eye(m, dtype=bool)
    slopes = slopes[:, off_diagonal].reshape(n, m, m - 1, -1)
    slope = np.median(np.median(slopes, axis=2), axis=1)  # (n, D)
    return np.median(y - slope[:, None, :] * (t - times[:, None])[..., None], axis=1)


def _acceleration_bands(times: np.ndarray) -> np.ndarray:
    """Upper banded form (3, n) of Dᵀ diag(h) D, D the discrete acceleration operator on ``times``."""
    n = len(times)
    bands = np.zeros((3, n))
    if n < 3:
        return bands
    left, right = times[1:-1] - times[:-2], times[2:] - times[1:-1]
    span = left + right
    g = 2.0 / span
    coef = np.stack([g / left, -g * (1.0 / left + 1.0 / right), g / right], axis=1)  # (n-2, 3) at j-1, j, j+1
    h = 0.5 * span
    j = np.arange(1, n - 1)
    np.add.at(bands[2], j - 1, h * coef[:, 0] ** 2)
    np.add.at(bands[2], j, h * coef[:, 1] ** 2)
    np.add.at(bands[2], j + 1, h * coef[:, 2] ** 2)
    np.add.at(bands[1], j, h * coef[:, 0] * coef[:, 1])  # (j-1, j) sits at column j
    np.add.at(bands[1], j + 1, h * coef[:, 1] * coef[:, 2])
    np.add.at(bands[0], j + 1, h * coef[:, 0] * coef[:, 2])  # (j-1, j+1) sits at column j+1
    return bands


def penalised_fit(times: np.ndarray, values: np.ndarray, weights: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """argmin_z Σ wᵢ|yᵢ − zᵢ|² + λ Σ hⱼ|aⱼ|², per axis with its own λ.

    times (n,), values (n, D), weights (n,) >= 0, lam (D,) in s³. Returns (n, D). A tiny ridge
    keeps the system definite when fewer than two samples carry weight.
    """
    from scipy.linalg import solveh_banded

    penalty = _acceleration_bands(times)
    out = np.empty_like(values)
    for axis in range(values.shape[1]):
        bands = lam[axis] * penalty
        bands[2] += weights + 1e-9
        out[:, axis] = solveh_banded(bands, weights * values[:, axis])
    return out


def spike_outliers(times: np.ndarray, values: np.ndarray, sigma: np.ndarray, spike_sigma: float) -> np.ndarray:
    """(n,) bool: samples (n, D) farther than ``spike_sigma`` noise scales (D,) from their
    neighbours' repeated-median prediction; none below 5 samples (too few to tell)."""
    if len(times) < 5:
        return np.zeros(len(times), bool)
    residual = (values - repeated_median_prediction(times, values)) / sigma
    return np.linalg.norm(residual, axis=1) > spike_sigma


def _smooth_piece(times, values, spikes, limits: MotionLimits, config: SmoothConfig, sigma):
    """Robust smoothing of one unbroken piece (n, 3) with known ``spikes`` (n,): returns
    (smoothed (n, 3), outlier (n,) bool)."""
    n = len(times)
    outlier = spikes.copy()
    if (~outlier).sum() < 2:
        return values.copy(), outlier
    if not config.enabled or n < 4:
        smoothed = values.copy()
        for axis in range(3):
            smoothed[outlier, axis] = np.interp(times[outlier], times[~outlier], values[~outlier, axis])
        return smoothed, outlier
    typical_accel = config.accel_fraction * limits.max_accel_mps2
    lam = sigma ** 2 / (typical_accel ** 2 * config.accel_time_s)
    weights = (~outlier).astype(np.float64)
    smoothed = penalised_fit(times, values, weights, lam)
    for _ in range(config.iterations):
        r = np.linalg.norm((values - smoothed) / sigma, axis=1) / _TUKEY_C
        weights = np.where(r < 1.0, (1.0 - r ** 2) ** 2, 0.0) * ~outlier
        if weights.sum() < 2:
            break
        smoothed = penalised_fit(times, values, weights, lam)
    outlier |= np.linalg.norm((values - smoothed) / sigma, axis=1) > config.spike_sigma
    return smoothed, outlier


_ANCHOR_FRAMES = 3  # inlier frames either side of a break that anchor a piece's depth


def _depth_at(times: np.ndarray, depth: np.ndarray, frames: np.ndarray, at: float | None) -> float:
    """The distance from the camera of ``frames`` at time ``at``: their median (``at`` None), or
    the least-squares line through them evaluated at ``at`` (a constant with one frame)."""
    if at is None or len(frames) < 2:
        return float(np.median(depth[frames]))
    t = times[frames] - at
    _, intercept = np.polyfit(t, depth[frames], 1)
    return float(intercept)


def reanchor_pieces(center: np.ndarray, camera_position: np.ndarray, cuts: np.ndarray, keep: int,
                    inlier: np.ndarray | None = None, times: np.ndarray | None = None,
                    anchor_frames: int = _ANCHOR_FRAMES, keep_mean: bool = False) -> np.ndarray:
    """Pieces of a run moved along their viewing rays to continue the depth of piece ``keep``.

    center: (n, 3) world centres of one run; camera_position: (n, 3) its frames' camera centres;
    cuts: (P + 1,) piece boundaries (piece p is ``cuts[p]:cuts[p + 1]``); inlier: (n,) bool
    frames whose depth may anchor (default all; spikes should not). Outward from ``keep``, each
    piece is scaled about the camera by the ratio of the distance from the camera of the
    ``anchor_frames`` inlier frames of its (already moved) neighbour nearest the break to that
    of its own: their medians, or with ``times`` (n,) s each side's least-squares line evaluated
    at the break (halfway between the two frames either side of it), so that an object moving
    nearer or farther is not read as a depth error (a median of three frames each side lags its
    motion by about three frames); medians still where either side's nearest anchor lies more
    than ``anchor_frames`` frames from the break (outliers beside it: a line extrapolated that
    far can overshoot by metres). ``keep_mean``: afterwards every piece, ``keep`` too, is
    scaled by one more factor so that the frames' mean log distance from the camera is what it
    was (the least change in log depth, summed over the frames, that removes the steps): where
    no piece is known to be right, none is believed over the others. Returns (n, 3).
    """
    out = center.copy()
    ray = out - camera_position
    depth = np.linalg.norm(ray, axis=1)
    inlier = np.ones(len(center), bool) if inlier is None else np.asarray(inlier, bool)
    n_pieces = len(cuts) - 1

    def near(first: int, stop: int, last: bool) -> np.ndarray:
        frames = np.arange(first, stop)[inlier[first:stop]]
        return frames[-anchor_frames:] if last else frames[:anchor_frames]

    for order in (range(keep + 1, n_pieces), range(keep - 1, -1, -1)):
        for piece in order:
            first, stop = cuts[piece], cuts[piece + 1]
            if piece > keep:  # continue the piece before it
                reference, own = near(cuts[piece - 1], first, True), near(first, stop, False)
                edge = first  # the break lies between frames edge - 1 and edge
            else:  # lead into the piece after it
                reference, own = near(stop, cuts[piece + 2], False), near(first, stop, True)
                edge = stop
            if len(reference) == 0 or len(own) == 0:
                continue
            at = None if times is None else 0.5 * (times[edge - 1] + times[edge])
            # frames between the break and each side's nearest anchor (0: next to it)
            off = max(np.abs(reference + 0.5 - edge).min(), np.abs(own + 0.5 - edge).min()) - 0.5
            if off > anchor_frames:
                at = None  # spikes beside the break: a line would be extrapolated too far, medians are not
            factor = _depth_at(times, depth, reference, at) / _depth_at(times, depth, own, at)
            if np.isfinite(factor) and factor > 0:
                ray[first:stop] *= factor
                depth[first:stop] *= factor
    if keep_mean:
        before = np.linalg.norm(center - camera_position, axis=1)
        usable = inlier & (before > 0) & (depth > 0)
        if usable.any():
            ray *= np.exp(np.mean(np.log(before[usable])) - np.mean(np.log(depth[usable])))
    return camera_position + ray


def _shift(flags: np.ndarray, by: int) -> np.ndarray:
    """flags moved ``by`` frames later (by > 0) or earlier (by < 0), False where nothing moves in."""
    out = np.zeros_like(flags)
    if by > 0:
        out[by:] = flags[:-by]
    else:
        out[:by] = flags[-by:]
    return out


def _inside(flags: np.ndarray) -> np.ndarray:
    """(n,) bool: the indices strictly between the first and the last True of ``flags`` (n,) bool."""
    index = np.flatnonzero(flags)
    at = np.arange(len(flags))
    return (at > index[0]) & (at < index[-1]) if len(index) else np.zeros(len(flags), bool)


def smooth_track(times: np.ndarray, center: np.ndarray, cam_to_world: np.ndarray, limits: MotionLimits,
                 config: SmoothConfig = SmoothConfig(), metric: bool = True,
                 doubtful: np.ndarray | None = None) -> SmoothedTrack:
    """Clean one object's trajectory (see the module docstring).

    times: (T,) s strictly increasing; center: (T, 3) world centres, NaN where not lifted;
    cam_to_world: (T, 4, 4). ``metric`` False (arbitrary scale) skips the speed and
    depth-jump limits. doubtful: (T,) bool or None, frames whose centre is known to be unsound
    (their box is on something else): between sound frames of their run they are outliers from
    the start, so they neither move the fit, nor its noise scale, nor split it at a depth jump,
    and take the smoothed value, except past the last (or before the first) inlier of their
    piece, where a depth break leaves no fit to give and they keep their own centre; at the ends
    of a run (beyond them the fit is a line guessed from one side) they count like the others.
    Returns a :class:`SmoothedTrack`.
    """
    n_frames = len(times)
    have = np.flatnonzero(np.isfinite(center).all(axis=1))
    doubtful = np.zeros(n_frames, bool) if doubtful is None else np.asarray(doubtful, bool)
    out = np.full((n_frames, 3), np.nan)
    outlier = np.zeros(n_frames, bool)
    breaks = np.zeros(n_frames, bool)
    ok = np.zeros(n_frames, bool)
    speed = np.full(n_frames, np.nan)
    depth_step = np.full(n_frames, np.nan)
    depth = np.full(n_frames, np.nan)
    depth[have] = camera_distance(center[have], cam_to_world[have])
    consecutive = np.diff(have) == 1
    max_jump = config.max_depth_jump_m if metric else np.inf
    max_speed = limits.max_speed_mps if metric else np.inf
    raw_jump = np.zeros(n_frames, bool)
    if len(have) > 1:
        raw_jump[have[1:][consecutive & (np.abs(np.diff(depth[have])) > max_jump)]] = True
    raw_jumps = int(raw_jump.sum())

    # Runs of consecutive lifted frames: motion across a gap is unknown, so each run is on its own.
    for run in np.split(have, np.flatnonzero(~consecutive) + 1) if len(have) else []:
        doubt = doubtful[run] & _inside(~doubtful[run])
        sound = run[~doubt]
        sigma = noise_scale(times[sound], center[sound], config.noise_floor_m)
        spikes = doubt.copy()
        spikes[~spikes] = spike_outliers(times[sound], center[sound], sigma, config.spike_sigma)
        inliers = np.flatnonzero(~spikes)
        jumps = np.abs(np.diff(depth[run][inliers])) > max_jump
        cuts = np.concatenate([[0], inliers[1:][jumps], [len(run)]])  # a piece starts after each jump
        longest = np.argmax(np.diff(cuts))
        values = center[run]
        smooth_cuts = cuts
        if config.reanchor_breaks and len(cuts) > 2:
            values = reanchor_pieces(values, cam_to_world[run, :3, 3], cuts, int(longest), ~spikes,
                                     times[run] if config.anchor_line else None, config.anchor_frames,
                                     config.anchor_mean)
            if config.anchor_join:  # smoothed apart only where the moved pieces still jump
                moved = camera_distance(values[inliers], cam_to_world[run][inliers])
                apart = (np.abs(np.diff(moved)) > max_jump) | (
                    np.linalg.norm(np.diff(values[inliers], axis=0), axis=1) > max_jump)
                smooth_cuts = np.concatenate([[0], inliers[1:][apart], [len(run)]])
        for first, stop in zip(smooth_cuts[:-1], smooth_cuts[1:]):
            piece = run[first:stop]
            smoothed, piece_outlier = _smooth_piece(times[piece], values[first:stop], spikes[first:stop], limits,
                                                    config, sigma)
            beyond = doubt[first:stop] & ~_inside(~spikes[first:stop])  # at a break: no fit reaches them
            smoothed = np.where(beyond[:, None], values[first:stop], smoothed)
            out[piece] = smoothed
            outlier[piece] = piece_outlier
            if len(piece) > 1:
                speed[piece[1:]] = np.linalg.norm(np.diff(smoothed, axis=0), axis=1) / np.diff(times[piece])
                depth_step[piece[1:]] = np.abs(np.diff(camera_distance(smoothed, cam_to_world[piece])))
        for index, (first, stop) in enumerate(zip(cuts[:-1], cuts[1:])):
            piece = run[first:stop]
            ok[piece] = len(piece) >= config.min_run and index == longest
            breaks[piece[0]] = first > 0
    # A lone outlier inside a piece is repaired by its neighbours; a run of them is not trusted.
    inlier = np.isfinite(out[:, 0]) & ~outlier
    repaired = outlier & _shift(inlier, 1) & _shift(inlier, -1) & ~breaks & ~_shift(breaks, -1)
    ok &= (~outlier | repaired) & ~breaks
    with np.errstate(invalid="ignore"):
        bad_step = (speed > max_speed) | (depth_step > max_jump)  # the step from t - 1 to t
    ok &= ~bad_step & ~_shift(bad_step, -1)
    return SmoothedTrack(out, outlier, breaks, ok, raw_jumps, raw_jump, speed, depth_step)
