"""The post-lift trajectory step: clean each object's trajectory and record how far to trust it.

    refine_objects(times, cam_to_world, tracks, lifted, intrinsics, camera_quality) -> RefinedObjects

Per object (:class:`~recon4d.types.ObjectQuality` documents every field):

- its centres are cleaned by :func:`recon4d.lift.trajectory.smooth_track` with the motion
  limits of its category (:func:`recon4d.quality.motion_limits`), leaving out frames whose
  camera pose is not trusted;
- an **identity switch** is suspected at a step where the depth jumps (the raw distance from
  the camera, or a break of the cleaned trajectory) and the box jumps too: it grows or shrinks by more than ``switch_area_ratio`` (neither
  box cut by the image border) or moves by more than ``switch_shift_diagonals`` diagonals (a
  box that only grows is an occlusion or a pose change, not another object); the frame after
  such a step is not ok, so questions never span it;
- the **implied size** (camera depth × box height or width / focal length) must suit the
  category (:func:`recon4d.quality.size_range_m`) along each side the image border does not cut;
  frames where it does not are not ok (a cup 1 m tall is a cup placed too far away);
- the **referent** of each frame: a box whose centre or (uncut) area disagrees with the
  repeated-median prediction from its neighbouring boxes (:func:`box_consistent`) names
  something else there (a merge with a neighbour, a piece, a jump to another thing); that
  frame is not ok, so no question names the object by it (``box_stable_fraction``);
- **persistence**: a track seen in fewer than ``persistent_fraction`` of the clip's frames is
  trusted in proportion (``track_fraction``): flickers of motion and flow ghosts are short;
- **steadiness**: a track whose lifted centre jitters by more than a few per cent of its distance
  from the camera (``noise_fraction``) is trusted less, exponentially (:func:`steadiness`;
  applied last, after the clip's factor below): false tracks throw their depth about;
- **own motion**: a track whose box does not move against the background (the rays through its
  box centres meet in one still point, :mod:`recon4d.lift.own_motion`: a patch of the background
  the motion test mistook) is trusted less, in proportion to its ``motion_evidence`` (applied
  last, with steadiness);
- the **score** is :func:`recon4d.quality.object_score`, with the trust in the clip's scale
  source (:func:`recon4d.quality.scale_trust`): depths resting on a guessed floor need cleaner
  tracks to pass. A floor fitted to people's boxes (a still camera) is only as good as those
  people: when no object called a person is trusted over ``min_person_frames`` frames (and
  ``min_person_fraction`` of the clip), the floor was fitted to something else (hands over a
  table, a banner), every depth rests on a guess, the trust is halved and a warning says so.

With at least ``clip_min_tracks`` tracks, a clip whose median score is below
``clip_median_full`` has every score scaled down in proportion (with a warning): where most
tracks are no real object, the tracker was confused by the clip and the few tracks that pass
are likely artefacts of the same confusion. Tracks the tracker itself dropped as part of the
scene (``Tracks2D.dropped``, the reasons in ``clip_dropped``) count there as tracks scoring 0. Objects whose score is below ``warn_below`` get a
warning line that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from recon4d.lift.own_motion import motion_evidence, own_motion_trust
from recon4d.lift.trajectory import (SmoothConfig, camera_depth, camera_distance, drift_scale, noise_scale,
                                     repeated_median_prediction, smooth_track)
from recon4d.quality import canonical_category, motion_limits, object_score, scale_trust, size_range_m, smoothing_lambda
from recon4d.types import CameraQuality, LiftResult, ObjectQuality, Tracks2D


@dataclass(frozen=True)
class RefineConfig:
    """Settings of the post-lift trajectory step."""

    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    """The robust smoother and its limits."""
    switch_area_ratio: float = 2.5
    """A box growing or shrinking by more than this between consecutive frames suggests a new object."""
    switch_shift_diagonals: float = 1.0
    """A box moving farther than this many diagonals where the 3D trajectory also breaks suggests one."""
    border_px: float = 2.0
    """Boxes this close to the image border (source pixels) are cut: no size or switch test."""
    warn_below: float = 0.5
    """Objects scoring below this get a warning."""
    min_person_frames: int = 8
    """A floor fitted to people (still camera) needs a person track trusted in this many frames..."""
    min_person_fraction: float = 0.25
    """... and in this share of the clip's frames, else every depth is trusted half as much."""
    box_size_ratio: float = 2.0
    """A whole box whose area differs from its neighbours' median by more than this factor names
    something else in that frame (a merge with another object, a piece of it, a jump)."""
    box_shift_diagonals: float = 0.6
    """A box whose centre lies farther than this many diagonals from where its neighbours put it
    names something else. (Measured on the dev scenes of ``benchmarks/pipeline_fidelity.py``:
    1.6 and 0.5 flag 38 % of the classic tracker's wrong-referent frames but also 2.6 % of
    ground-truth boxes, which change with occlusion, and took the gated kept fraction with
    ground-truth tracks below one half; 2.0 and 0.6 flag 20 % and 1.8 %.)"""
    persistent_fraction: float = 0.5
    """A track seen in at least this share of the clip's frames is fully persistent; a shorter one
    is trusted in proportion (a flicker of motion, a ghost of the flow, is short-lived)."""
    clip_min_tracks: int = 3
    """With at least this many tracks, the clip's median score says how well its tracker did..."""
    clip_median_full: float = 0.5
    """... and a median below this scales every score down in proportion: where most tracks are
    no real object, the few that pass are likely artefacts of the same confusion."""
    clip_dropped: tuple[str, ...] = ("scene_share",)
    """Tracks the tracker dropped for these reasons (``Tracks2D.dropped``) count in the clip's
    median as tracks scoring 0: dropping a track the scene around it moves with is evidence of
    the same confusion, not a clip that got cleaner. (Measured on seeds 101–130: with the
    tracker's ``scene_share`` on (off by default), walk scene 124 kept 3 of its 5 tracks, the
    median of the 3 rose above ``clip_median_full`` and its two false tracks passed the gate,
    40/40 → 13/40 of the default-gated questions right; counted, 35/40, the 5 wrong about the
    camera's speed.) Other
    reasons (``"epipolar"``, ``"background_texture"``, short or still tracks) are left out:
    they drop flow ghosts in most clips, cleaner or not: counting ``"epipolar"`` and
    ``"background_texture"`` too scaled 8 of the 30 clips of 101–130 to 0 (a walking camera
    drops up to 7 such tracks; walk 104's one track, a matched object, went to 0 with them);
    the questions compiled under the default gate rose .831 -> .836 (101–130) and .882 -> .913
    (131–150, 558 -> 578 of 633 right: camera questions of clips whose false tracks fell), but
    the benchmark's gated view fell .867 @ 8.2 % -> .862 @ 7.8 % on 101–130 (same on 131–150)."""
    noise_fraction: float | None = 0.025
    """Steadiness: a track whose lifted centres jitter by σ from frame to frame (``noise_m``
    without its drift term, :func:`recon4d.lift.trajectory.noise_scale`) is trusted
    exp(−(σ / (this × its median distance from the camera))²): a real object's centre,
    from a box that stays on it, is steady to 1–2 % of its distance (trust 0.85–1), while a
    false track's box (a flow ghost, a piece of the background, a merge that comes and goes)
    changes shape and throws its depth about (5 %: trust 0.02). None: off. (Measured with
    ``benchmarks/placement_diagnose.py`` on the classic tracker's output of seeds 101–130: the
    noise relative to distance tells matched from unmatched tracks better than any other field
    (AUC 0.75; the score before 0.64); with this factor the QA compiled under the default gate
    agreed 0.82 instead of 0.73 for 6 % fewer questions (0.94 / 0.85 on seeds 101–110, 0.76 /
    0.68 on 111–130), and the ungated questions the gate keeps 0.91 instead of 0.84. A width
    of 0.02 or 0.03 gave the same within 0.03; exp(−noise / (0.03 × distance)) 0.85 but cut
    clean tracks to 0.75.)"""

    drift_window_frames: tuple[int, ...] | None = (5, 9, 15)
    """``noise_m`` also covers errors that last several frames: the RMS residual of the lifted
    centres (inliers of the smoother) from their running median over each of these many frames
    (:func:`recon4d.lift.trajectory.drift_scale`), where larger than the frame-to-frame jitter.
    None: ``noise_m`` is the jitter alone. The smoother's λ and the steadiness trust keep the
    jitter either way, so centres and scores do not change; the QA gate's stability draws grow.
    (Measured with ``benchmarks/placement_diagnose.py`` on seeds 101–130, the RMS error of the
    trusted good-box frames over ``noise_m``, medians: 4.7 along the viewing ray and 3.6 across
    with the jitter alone, 2.4 and 1.6 with these windows; the rest is each object's constant
    offset, which no track's own residuals show: its varying part over ``noise_m`` is 1.15.
    ``benchmarks/pipeline_fidelity.py``, gated / compiled under the default gate: seeds 101–130
    0.888 @ 7.4 % / 0.842 → 0.908 @ 7.2 % / 0.846; 131–150 0.941 @ 8.5 % / 0.879 → 0.969 @ 8.0 %
    / 0.891; ``benchmarks/recon_fidelity.py`` gated 0.876 @ 57.1 % → 0.902 @ 53.2 %. Windows
    (5, 11, 21): error over noise 1.8 and 1.1, gated 0.919 / 0.864 and 0.969 / 0.908, but
    ``recon_fidelity`` kept 48.7 % (0.913).)"""
    smooth_untrusted: bool = False
    """Give a frame whose camera pose is not trusted the centre of a fit over every lifted frame
    instead of its raw lifted centre (it stays not ok). Off: default settings, pipeline_fidelity
    131–150: follow 150's gated 1 of 2 → 0 of 1 (centre error / spread 0.067 → 0.066; 101–130 the
    same). On with the classic camera's ``max_height_drift`` 0.1, which untrusts drifting frames
    of follow cameras: follow 130's centre error / spread 4.26 → 0.20 (0.20 with neither)."""
    own_motion_full: float | None = 2.0
    """Own motion: a track whose motion evidence (:mod:`recon4d.lift.own_motion`: how much better a
    moving point than a still one explains the rays through its box centres, about 1 for a patch
    of the background) is below this is trusted (evidence − 1) / (this − 1). None: off.
    (Measured on the classic pipeline's tracks of seeds 101–130 with the tracker's
    ``component_min_area_fraction=0.002``: the evidence tells the 6 unmatched tracks the default
    gate kept (evidence 1.04–1.82) from the 20 matched ones (1.21–7.4, median 2.8) with AUC 0.94,
    where no other field did (the score 0.56; size, 3D speed and the lifted centre's own
    displacement overlap: a still patch's lifted centre wanders as its depth does); with this
    factor 5 of the 6 fail the gate, 4 matched ones too. Questions compiled under the default
    gate: 0.842 → 0.883 right on 101–130 with the tracker's defaults, 0.824 → 0.892 with that
    option (0.824 → 0.861 on 131–150); ground-truth tracks (``benchmarks/recon_fidelity.py``)
    unchanged, 0.876 at 57 % kept. Measured before ``drift_window_frames``.)"""
    own_motion_window: int = 8
    """Lifted frames in each window of the own-motion test (at most twice as many clip frames apart)."""
    place_unstable: bool = False
    """Frames whose box disagrees with its neighbours' (:func:`box_consistent`: a piece of the
    object, a merge with another, a jump to something else) do not place the object: between
    sound frames the smoother leaves them out of the fit, the noise scale and the spike and break
    tests and gives them its fit through the others (``doubtful`` of
    :func:`recon4d.lift.trajectory.smooth_track`); they stay not ok. False (default): their
    lifted centre counts like any other. Off because the centre error did not fall: on
    ``benchmarks/placement_diagnose.py``'s seeds 101, 106, 109, 116, 121 those frames carry 42,
    22, 96, 20, 97 % of the squared centre error and this lowered their centre error / spread
    0.759 -> 0.698 (109: 0.689 -> 0.373), but ``pipeline_fidelity.py`` (main 30fb30c -> on)
    101-130: centre 0.564 -> 0.563 (covered 0.360 -> 0.369), QA 0.397 -> 0.430 (1185 questions),
    gated 0.935 @ 12.9 % -> 0.961 @ 15.1 %, gated_compile 0.938 unchanged; 131-150: centre
    0.573 -> 0.599, QA 0.414 -> 0.396, gated 0.927 @ 13.6 % -> 0.939 @ 12.4 %, gated_compile
    0.927 -> 0.962. Where doubtful frames sit at a depth break, leaving them out moves the break
    and the re-anchored pieces (104: 0.558 -> 0.841, 132: 0.678 -> 1.274). Leaving the spike,
    break and re-anchoring tests alone (only the fit inside a piece) was neutral: 101-130 centre
    0.564, QA 0.385, gated 0.925; 131-150 centre 0.574, QA 0.415, gated 0.929."""

    def __post_init__(self) -> None:
        if self.drift_window_frames is not None and (isinstance(self.drift_window_frames, (int, str)) or not all(
                int(w) == w and w >= 3 for w in self.drift_window_frames)):
            raise ValueError("RefineConfig: drift_window_frames must be a tuple of integers >= 3 or None.")
        if self.own_motion_full is not None and not self.own_motion_full > 1.0:
            raise ValueError("RefineConfig: own_motion_full must exceed 1 or be None.")
        if int(self.own_motion_window) != self.own_motion_window or self.own_motion_window < 3:
            raise ValueError("RefineConfig: own_motion_window must be an integer >= 3.")
        if not self.switch_area_ratio > 1.0 or not self.switch_shift_diagonals > 0:
            raise ValueError("RefineConfig: switch_area_ratio must exceed 1 and switch_shift_diagonals be positive.")
        if not self.border_px >= 0 or not 0.0 <= self.warn_below <= 1.0:
            raise ValueError("RefineConfig: border_px must be >= 0 and warn_below lie in [0, 1].")
        if not self.box_size_ratio > 1.0:
            raise ValueError("RefineConfig: box_size_ratio must exceed 1.")
        if not self.box_shift_diagonals > 0 or not 0.0 < self.persistent_fraction <= 1.0:
            raise ValueError("RefineConfig: box_shift_diagonals must be positive and persistent_fraction lie in (0, 1].")
        if self.noise_fraction is not None and not self.noise_fraction > 0:
            raise ValueError("RefineConfig: noise_fraction must be positive or None.")
        if isinstance(self.clip_dropped, str):
            raise ValueError("RefineConfig: clip_dropped must be a tuple of reasons, not one string.")
        if int(self.clip_min_tracks) != self.clip_min_tracks or self.clip_min_tracks < 1 or not (
                0.0 < self.clip_median_full <= 1.0):
            raise ValueError("RefineConfig: clip_min_tracks must be an integer >= 1 and clip_median_full lie in (0, 1].")


