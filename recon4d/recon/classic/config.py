"""Settings of the ``classic`` reconstruction backend (:mod:`recon4d.recon.classic.reconstructor`) and its error."""

from __future__ import annotations

import math
from dataclasses import dataclass

from recon4d.errors import Recon4dError


class ClassicReconstructionError(Recon4dError):
    """The classic backend cannot reconstruct this input (no frames, mismatched tracks, bad options)."""


@dataclass(frozen=True)
class ClassicConfig:
    """Settings of the classic reconstructor; ``from_options`` builds one from plain CLI options.

    Pixel thresholds are in clip pixels (the frames given to the reconstructor); intrinsics
    in source-video pixels.
    """

    fov_deg: float = 60.0
    """Horizontal field of view across the longer image side, used when no focal length is given."""
    focal_px: float | None = None
    """Focal length in source-video pixels (square pixels); overrides ``fov_deg``."""
    intrinsics: tuple[float, float, float, float] | None = None
    """(fx, fy, cx, cy) in source-video pixels (pixel centres at j + 0.5); overrides both above."""
    camera_height_m: float = 1.6
    """Assumed camera height above the ground, metres: sets the scale (unless people set it, below)."""
    scale_from_people: bool = True
    """On a moving camera with a fitted ground, scale so that people seen whole stand 1.7 m tall
    (at least 8 boxes of people agreeing within ±15 %), instead of by ``camera_height_m``."""
    max_features: int = 1200
    """Live feature tracks per frame."""
    feature_shift_px: float | None = 8.0
    """Feature tracks start from the frame's global shift (and the last step's) when it is at
    least this many clip pixels (:attr:`~recon4d.recon.classic.features.TrackerConfig.shift_guess_px`);
    None: off. A follow camera turns 5–12° between sampled frames: at 8 the tracks that lived on
    to the next frame went from 18–48 % to 30–72 % (median per frame) on the follow scenes of
    pipeline_fidelity 105–120. On (with ``still_track_px``) since the QA gate checks a camera
    few background tracks agree with against its own jitter (see ``still_track_px``)."""
    feature_count_shift: bool = False
    """The global shift is counted on the background's texture
    (:attr:`~recon4d.recon.classic.features.TrackerConfig.count_shift`) rather than phase-correlated:
    a follow camera turning 10–15° a step keeps its subject put in the image, which held phase
    correlation at about 0 and the tracks on the subject's shift. Off: the tracks get better (follow
    seed 115, recon alone: steps with a median track error over 3 px 8 → 2 of 31) but the camera
    does not (see the commit's figures)."""
    mask_margin_frac: float = 0.02
    """Object masks/boxes are grown by this fraction of the longer side before excluding them."""
    min_parallax_px: float = 0.5
    """Median residual of a pure-rotation fit (clip pixels) a frame pair needs to start the map."""
    min_parallax_deg: float = 2.0
    """Median triangulation angle of the points a frame pair needs to start the map."""
    refined_start: bool = False
    """Start the map from the pair with the most points among the first six that qualify, each
    essential matrix refined by a two-view bundle adjustment (where none qualifies, the widest pair
    of at least half ``min_parallax_deg``), and solve PnP from its RANSAC model rather than the
    neighbour's pose (:func:`~recon4d.recon.classic.camera_motion._initial_pair`). The first pair
    alone was often a follow camera's first step, whose tracks were wrong, or a pair whose
    unrefined essential matrix only seemed to have parallax (follow 105: 2.2° where the truth had
    1.4°). With ``feature_count_shift``, pipeline_fidelity follow seeds 105–130 camera ATE / path
    .004/.076/.074/.106/.003/.023 (main) → .005/.019/.092/.020/.001/.003; without it worse
    (.020/.161/.109/.062/.011/.003). Off: with both on, dev 101–130's gated QA fell .888 → .862 and
    gated_compile .842 → .806, and follow seeds 135 and 140 (never tuned on) .043/.054 → .109/.085.
    Again at 30fb30c (both on): 101–130 QA .397 → .409, ATE .017 → .009, camera-caused wrong
    answers 83 → 70, gated .935 → .930, gated_compile .938 (of 926) → .934 (of 954: 115 passes
    14 wrong camera answers, orbit 113 8); 131–150 QA .414 same, gated_compile .927 → .911 (140: .67
    → .33 of 36), centre error / spread .573 → .623."""
    two_view_check_deg: float | None = None
    """A frame whose PnP pose turns more than this away from the refined two-view geometry of its
    step from the placed neighbour is placed by that geometry instead, its length from the map
    points both share (:func:`~recon4d.recon.classic.camera_motion._two_view_checked`); None: off.
    On a follow camera turning 11–14° a step the two-view turns stay within ~0.5° of the truth
    where the PnP chain drifts (follow seed 115 of pipeline_fidelity: 1.6° short a step over
    steps 18–31, its translation collapsed), but they also err by 1.5–4° on some steps where PnP
    was right (the followed subject in the tracks). Recon alone on the pipeline's own tracks, with
    ``refined_start`` and ``feature_count_shift``, follow seeds 110/115/120/135/140, camera ATE /
    path at 1.0: .022/.092/.020/.109/.085 → .061/.066/.039/.083/.042 (115's mean rotation error
    7.8° → 4.2°; 105, 125, 130, 145, 150 within .001); at 0.7 → .061/.071/.033/.110/.056. Off:
    it trades one follow scene's error for another's."""
    min_triangulation_deg: float = 1.0
    """Smallest angle between the rays of a triangulated point."""
    still_track_px: float | None = 15.0
    """Background tracks that stay put in the image while the frame moves by at least this many
    clip pixels are not used for the camera
    (:func:`~recon4d.recon.classic.camera_motion.held_still`: a followed subject no tracker
    masked out, whose corners at the focus of expansion agree with every essential matrix);
    None: off. 15 with ``feature_shift_px`` 8, pipeline_fidelity seeds 101–120: camera ATE / path
    0.031 → 0.023, QA agreement 0.264 → 0.274, gated 0.870 → 0.905, gated_compile 0.806 → 0.811
    (follow scenes' QA 0.08 → 0.21); seeds 121–130: ATE 0.013 → 0.006 but gated 0.857 → 0.815,
    gated_compile 0.886 → 0.851; recon_fidelity (ground-truth tracks): same ATE and centres,
    QA 0.734 → 0.739, gated 0.901 → 0.876. On by default (with ``feature_shift_px`` 8) since the
    QA gate checks a camera that fewer than 95 % of the background tracks agree with against its
    own jitter (``CompileConfig.exact_camera_inliers``; following cameras' kept poses agree with
    84–94 %, and their speed answers split "nearly constant" on 5–20 % single-frame errors):
    pipeline_fidelity seeds 101–130, off (with the earlier gate) → on: recall 0.388 → 0.396,
    precision 0.593 → 0.604, ATE / path 0.025 → 0.017, centre 0.654 → 0.638, QA 0.255 → 0.261,
    gated 0.866 at 8.1 % → 0.888 at 7.4 %, gated_compile 0.833 (778 of 934 right) → 0.842 (804
    of 955). recon_fidelity's gated 0.876 stays (its orbiting cameras agree at ≥ 95 %): the
    pieces of its scenes' question pools that moved went both ways (−12 % to +8 % per scene)."""
    static_px: float = 0.25
    """Background displacement (clip pixels) below which a track counts as still."""
    still_fraction: float = 0.4
    """Share of background tracks that must be still for two frames to count as static (untracked
    movers may cover the rest)."""
    min_inlier_ratio: float = 0.3
    """A frame whose background tracks agree with its pose less than this is not trusted."""
    max_height_drift: float | None = None
    """A moving camera's frame whose height above the fitted ground is more than this fraction off
    the clip's median height is not trusted
    (:func:`~recon4d.recon.classic.camera_quality.height_drift`: the camera is assumed carried at
    a steady height, as by a walking person; a pose chain that drifts in scale or rotation climbs
    out of the ground); None: off. Right walk, orbit and follow cameras of pipeline_fidelity
    101–150 stay within 4 % of their median height, drifting follow chains go 16–80 % off (110,
    115, 120, 130, 140, 150). 0.1 with ``max_path_turn_deg`` 60, seeds 101–130: recall,
    precision, ATE and centre error (0.564) the same, QA 0.397 → 0.408, gated 0.925 (147 of 159)
    → 0.924 (145 of 157), gated_compile 0.913 (845 of 926) → 0.922 (829 of 899; follow 130's 11
    wrong camera answers gone, with 16 right ones); seeds 131–150: gated_compile 0.906 (549 of
    606) → 0.919 (547 of 595; follow 140: 0.67 of 33 → 0.91 of 22), gated 0.837 → 0.842, but QA
    0.414 → 0.411 and centre error / spread 0.573 → 0.578 (140, 150: fewer frames smoothed
    together). Off until those follow."""
    max_path_turn_deg: float | None = None
    """A moving camera's frame where its path turns by more than this between consecutive steps,
    or next to a step more than ``max_speed_ratio`` times faster or slower than its neighbours, is
    not trusted (:func:`~recon4d.recon.classic.camera_quality.path_kinks`: a carried camera's path
    is smooth at the sampled rate); None: off (both checks). The true paths of pipeline_fidelity
    101–150 turn at most 28° a step and no right walk, orbit or follow camera has a kink; broken
    follow chains do (110, 115, 120, 135, 140: walking backwards for a few steps, 4.9 m/s amid
    1 m/s). Figures with ``max_height_drift`` above."""
    max_two_view_turn_deg: float | None = None
    """A moving camera's frame whose turn from the previous frame differs by more than this from
    the refined two-view geometry of that step is not trusted
    (:func:`~recon4d.recon.classic.camera_motion.two_view_disagreement`: a PnP chain that drifts,
    as the follow cameras' do, away from what the step's own tracks say); None: off. 1.2 untrusts
    8 of follow seed 115's 32 frames (refined start) and none of 130's; it costs ~0.4 s of CPU a
    32-frame clip (a two-view bundle adjustment a step). pipeline_fidelity with ``refined_start``,
    ``feature_count_shift``, ``max_height_drift`` 0.1 and ``max_path_turn_deg`` 60, without → with
    it at 1.2: seeds 101–130 QA .409 → .407, gated .930 → .929, gated_compile .934 (of 954) →
    .936 (of 957; 115 still passes 11 wrong camera answers of 11: the questions between its
    flagged frames); compared with main's defaults on 131–150: QA .414 → .419, gated .927 →
    .941, gated_compile .927 (of 606) → .944 (of 567; 140's 11 wrong camera answers gone, with
    its 22 right ones), but centre error / spread .573 → .608 and ATE .010 → .018. Off."""
    max_speed_ratio: float = 2.5
    """Largest speed ratio between a camera step and the median of the steps around it (see
    ``max_path_turn_deg``)."""
    ransac_px: float = 1.0
    """Inlier threshold of essential-matrix and PnP RANSAC, clip pixels."""
    reprojection_px: float = 2.5
    """Largest reprojection error of a kept map point in any of its views, clip pixels."""
    bundle_adjust: bool = True
    """Refine poses and points jointly (Levenberg–Marquardt on the Huber reprojection error)."""
    plane_tolerance: float = 0.02
    """Ground inlier distance, as a fraction of the median depth of the candidate points."""
    depth_outlier_rel: float | None = None
    """Drop an object's ground contact that is more than this fraction off what its neighbouring
    frames' contacts say (plus 3 m/s of motion; :func:`~recon4d.recon.classic.object_depth.depth_outliers`)
    and bridge the frame from its neighbours; None: off. 0.1 lowered dev 101–120's centre error
    / spread 0.708 → 0.694 but also the gated QA agreement (0.767 → 0.698): the quality record
    reads a depth jump at a box jump as an identity switch, and this hides it. Off until the
    record learns of the dropped frames."""
    height_misfit_log: float | None = None
    """Box bottoms whose implied object height is more than this |log| off the track's typical
    height are not taken for the ground contact; the object is placed from its box top and that
    height instead, else held or bridged (:mod:`~recon4d.recon.classic.cut_bottoms`); None: off.
    0.15 on pipeline_fidelity seeds 101–130: centre error / spread 0.638 → 0.606, QA 0.261 →
    0.265, gated_compile 0.842 (of 955) → 0.845 (of 946), but gated 0.888 at 7.4 % → 0.840 at
    8.8 % (seed 127's pan: 9 of 12 → 11 of 19) and recon_fidelity (GT tracks) QA 0.739 → 0.737,
    gated 0.876 at 57.1 % → 0.870 at 55.7 % (centre 0.138 → 0.137): off until the gate learns
    of the re-placed frames."""
    seed: int = 0
    """Seed of every RANSAC (OpenCV's and numpy's), for repeatable output."""

    def __post_init__(self) -> None:
        def fail(message: str):
            raise ClassicReconstructionError(f"classic reconstructor option {message}")

        for name in ("fov_deg", "camera_height_m", "max_speed_ratio", "min_parallax_px", "min_parallax_deg",
                     "min_triangulation_deg", "ransac_px", "reprojection_px", "plane_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                fail(f"{name} must be a positive number, got {value!r}.")
        if not 1.0 <= self.fov_deg <= 170.0:
            fail(f"fov_deg must be in [1, 170], got {self.fov_deg}.")
        if self.focal_px is not None and not (isinstance(self.focal_px, (int, float)) and self.focal_px > 0
                                              and math.isfinite(self.focal_px)):
            fail(f"focal_px must be positive, got {self.focal_px!r}.")
        if self.intrinsics is not None:
            try:
                values = tuple(float(v) for v in self.intrinsics)
            except (TypeError, ValueError):
                values = ()
            if len(values) != 4 or not all(math.isfinite(v) for v in values) or min(values[:2]) <= 0:
                fail(f"intrinsics must be [fx, fy, cx, cy] in source pixels with fx, fy > 0, got {self.intrinsics!r}.")
            object.__setattr__(self, "intrinsics", values)
        if isinstance(self.max_features, bool) or int(self.max_features) != self.max_features or self.max_features < 50:
            fail(f"max_features must be an integer ≥ 50, got {self.max_features!r}.")
        if self.feature_shift_px is not None and (isinstance(self.feature_shift_px, bool) or not (
                isinstance(self.feature_shift_px, (int, float)) and math.isfinite(self.feature_shift_px)
                and self.feature_shift_px >= 0)):
            fail(f"feature_shift_px must be a number ≥ 0 or None, got {self.feature_shift_px!r}.")
        for name in ("still_track_px", "height_misfit_log", "depth_outlier_rel", "max_height_drift",
                     "max_path_turn_deg", "two_view_check_deg", "max_two_view_turn_deg"):  # positive, or None: off
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not (
                    isinstance(value, (int, float)) and math.isfinite(value) and value > 0)):
                fail(f"{name} must be a positive number or None, got {value!r}.")
        if not 0.0 <= self.mask_margin_frac < 0.5:
            fail(f"mask_margin_frac must be in [0, 0.5), got {self.mask_margin_frac!r}.")
        if not self.static_px >= 0:
            fail(f"static_px must be ≥ 0, got {self.static_px!r}.")
        for name in ("still_fraction", "min_inlier_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                fail(f"{name} must be a number in [0, 1], got {value!r}.")

    @classmethod
    def from_options(cls, options: dict | None) -> "ClassicConfig":
        """Config from a plain dict; unknown keys raise an error that lists the known ones."""
        from recon4d.backends import config_from_options

        return config_from_options(cls, options, "classic reconstructor", error=ClassicReconstructionError)