@dataclass(frozen=True)
class RefinedObjects:
    """What the trajectory step returns.

    lifted:   the input :class:`LiftResult` with cleaned ``center_world`` (and ``center_camera``).
    quality:  the :class:`ObjectQuality` record.
    warnings: one line per object that scored below ``warn_below``.
    """

    lifted: LiftResult
    quality: ObjectQuality
    warnings: tuple[str, ...]


def uncut_sides(boxes: np.ndarray, image_size: tuple[int, int], border_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns), each (K, T) bool: boxes (K, T, 4) xyxy whose top and bottom (rows) or
    left and right (columns) stay ``border_px`` inside an image (width, height)."""
    width, height = image_size
    with np.errstate(invalid="ignore"):
        rows = (boxes[..., 1] >= border_px) & (boxes[..., 3] <= height - border_px)
        columns = (boxes[..., 0] >= border_px) & (boxes[..., 2] <= width - border_px)
    return rows, columns


def whole_boxes(boxes: np.ndarray, image_size: tuple[int, int], border_px: float) -> np.ndarray:
    """(K, T) bool: boxes (K, T, 4) xyxy that stay ``border_px`` inside an image (width, height)."""
    rows, columns = uncut_sides(boxes, image_size, border_px)
    return rows & columns


def box_jumps(boxes: np.ndarray, whole: np.ndarray, area_ratio: float, shift_diagonals: float):
    """Steps t-1 → t of one object's boxes (T, 4) that change a lot, as two (T,) bool arrays.

    grows: the area changes by more than ``area_ratio`` (both boxes whole, ``whole`` (T,));
    moves: the centre moves farther than ``shift_diagonals`` mean diagonals. Index t means
    the step from t-1; index 0 is False.
    """
    size = boxes[:, 2:] - boxes[:, :2]
    area = np.prod(size, axis=1)
    diagonal = np.linalg.norm(size, axis=1)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    grows, moves = np.zeros(len(boxes), bool), np.zeros(len(boxes), bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(area[1:] / area[:-1], area[:-1] / area[1:])
        grows[1:] = (ratio > area_ratio) & whole[1:] & whole[:-1]
        shift = np.linalg.norm(centre[1:] - centre[:-1], axis=1)
        moves[1:] = shift > shift_diagonals * 0.5 * (diagonal[1:] + diagonal[:-1])
    return grows, moves


def box_consistent(boxes: np.ndarray, whole: np.ndarray, size_ratio: float, shift_diagonals: float) -> np.ndarray:
    """(T,) bool: frames whose box (T, 4) xyxy agrees with the boxes of the neighbouring frames.

    Each visible box (finite) is predicted from its six nearest visible boxes in time by a
    repeated-median line (:func:`recon4d.lift.trajectory.repeated_median_prediction`; half of
    them may be wrong without moving it): its centre must lie within ``shift_diagonals``
    diagonals of the predicted centre, and, when it is ``whole`` (T,) (uncut by the image
    border; a box entering the image legitimately grows), its log area within log
    ``size_ratio`` of the area predicted from the whole boxes. Needs five boxes to compare
    (fewer: all True). Non-visible frames are False.
    """
    visible = np.isfinite(boxes).all(axis=1)
    out = visible.copy()
    frames = np.flatnonzero(visible)
    if len(frames) < 5:
        return out
    times = frames.astype(np.float64)
    size = boxes[frames, 2:] - boxes[frames, :2]
    diagonal = np.linalg.norm(size, axis=1)
    centre = 0.5 * (boxes[frames, :2] + boxes[frames, 2:])
    shift = np.linalg.norm(centre - repeated_median_prediction(times, centre), axis=1)
    ok = shift <= shift_diagonals * diagonal
    uncut = np.flatnonzero(whole[frames])
    if len(uncut) >= 5:
        log_area = np.log(np.maximum(size[uncut, 0] * size[uncut, 1], 1e-9))[:, None]
        change = np.abs(log_area - repeated_median_prediction(times[uncut], log_area))[:, 0]
        ok[uncut] &= change <= np.log(size_ratio)
    out[frames] = ok
    return out


def implied_extent_m(depth: np.ndarray, boxes: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(height, width), each (T,), in metres of boxes (T, 4) at camera depths (T,): depth · h / fy
    and depth · w / fx; intrinsics (T, 3, 3) in the boxes' pixels."""
    fx, fy = intrinsics[:, 0, 0], intrinsics[:, 1, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return depth * (boxes[:, 3] - boxes[:, 1]) / fy, depth * (boxes[:, 2] - boxes[:, 0]) / fx


def steadiness(noise_m: np.ndarray, distance_m: np.ndarray, noise_fraction: float) -> np.ndarray:
    """(K,) trust in [0, 1] from how much each track's lifted centre jitters: exp(−(noise_m /
    (noise_fraction · distance_m))²); 1 where either is unknown (fewer than three lifted frames)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        relative = np.asarray(noise_m, np.float64) / (noise_fraction * np.asarray(distance_m, np.float64))
        return np.where(np.isfinite(relative) & (relative >= 0), np.exp(-relative ** 2), 1.0)


def _weigh_own_motion(fields: dict, issues: list, full: float) -> None:
    """Scale each score by its track's own-motion trust (:func:`own_motion_trust`) and say why
    where it falls below 1: ``fields`` (name → (K,)) and ``issues`` (K strings) are updated."""
    trust = own_motion_trust(fields["motion_evidence"], full)
    fields["score"] = (fields["score"] * trust).astype(np.float32)
    for k in np.flatnonzero(trust < 1.0):
        issues[k] = "; ".join(filter(None, [issues[k], f"its box barely moves against the background (motion "
                                                       f"evidence {fields['motion_evidence'][k]:.2f} of {full:g}): "
                                                       "perhaps part of the background"]))


def _describe(category, lifted_fraction, outliers, raw_jumps, max_speed, limit, switches, size_ok, size_range,
              ok_fraction, metric: bool, unstable_boxes: int = 0, track_fraction: float = 1.0,
              persistent_fraction: float = 0.0) -> str:
    issues = []
    if track_fraction < persistent_fraction:
        issues.append(f"seen in only {100 * track_fraction:.0f}% of the frames")
    if unstable_boxes:
        issues.append(f"{unstable_boxes} frame(s) whose box disagrees with its neighbours")
    if lifted_fraction < 0.999:
        issues.append(f"3D centre in {100 * lifted_fraction:.0f}% of visible frames")
    if outliers:
        issues.append(f"{outliers} outlier frame(s)")
    if raw_jumps:
        issues.append(f"{raw_jumps} depth jump(s) over the limit between frames")
    if metric and np.isfinite(max_speed) and max_speed > limit:
        issues.append(f"top speed {max_speed:.1f} m/s over the {limit:g} m/s limit of category {category!r}")
    if switches:
        issues.append(f"{switches} suspected identity switch(es)")
    if np.isfinite(size_ok) and size_ok < 0.999 and size_range is not None:
        (h_lo, h_hi), (w_lo, w_hi) = size_range
        issues.append(f"implied size outside {h_lo:g}–{h_hi:g} m tall, {w_lo:g}–{w_hi:g} m wide in "
                      f"{100 * (1 - size_ok):.0f}% of frames")
    if not metric:
        issues.append("arbitrary scale: speed and depth limits not checked")
    if ok_fraction < 0.999:
        issues.append(f"{100 * ok_fraction:.0f}% of its lifted frames pass")
    return "; ".join(issues)


def refine_objects(times: np.ndarray, cam_to_world: np.ndarray, tracks: Tracks2D, lifted: LiftResult,
                   intrinsics: np.ndarray | None, image_size: tuple[int, int],
                   camera_quality: CameraQuality | None = None,
                   config: RefineConfig = RefineConfig(), unit: str = "unknown") -> RefinedObjects:
    """Clean every object's trajectory and build its quality record.

    times: (T,) s; cam_to_world: (T, 4, 4); tracks: boxes in source pixels of ``image_size``
    (width, height); lifted: centres from :func:`recon4d.lift.lifting.lift_objects`;
    intrinsics: (T, 3, 3) source pixels or None (no size check); camera_quality: frames whose
    pose is not ok are left out of the trajectory fit and not trusted (their centres kept raw, or
    with ``smooth_untrusted`` smoothed with every lifted frame's); an ``"arbitrary"`` scale source or ``unit`` (the
    reconstruction's, :data:`recon4d.types.UNITS`) turns the metric limits off.
    """
    n_objects, n_frames = tracks.visible.shape
    metric = unit != "arbitrary" and (camera_quality is None or camera_quality.scale_source != "arbitrary")
    camera_ok = np.ones(n_frames, bool) if camera_quality is None else camera_quality.frame_ok
    known_k = intrinsics is not None and np.isfinite(intrinsics).all()
    boxes = np.where(tracks.visible[..., None], tracks.boxes_xyxy.astype(np.float64), np.nan)
    rows_uncut, columns_uncut = uncut_sides(boxes, image_size, config.border_px)
    whole = rows_uncut & columns_uncut
    center = lifted.center_world.copy()
    fields = {name: np.full(n_objects, np.nan) for name in ObjectQuality.FIELDS}
    frame_ok = np.zeros((n_objects, n_frames), bool)
    ok_fraction = np.zeros(n_objects)
    distance = np.full(n_objects, np.nan)
    jitter = np.full(n_objects, np.nan)  # frame-to-frame noise (m, per-axis RMS): the smoother's λ, steadiness
    issues, warnings = [], []
    for k in range(n_objects):
        category = tracks.categories[k]
        limits = motion_limits(category)
        visible = tracks.visible[k]
        has_centre = visible & np.isfinite(lifted.center_world[k]).all(axis=1)
        usable = has_centre & camera_ok
        stable = box_consistent(boxes[k], whole[k], config.box_size_ratio, config.box_shift_diagonals)
        track = smooth_track(times, np.where(usable[:, None], lifted.center_world[k], np.nan), cam_to_world, limits,
                             config.smooth, metric, doubtful=~stable if config.place_unstable else None)
        center[k, usable] = track.center[usable]
        untrusted = has_centre & ~camera_ok
        if config.smooth_untrusted and untrusted.any():  # not trusted, but no rawer than the rest
            center[k, untrusted] = smooth_track(times, np.where(has_centre[:, None], lifted.center_world[k], np.nan),
                                                cam_to_world, limits, config.smooth, metric).center[untrusted]
        grows, moves = box_jumps(boxes[k], whole[k], config.switch_area_ratio, config.switch_shift_diagonals)
        switch = (grows | moves) & (track.raw_jump | track.breaks)
        ok = track.frame_ok & ~switch & stable
        size_ok_fraction = np.nan
        size_range = size_range_m(category)
        if size_range is not None and metric and known_k:
            (h_lo, h_hi), (w_lo, w_hi) = size_range
            box_h, box_w = implied_extent_m(camera_depth(np.nan_to_num(center[k]), cam_to_world), boxes[k], intrinsics)
            with np.errstate(invalid="ignore"):
                height_ok = ~rows_uncut[k] | ((box_h >= h_lo) & (box_h <= h_hi))  # a cut side says nothing
                width_ok = ~columns_uncut[k] | ((box_w >= w_lo) & (box_w <= w_hi))
            checked = usable & (rows_uncut[k] | columns_uncut[k]) & np.isfinite(box_h)
            fits = height_ok & width_ok
            if checked.any():
                size_ok_fraction = float(fits[checked].mean())
                ok &= ~checked | fits
        n_visible, n_lifted = int(visible.sum()), int(usable.sum())
        fields["track_fraction"][k] = n_visible / n_frames if n_frames else 0.0
        fields["box_stable_fraction"][k] = stable[visible].mean() if n_visible else np.nan
        fields["lifted_fraction"][k] = n_lifted / n_visible if n_visible else 0.0
        fields["outlier_fraction"][k] = track.outlier[usable].mean() if n_lifted else 0.0
        fields["depth_jumps"][k] = track.raw_depth_jumps
        fields["max_depth_jump_m"][k] = np.nanmax(track.depth_step_m) if np.isfinite(track.depth_step_m).any() else 0
        fields["max_speed_mps"][k] = np.nanmax(track.speed_mps) if np.isfinite(track.speed_mps).any() else 0.0
        fields["speed_limit_mps"][k] = limits.max_speed_mps
        fields["id_switch_steps"][k] = int(switch.sum())
        fields["detection_score"][k] = (np.nanmean(tracks.scores[k][visible]) if tracks.scores is not None
                                        and np.isfinite(tracks.scores[k][visible]).any() else np.nan)
        fields["size_ok_fraction"][k] = size_ok_fraction
        if n_lifted:
            distance[k] = np.median(camera_distance(lifted.center_world[k][usable], cam_to_world[usable]))
        if known_k:
            fields["motion_evidence"][k] = motion_evidence(times, np.where(usable[:, None], boxes[k], np.nan),
                                                           intrinsics, cam_to_world, lifted.center_world[k],
                                                           config.own_motion_window, 2 * config.own_motion_window)
        if n_lifted >= 3:
            sigma = noise_scale(times[usable], lifted.center_world[k][usable], config.smooth.noise_floor_m)
            jitter[k] = float(np.sqrt(np.mean(sigma ** 2)))
            if config.drift_window_frames is not None:  # outliers are replaced by the smoother: not in the stored error
                inliers = usable & ~track.outlier
                sigma = np.maximum(sigma, drift_scale(lifted.center_world[k][inliers], config.drift_window_frames,
                                                      config.smooth.noise_floor_m))
            fields["noise_m"][k] = float(np.sqrt(np.mean(sigma ** 2)))
            fields["smooth_lambda_s3"][k] = (smoothing_lambda(jitter[k], category,
                                                              config.smooth.accel_fraction, config.smooth.accel_time_s)
                                             if config.smooth.enabled else 0.0)
        frame_ok[k] = ok
        ok_fraction[k] = ok.sum() / n_lifted if n_lifted else 0.0
        issues.append(_describe(category, fields["lifted_fraction"][k], int(track.outlier[usable].sum()),
                                track.raw_depth_jumps, fields["max_speed_mps"][k], limits.max_speed_mps,
                                int(switch.sum()), size_ok_fraction, size_range, ok_fraction[k], metric,
                                int((visible & ~stable).sum()), fields["track_fraction"][k],
                                config.persistent_fraction))
    scale_source = "unknown" if camera_quality is None else camera_quality.scale_source
    trust = scale_trust(scale_source)
    if scale_source == "people-prior":
        people = np.array([canonical_category(c) == "person" for c in tracks.categories], bool)
        trusted = frame_ok[people].sum(axis=1)
        if not (trusted >= max(config.min_person_frames, config.min_person_fraction * n_frames)).any():
            trust *= 0.5
            warnings.append("the floor under this still camera was fitted to the boxes of objects called people, "
                            "but none of them is a trustworthy person track: every depth rests on a guessed floor "
                            "(objects on a table or held in the hand come out far too deep) and is trusted half as "
                            "much.")
    fields["score"] = object_score(fields["lifted_fraction"], ok_fraction, fields["id_switch_steps"],
                                   fields["detection_score"], trust,
                                   persistence=np.minimum(1.0, fields["track_fraction"] / config.persistent_fraction))
    seen = tracks.visible.any(axis=1)
    n_dropped = sum(tracks.dropped.get(reason, 0) for reason in config.clip_dropped)
    if seen.any() and seen.sum() + n_dropped >= config.clip_min_tracks:  # nothing kept: nothing to scale
        median = float(np.median(np.concatenate([fields["score"][seen], np.zeros(n_dropped)])))
        if median < config.clip_median_full:
            factor = median / config.clip_median_full
            fields["score"] = (fields["score"] * factor).astype(np.float32)
            counted = f"{int(seen.sum())} tracks" + (f" and {n_dropped} the tracker dropped as part of the scene, "
                                                     "counted as 0" if n_dropped else "")
            warnings.append(f"most tracks of this clip are no trustworthy object (median quality {median:.2f} over "
                            f"{counted}): the tracker was confused here, so every track is trusted "
                            f"{factor:.2f} times as much.")
    if config.noise_fraction is not None:
        steady = steadiness(jitter, distance, config.noise_fraction)
        fields["score"] = (fields["score"] * steady).astype(np.float32)
        for k in np.flatnonzero(steady < 0.5):
            issues[k] = "; ".join(filter(None, [issues[k], f"its 3D centre jitters by {jitter[k]:.2f} m, "
                                                         f"{100 * jitter[k] / distance[k]:.0f}% of its distance"]))
    if config.own_motion_full is not None:
        _weigh_own_motion(fields, issues, config.own_motion_full)
    quality = ObjectQuality(**fields, issues=tuple(issues), frame_ok=frame_ok)
    for k in np.flatnonzero(quality.score < config.warn_below):
        warnings.append(f"object {int(tracks.ids[k])} ({tracks.categories[k]}) is not trusted (quality "
                        f"{quality.score[k]:.2f}): {quality.issues[k] or 'no 3D centre'}")
    world_to_cam = np.linalg.inv(cam_to_world)
    center_camera = np.einsum("tij,ktj->kti", world_to_cam[:, :3, :3], center) + world_to_cam[None, :, :3, 3]
    return RefinedObjects(replace(lifted, center_world=center, center_camera=center_camera), quality,
                          tuple(warnings))
