"""Settings of the weights-free ``classic`` tracker (:mod:`recon4d.tracking.classic.tracker`).

Owns :class:`ClassicTrackerConfig`, whose defaults the motion, association and
user-box modules take, and :func:`hog_available`, which its validation needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from recon4d.errors import Recon4dError

__all__ = [
    "SMEAR_PX",
    "ClassicTrackerConfig",
    "hog_available",
]

_PERSON_DETECTORS = ("auto", "hog", "shape", "none")
SMEAR_PX = 4
"""Dense flow smears a mover's motion this far past its outline (working px): the ring of
cleanup.scene_share starts beyond it."""


@dataclass(frozen=True)
class ClassicTrackerConfig:
    """Settings of :class:`ClassicTracker`; pixel quantities are at the working resolution."""

    work_long_side: int = 384
    """Long side of the working resolution (frames are never enlarged)."""
    flow_finest_scale: int = 0
    """Finest pyramid level of the dense flow (0: working resolution, 1: half of it)."""
    flow_patch_stride: int = 3
    """Stride of the dense flow's patches at that level, pixels."""
    flow_descent_iterations: int = 25
    """Gradient-descent iterations of each dense-flow patch (DIS's medium preset: 25)."""
    flow_refine_iterations: int = 5
    """Variational refinement iterations of the dense flow at each pyramid level (DIS's medium preset: 5)."""
    motion_threads: int = 0
    """Frame pairs whose motion (flows, background model, residual) is computed at once, each in a
    worker thread with its own DIS flow, while the caller sums the finished pairs in order (OpenCV and
    large numpy operations release the GIL; the result is the same as with 1); as many frames'
    detections are found ahead of association, and final masks made, on worker threads too. 0
    (default): 2 when at least 2 CPUs are usable (``os.sched_getaffinity``), else 1; 1: one pair
    (frame) after another, no threads."""
    max_planes: int = 2
    """Background homographies per frame pair (1 = a single plane; more absorb parallax)."""
    plane_min_fraction: float = 0.15
    """An extra plane needs at least this fraction of the tracked corners as inliers..."""
    plane_min_spread: float = 0.2
    """...and their bounding box must cover at least this fraction of the frame."""
    ransac_px: float = 1.5
    """RANSAC inlier distance of the background homographies."""
    essential_px: float = 1.0
    """MAGSAC++ threshold of the essential matrix (epipolar distance, working pixels)."""
    still_px: float = 0.5
    """A camera whose background corners move less than this (median) is still: no parallax model."""
    planar_inlier_ratio: float = 0.97
    """The homography model is kept when its inliers are at least this fraction of the essential matrix's."""
    turn_max_stretch: float = 0.0
    """A frame pair whose dominant homography is this close to a pure rotation under the focal prior
    (background.rotation_stretch: σ_max / σ_min − 1 of K⁻¹ H K) keeps that one homography as its background
    model: a camera that only turns moves every static pixel, near or far, with it, so the residual against it
    flags movers at any depth, while an essential matrix fitted to such a pair invents a translation along which
    movers pass for parallax. 0 (the default) turns the test off: at 0.002 (dev 101-120: the 23 of 124 pan pairs
    fitted epipolar have stretches .0003-.0014 (median), the orbit, walk and follow pairs at least .0028) the pan
    seeds' movers are flagged in .633 of their pixels instead of .626 (benchmarks/motion_evidence.py, 102-117),
    and the tracks of 101-130 (benchmarks/track_diagnose.py, with plane_bound_columns) change only by an
    identity switch more on 112: the pan misses are merged groups and broken tracks, not motion evidence."""
    fov_deg: float = 60.0
    """Horizontal field of view across the long side assumed for the essential matrix (the focal prior)."""
    pose_steps: int = 0
    """Poses tried along the rotation–translation valley of each epipolar fit (pose.resolve_pose:
    a short baseline confuses a sideways step with a turn), e.g. 17; 0 (default) keeps the essential
    matrix's pose. Off by default: on dev it cuts the follow cameras' pose error from 116° to 12° and
    the orbit cameras' from 6° to 1° (benchmarks/pose_error.py), yet the tracks built on it lose
    recall (20 → 17 of 45): segmentation and clean-up were tuned on the old poses. Per frame
    (benchmarks/detection_audit.py, orbit/walk/follow seeds 103–105, 108–110, 113–115, 118–120) its detections are as good
    (good boxes 369 vs 362) but merge more (210 vs 193 holding two objects or more): a group the
    camera follows is one halo of smeared flow around it (its blank bodies show no motion), and
    the feet of walls become background tracks; tracks: recall 14/61 either way, precision 14/34
    vs 14/27 (benchmarks/track_diagnose.py)."""
    pose_span_deg: float = 8.0
    """...turned up to this many degrees either way about the axis across the translation..."""
    pose_grid_px: int = 12
    """...scored on the dense flow sampled every this many pixels..."""
    pose_behind_weight: float = 5.0
    """...by the share of samples within essential_px minus this × the share put behind the camera;
    the essential matrix's pose stays unless another scores more than..."""
    pose_margin: float = 0.02
    """...this much better."""
    depth_block_px: int = 8
    """Blocks (pixels) whose median inverse depth the background depth is built from..."""
    depth_window: int = 15
    """...and the width (in blocks) of the window each block's background depth is the median of."""
    depth_passes: int = 2
    """Background depth fits per frame pair: the second leaves out the first's movers."""
    plane_bound_planes: int = 1
    """Scene planes (ground, walls) whose inverse depth bounds the background's from below (nothing static
    shows beyond an opaque surface; see background.plane_bound): a mover that covers most of a depth
    window is not taken for background. 0 turns the bound off."""
    plane_bound_columns: bool = False
    """A plane bounds the pixels between its topmost and bottommost inliers in their column too, not only
    those between its leftmost and rightmost inliers in their row (background.plane_bound): a followed group as
    wide as the plane's gap in its rows, which a pose from the wrong side of the rotation–translation valley puts
    beyond the ground, is still enclosed by the ground below and the ground or wall above. Off by default: it
    finds more movers but the labels built on them are worse (pipeline_fidelity --seeds 101-130: recall .388 ->
    .403 (54 -> 56 of 139; follow .139 -> .172, orbit .394 -> .422, walk .313 -> .337), precision .593 -> .602,
    ID switches 5.38 per 10 tracks both, but centre error .654 -> .716 of the spread, camera ATE .025 -> .030 of
    the path, QA over all .255 -> .235, gated .866 -> .840 (kept .081 -> .078), as compiled .833 -> .761)."""
    flow_error_fraction: float = 0.2
    """Residuals are divided by 1 + this · background displacement (dense flow errs in proportion)."""
    residual_sigma: float = 4.0
    """Motion threshold: median + residual_sigma · 1.4826 · MAD of the frame's residual flow..."""
    residual_floor_px: float = 1.0
    """...and never below this many pixels per sampled-frame step."""
    detection_score_full: float = 0.0
    """Detection scores (``Tracks2D.scores``, :mod:`.evidence`): a detected frame scores the mean relative residual
    over its mask, over the frame's motion threshold, divided by this (clipped to [0, 1]; NaN where carried or
    coasted); the quality record's ``detection_score`` is their mean, which multiplies the track's score. 0 (the
    default): no scores (None). Off: it is weak evidence of a real object. Per track, the mean strength tells
    matched from unmatched tracks with AUC 0.78 on 131–150 (0.70 on 101–130 with ``component_min_area_fraction``
    0.002; the flagged share of the mask 0.69 / 0.54), but among the tracks the default gate passes the weak ones
    are mostly real (strength of false 133/0 1.73; matched 107/1 2.0, 111/2 1.75, 117/1 1.48, 123/3 1.19). At 2,
    on the pipeline_fidelity scenes (processed once, the quality record rebuilt per value): questions compiled
    under the default gate 101–130 .884 (845/956) → .899 (832/925), 131–150 .897 (558/622) → .944 (587/622), but
    mostly by replacing object questions with camera ones (the gate drops 8 matched tracks for the false one:
    133/0, 23 wrong answers); the benchmark's gated view 101–130 .919 at 7.2 % → .916 at 6.9 %, 131–150 .969 at
    8.0 % both; at 3: gated .959 at 6.1 % / .950 at 7.5 %, compiled .904 / .945; at 4: gated .972 at 6.0 % / .962
    at 6.6 %, compiled .941 / .951; at 1.5 compiled .879 / .899. Recall, precision and centres do not change. On
    101–130 the default gate passes 17 tracks, all matched: every such penalty only drops real ones (at 2: 6 of them;
    counting carried frames as 0 too, at 2: 10, gated .938 at 6.8 %, 131–150 .965 at 7.1 %)."""
    long_baseline_decay: float = 0.0
    """Longer-baseline evidence (long_baseline.MotionMemory): each frame's normalised compensated motion
    is summed along the flow with the earlier frames' at this decay (a mover's adds up, the flow's
    noise much less), to find slow movers under a translating camera; 0 (the default) turns it off:
    at 0.75 it found 50 more object-frames of 2124 on the 18 moving-camera seeds but added 501
    detections, and lost tracks (see long_baseline's docstring)..."""
    long_baseline_sigma: float = 4.0
    """...a pixel moves when that sum exceeds median + this · 1.4826 · MAD of the frame's sums..."""
    long_baseline_floor_px: float = 0.5
    """...and this many px per step..."""
    long_baseline_support: float = 0.3
    """...and its one-step residual reaches this fraction of the frame's threshold."""
    flow_shift_px: float = 0.0
    """Where the picture moves at least this many px between two frames (flow_shift.global_shift), dense flow is taken
    again from that shift and kept where it explains the frame better (flow_shift.shifted_flow), and the
    corners' matches are moved by that flow before the background model is fitted; 0 (the default) turns it off.
    On follow scenes 115 and 120 the camera turns 10-15 deg a sampled step and the background moves 70-125 px
    (672 px frames) while DIS flow, LK and the phase correlation follow the subject, which stays put (median error
    against the true flow 88 px on the two-frame steps); at 16 the flow's median error on 115 went 22.9 -> 5.4 px
    (working size, 120 unchanged: its shift is not found), the followed subjects' pixels flagged 115 .12 -> .43
    (frames .19 -> .66), 120 .13 -> .33 (benchmarks/motion_evidence.py, follow 105-130: pixels .224 -> .286,
    frames .31 -> .40, false .056 -> .059; motion CPU +72 %: two more DIS flows a pair), but no more tracks are
    matched (benchmarks/track_diagnose.py, follow 105-150: recall 6 of 49 both, precision 6/15 -> 6/19), and the
    labels are worse (pipeline_fidelity --seeds 101-130: recall .396 -> .403, precision .604 -> .533, ID switches
    5.60 -> 5.24 per 10 tracks, centre error .638 -> .939 of the spread, ATE .017 -> .029 (follow 115 .074 ->
    .133), QA .261 -> .255, gated .888 @ 7.4 % -> .796 @ 9.0 %, as compiled .842 -> .851 (958)). It changes still
    cameras too (static 106, 121, 126): the search always offers a shift of at least flow_shift_px, and on blank
    or repetitive patches the shifted flow can win the per-pixel choice by chance; it wants a margin, and to run
    only where the plain flow fails to explain much of the frame..."""
    flow_prior_features: int = 0
    """ORB features per frame whose matches' homography (flow_prior.feature_homography) starts the dense flow
    again where the plain flow misses those matches by more than ``flow_prior_gate_px`` (DIS followed the
    subject of a turning follow camera, not the background: flow_prior), kept per pixel where it explains the
    frame better by ``flow_prior_margin`` grey levels; the corners' matches then move by the new flow. 0 (the
    default) turns it off. Plain DIS misses the background on 24 of 31 pairs of follow 115 and 26 of 31 of 120
    (the camera turns 8-15 deg a sampled step; median error on static pixels 26-80 px at the working size);
    started from the homography (1500 features; 500 found the subject's plane on 120) it is within 0.5-3.3 px,
    and the thresholds those pairs drove up (4-29) fall to the 1 px floor. It is taken on follow scenes only
    (static, pan, orbit and walk 101-130 unchanged: their plain flow agrees with the features). At 1500 the
    followed subjects are flagged far more (benchmarks/motion_evidence.py: 115 pixels .12 -> .66, frames .19 ->
    .81; 120 .13/.12 -> .62/.63; false .038 -> .057 and .049 -> .131: DIS drags the ground beside a still
    subject with it, and the halo joins the subjects of 120 into one large detection), but the tracks hardly
    follow (benchmarks/track_diagnose.py, follow 105-150: recall 6 -> 7 of 49, precision 6/15 -> 7/16, ID
    switches 0 -> 7) nor do the labels (pipeline_fidelity --seeds 101-130: recall .396 both, precision .604 ->
    .598, ID switches 5.60 -> 5.54 per 10 tracks, centre .638 -> .632, ATE .017 -> .020 (115 .074 -> .146), QA
    .261 both, gated .919 @ 7.2 % -> .930 @ 7.2 %, as compiled .884 (845/956) -> .893 (860/963); 131-150: recall
    .375 and precision .545 both, switches 3.48 -> 4.09 per 10, centre .747 -> 1.017 (140 1.03 -> 5.61), ATE .010
    -> .016, QA .290 both, gated .969 @ 8.0 % -> .970 @ 8.4 %, as compiled .897 (558/622) -> .903 (556/616)).
    Off. Cost: an ORB search on every pair (pipeline_speed's orbit clip, loaded machine: CPU 5.17 -> 5.46 s)..."""
    flow_prior_gate_px: float = 3.0
    """...the median miss (px) of the plain flow at the matched features that calls for it..."""
    flow_prior_margin: float = 0.0
    """...and how much better (5 × 5 mean absolute grey difference) the started flow must explain a pixel (see
    flow_prior.prior_flow)."""
    long_step_frames: int = 0
    """Frames apart of the k-step motion test (long_baseline.long_step_moving: frame t against t − k on the flow
    composed over the k steps, with a background model of its own), on frames with a translating camera; 0 (the
    default) turns it off. At 3 it flags much more of the movers (benchmarks/motion_evidence.py, all its pixels:
    orbit and walk of 103-124 object pixels .42/.39 -> .51/.55, frames .56/.50 -> .67/.73, false .043/.038 ->
    .063/.062; follow 105-130 .224 -> .257, frames .31 -> .35, false .056 -> .063; motion CPU +24 %) but the
    tracks built on it are worse (benchmarks/track_diagnose.py: orbit and walk 103-129 recall 19 -> 18 of 58,
    precision 19/40 -> 18/48; only the parts apart from the one-step movers: 17/44; sigma 7: 18/43; follow
    105-150 recall 6 of 49 either way, precision 6/15 -> 6/18), and so are the labels (pipeline_fidelity --seeds
    101-130: recall .396 -> .388, precision .604 -> .519, ID switches 5.60 -> 4.90 per 10 tracks, centre error
    .638 -> .627, camera ATE .017 -> .024 of the path (follow 110 .076 -> .146, 105 .004 -> .067), QA over all
    .261 -> .266, gated .888 @ 7.4 % -> .880 @ 8.3 %, as compiled .842 (804/955) -> .850 (760/894)). The followed
    subjects of 115 and 120 stay unfound: their one-step flow, which it composes, is wrong (see long_step_moving)..."""
    long_step_grid_px: int = 8
    """...its background model fitted on the composed flow sampled every this many pixels..."""
    long_step_sigma: float = 4.0
    """...a pixel moves when its k-step relative residual exceeds median + this · 1.4826 · MAD of the frame's..."""
    long_step_apart: bool = True
    """...and only its parts clear of the one-step movers are added (long_baseline.apart)."""
    border_fraction: float = 0.03
    """Pixels this close to the border (fraction of the long side), or that the background moves as
    close, show no motion: dense flow is unreliable where content enters or leaves the frame."""
    aperture_window: int = 0
    """Box (pixels) of the structure tensor that tells straight edges from two-dimensional texture
    (background.aperture): under a translating camera (epipolar pairs) the residual on an edge counts only
    its part across the edge, the only part dense flow measures there (the aperture problem: a lane marking
    or a parked car's roof line against a wall, flow filled in along it, flagged as motion under a walking
    camera; benchmarks/mover_causes.py). 0 (the default): the whole residual everywhere. Off: at 9 with
    ``aperture_corner`` 0.2 and ``depth_window`` 21 (pipeline_fidelity, /work/figs/walk_{dev,131}_cand2.json
    against s13/a263_{dev,131}.json) walk recall/precision 101-130 .313/.442 -> .346/.733, 131-150
    .208/.350 -> .625/.571, follow precision .50 -> .63 and .58 -> .67, static unchanged, pan .538/.819 ->
    .538/.847 and .432/.608 -> .432/.583, but orbit .394/.647 -> .297/.583 and .604/.518 -> .521/.500; overall
    recall .396 -> .381 and .375 -> .396, precision .604 -> .654 and .545 -> .576, QA .397 -> .455 and .414 ->
    .443, gated .925 -> .917 and .837 -> .848, as compiled .913 -> .862 and .906 -> .859 (falls), ID switches
    5.6 -> 6.4 and 3.5 -> 4.2 per 10 tracks, ATE .017 -> .021 and .010 -> .019 of the path. On the walk seeds
    (benchmarks/mover_causes.py) ghost tracks 13 -> 7 (on near static structure 6 -> 1); motion CPU ~+5 %.
    At 9 / 0.2 alone (walk_{dev,131}_ap.json): recall .396 -> .389 and .375 -> .385, precision .604 -> .635 and
    .545 -> .544, QA .397 -> .415 and .414 -> .492, gated .925 -> .918 and .837 -> .940, as compiled .913 ->
    .916 and .906 -> .906, walk .313/.442 -> .323/.431 and .208/.350 -> .500/.490, follow precision up (.50 ->
    .63, .58 -> .83), static unchanged, but orbit .394/.647 -> .394/.569 and .604/.518 -> .521/.500, pan
    precision 131-150 .608 -> .583."""
    aperture_corner: float = 1.0
    """With ``aperture_window`` set, the whole residual counts where the structure tensor's eigenvalue ratio
    λ_min / λ_max reaches this, and a share of its part along the edge in proportion below it."""
    min_texture: float = 8.0
    """Pixels with less texture (mean Sobel magnitude over 5 × 5, grey levels) show no motion."""
    min_area_fraction: float = 0.001
    """Components (and tracks, by median area) smaller than this fraction of the frame are dropped."""
    component_min_area_fraction: float = 0.0
    """Motion components (segment.moving_components) under this fraction of the frame are dropped too: a
    floor on detections only, not on tracks. Most small components are background flow errors (on dev
    101–130 bar follow, 0.002 cuts 521 of 1675 detections that overlap no object and 21 of 1210 that
    find one). Off (0): at 0.002 pipeline_fidelity on 101–130 gains recall .396 → .417 and precision
    .604 → .659, but gated_compile agreement falls .842 → .824 (815 of 989 against 804 of 955); on
    131–150 recall .375 both, precision .545 → .600, centre .747 → .613, QA .290 → .328, but gated .941
    at 8.5 % → .876 at 14.1 % and gated_compile .879 (543 of 618) → .824 (519 of 630): the gate keeps
    questions about the false tracks the floor lets through (seed 103 of 101–130: 31 of its 40). Under the own-motion
    gate (session 13, 131–150): compiled .897 (558/622) → .872 (553/634), no false track newly kept (133/0 is kept
    either way); follow 140's camera changes with the floor (at 0.0015 too: the track masks differ by 1.7 % of
    their pixels, the ground-plane path 5.9 → 7.6) and its 13 kept camera-direction questions are all wrong (22 of 33
    right without); 134 and 137 gain matched tracks whose 50 questions are 38 right (camera-only before)."""
    close_fraction: float = 0.012
    """Diameter of the closing kernel as a fraction of the working long side."""
    core_fraction: float = 0.4
    """A moving region keeps the pixels whose compensated speed is at least this fraction of its
    median speed (dense flow blurs motion past a mover's outline); 0 keeps the whole region."""
    split_min_px: float = 1.0
    """A moving region splits in two when the two groups' mean velocities differ by this many px per step..."""
    split_min_relative: float = 0.5
    """...and by this fraction of the faster group's speed..."""
    split_min_ratio: float = 2.0
    """...and by this many times the spread of the velocities within the groups..."""
    split_bimodal: bool = True
    """...and the velocities form two groups, not a gradient (see segment.bimodal)."""
    profile_split_depth: float = 0.0
    """A moving region is cut at a column where its upper outline dips by this fraction of its height
    below a top on each side (segment.split_by_profile: two heads of people walking side by side, whom
    no motion test can split); 0 (the default) never cuts. Off: under moving cameras the motion mask
    shows no heads and dented outlines of cars are cut. At 0.15 (pipeline_fidelity --seeds 101-130):
    recall .396 -> .403, precision .604 -> .571 (91 -> 98 tracks), ID switches 51 -> 59 (static 126: 2 ->
    5 of 6 objects found, switches 4 -> 7; orbit 128: 2 -> 0), centre .638 -> .655, ATE .017 -> .015,
    QA .261 -> .247, gated .888 @ 7.4 % -> .837 @ 8.2 %, as compiled .842 (804/955) -> .828 (802/969). With apart_max_similarity 0.6 too
    (pipeline_fidelity --seeds 101-130): recall .396 -> .417, precision .604 -> .542, ID switches 51 ->
    49 (5.60 -> 4.58 per 10 tracks), centre .638 -> .637, ATE .017 -> .030, QA .261 -> .222, gated .888
    @ 7.4 % -> .807 @ 9.5 %, as compiled .842 (804/955) -> .755 (692/916); seeds 131-150: recall .375 ->
    .406, precision .545 -> .487, ID switches 23 -> 18 (3.49 -> 2.25 per 10), centre .747 -> .811, QA
    .290 -> .318, gated .941 @ 8.5 % -> .830 @ 13.3 %, as compiled .879 (543/618) -> .916 (514/561)."""
    profile_max_similarity: float = 0.6
    """...and its members stay apart only while their colour histograms are under this alike (association:
    one object's outline dips too, a car's pillars over its blank windows)."""
    newcomer_growth: float = 0.5
    """A tracked detection that reaches past the track's predicted mask by this fraction of its area,
    with a part that moves differently, is cut in two (a mover joining the tracked one; see
    association.split_newcomer); 0 never cuts..."""
    newcomer_min_relative: float = 0.25
    """...the part must move differently by ``split_min_px`` and this fraction of the faster compensated speed."""
    apart_max_similarity: float = 0.0
    """Two tracks whose predicted masks one detection holds and which move alike stay two (the detection
    shared between them, as for movers that move differently) when their colour histograms are under
    this alike (association._look_apart: two people walking side by side, a dog beside its owner); 0
    (the default) keeps the older only (pieces of one object). Off: it keeps apart the differently
    coloured pieces of one object too (a car's body and windows). At 0.6 (pipeline_fidelity --seeds
    101-130): recall .396 -> .417, precision .604 -> .513 (91 -> 113 tracks), ID switches 51 -> 49 (5.60
    -> 4.34 per 10 tracks), centre .638 -> .636, ATE .017 -> .030, QA .261 -> .227, gated .888 @ 7.4 % ->
    .731 @ 8.7 %, as compiled .842 (804/955) -> .752 (695/924)..."""
    apart_min_frames: int = 3
    """...and both were detected in at least this many frames."""
    merge_step_ratio: float = 0.0
    """A detected box whose area is over this many times the lower quartile of the track's detected box
    areas in ``merge_window`` frames before and after it lies over two movers (merges.stepped_up): the
    frame is reported not observed (``Tracks2D.observed``), so questions do not name the object by it;
    0: off. The tracker alone on seeds 101-130 (match as pipeline_fidelity): of its 1692 observed boxes
    877 (52 %) lie on their matched object (IoU >= 0.3); at 2.0 it flags 122, 38 (31 %) of them on it; at
    2.5 84, 25 (30 %); at 1.8 with merge_inside 0.7 191, 78 (41 %). Off: gated QA falls on 131-150.
    pipeline_fidelity (tracker figures unchanged: only ``observed`` changes) at 2.0, seeds 101-130: QA
    .397 -> .418 (wrong_referent 142 -> 131), gated .935 @ 12.9 % -> .945 @ 13.8 %, as compiled .938/926
    -> .944/900; 131-150: QA .414 -> .412 (wrong_referent 98 -> 99), gated .927 @ 13.6 % -> .925 @ 13.2 %,
    as compiled .927/606 the same. At 2.5, 131-150: QA .416 (wrong_referent 96), gated .925 @ 13.2 %,
    as compiled the same; 101-130: QA .425 (wrong_referent 129), gated .946 @ 13.8 %, as compiled .931/926.
    With 120 questions a scene on seeds 101-150 at 2.5 (``referent_diagnose.py --gated --questions 120``,
    QA compiler with fact_key): QA .420 -> .431, gated .943 (875) -> .941 (904), as compiled .941
    (2858/3037) -> .936 (2844/3037; its wrong referents 38 -> 53: names move to other frames, no better)..."""
    merge_window: int = 6
    """...detected frames compared on each side."""
    merge_inside: float = 0.0
    """A detected box that holds at least this fraction of the box of another track coasted (or carried)
    through that frame lies over two movers too (merges.holds_coasted); 0: off. At 0.7 it flags 37 of seeds
    101-130's 1692 observed boxes, 23 (62 %) of them on their matched object: more than of the others."""
    min_frames: int = 3
    """Tracks detected (not coasted) in fewer frames than this..."""
    min_frame_fraction: float = 0.28
    """...or than this fraction of the clip's frames are dropped (flickering false movers; 9 of 32: on
    seeds 101-130 every track detected in 7 or 8 of 32 frames was false, 21 of them, and the
    shortest matched track was detected in 10; 0.2 before)."""
    min_point_support: float = 0.3
    """...or whose masks hold moving corners in fewer than this fraction of detected frames."""
    min_travel: float = 0.2
    """...or whose box never gets this many diagonals from its start against the background (ghosts, flow errors)..."""
    steady_fraction: float = 0.75
    """...except tracks detected in at least this fraction of the clip's frames, which need only..."""
    min_steady_travel: float = 0.1
    """...this many diagonals (a person bending or waving in place moves little; ghosts and flow errors flicker)."""
    min_epipolar_px: float = 0.35
    """...or, under a translating camera (epipolar background model in at least half their detected
    frames), whose moving pixels stay closer to their epipolar lines (median distance) than this
    or ``epipolar_noise_ratio`` times the background's median distance, whichever is smaller: the
    background's depth guessed wrong at a depth edge, not a mover (see :mod:`.epipolar`)."""
    epipolar_noise_ratio: float = 2.5
    """See ``min_epipolar_px``: how far above the flow's own error (the background's distance from
    its lines, small for slow cameras and small frames) a mover must be."""
    min_normal_motion: float = 0.0
    """...or whose compensated motion crosses its image edges this little (median |cos| of motion and
    gradient at its strongest-gradient pixels, evidence.normal_motion): a flow error along a long
    straight edge of static scene (the aperture problem) moves along the edge only, a mover crosses its
    outline. 0 (the default): off. On seeds 101-130 (benchmarks/birth_diagnose.py) the kept tracks that
    match a GT object measure 0.17 and up, ghosts on the edges of walk 124, orbit 128 and pan 117
    0.10-0.11 (on 131-150: matched 0.22 and up, one ghost of 147 at 0.04); 0.2 also drops orbit 118's
    long car (0.17). At 0.15 (pipeline_fidelity): 101-130 recall .396 both, precision .604 -> .625 (91
    -> 88 tracks; pan .789 -> .833, orbit .600 -> .632, walk .350 -> .368), unmatched-object questions
    207 -> 193, QA .397 -> .403, gated .935 @ 12.9 % (145/155) -> .931 @ 13.3 % (149/160), as compiled
    .938 (926) both; 131-150 recall .375 both, precision .545 -> .554 (pan .571 -> .615), centre .573 ->
    .541, QA .414 -> .415, gated .927 @ 13.6 % (101/109) -> .926 @ 15.2 % (113/122), as compiled .927
    (562/606) -> .923 (575/623). Off: the gated and compiled agreements fell (by under .005, with more
    questions kept and answered right). With 120 questions a scene on seeds 101-150 (lower sampling noise;
    ``referent_diagnose.py --gated --questions 120`` on cached estimates, QA compiler with fact_key): QA
    .420 -> .423, gated .943 (875) -> .928 (934), as compiled .941 (2858/3037) -> .940 (2937/3126)."""
    background_contrast: float = 0.3
    """Tracks whose colours differ from a 4 px ring around them by less than this (1 − Bhattacharyya
    similarity of hue–saturation–value histograms, median over detected frames)..."""
    background_speed_ratio: float = 1.5
    """...and whose compensated speed is under this many times the background's displacement under
    them (medians; a still camera's is 0) are dropped: ground or wall texture a moving camera's flow was mis-compensated on
    (see cleanup.background_texture); 0 contrast keeps them."""
    scene_share: float = 0.0
    """Tracks whose image motion (median forward flow of their moving pixels) is shared by at least this
    fraction of the ring around them (``scene_ring_px``; median over detected frames) are dropped: they move
    with the scene beside them, so they are part of it (the top of a pillar or the windshield of a parked
    car whose depth the background model guessed wrong, a piece of a larger mover), not a mover of their
    own (see cleanup.scene_share); the quality step counts them as confusion of the tracker
    (``RefineConfig.clip_dropped``). 0 (the default) keeps them. At 0.25, the tracker alone
    (benchmarks/track_diagnose.py): dev 101-120 58 -> 52 tracks, the same 38 matched; 121-140 63 -> 59,
    the same 31 (at 0.2 a matched track of 121-140 went too: share 0.23, the highest of the 69 matched).
    Downstream, with its drops counted by the clip rule (pipeline_fidelity, 0 -> 0.25): seeds 101-130
    precision .604 -> .663, recall .396 both, ID switches 51 both, centre error .638 -> .639, ATE .017 ->
    .015, QA over all .261 -> .284, but gated .888 @ 7.4 % -> .867 @ 8.2 % and as compiled .842 (804/955)
    -> .831 (808/973) (orbit 113 36/37 -> 28/40, walk 124 40/40 -> 35/40: camera speed, the tracks kept
    out of the camera fit changed); seeds 131-150 precision .545 -> .574, recall .375 -> .365 (walk 144: a
    matched track dropped), QA .290 -> .344, gated .941 @ 8.5 % -> .951 @ 12.8 %, as compiled .879 ->
    .882. Off: gated and compiled agreement fell on 101-130, and it drops real movers: on the held-out
    seeds 7001-7010 (measured once, with it on by default for a while) recall .488 -> .415 (the followed
    subjects of 7005 and 7010 and a person of static 7006), precision .556 -> .531, gated .960 @ 6.2 % ->
    .810 @ 10.5 %, though QA over all .217 -> .310 and as compiled .893 (209/234) -> .892 (206/231)."""
    scene_ring_px: int = 10
    """...the ring: pixels between 4 (flow smear past an outline) and this many px from the mask..."""
    scene_flow_px: float = 0.5
    """...sharing the track's motion when their flow is within this many px of it..."""
    scene_flow_relative: float = 0.3
    """...or within this fraction of the track's compensated speed (median under its moving pixels)."""
    max_coast: int = 4
    """Frames a track is carried on its median flow without a matching detection."""
    coast_max_changed: float = 0.2
    """A coasting track ends when more of its mask than this has changed colour since its
    nearest detection (see appearance_changed)."""
    colour_min_similarity: float = 0.6
    """Far-apart track and detection still match when their colour histograms are this alike (and
    fragments are stitched, lost tracks revived: a mover's histogram drifts with pose, light and
    the background its mask takes in; 0.7 broke cars and dogs into pieces on the dev scenes)..."""
    stitch_max_gap: int = 13
    """Most frames between two fragments of one track that clean-up stitches (an object hidden
    behind another for a while; 2 · max_coast + 1 = 9 before, which left such objects in two tracks)."""
    stitch_near_diagonals: float = 0.0
    """A fragment that starts within 2 · ``max_coast`` + 1 frames of a track's last detection, where the
    track's own velocity puts it within this many of the track's last box diagonals, continues it
    whatever its colours (the pieces of one mover the motion mask cut differently: a person's shirt, then
    legs), when both are too short to be kept alone (see cleanup.stitch). 0 (the default): colours must be
    ``colour_min_similarity`` alike for every stitch."""
    step_area_ratio: float = 0.0
    """A track whose mask area changes by at least this factor between the ``step_window`` detected frames
    before and after some frame (medians), while its colours there are under ``step_max_similarity``
    alike (mean histograms of those frames), is cut in two at that frame, before the weak tracks are
    dropped: a false start (a road marking, a flow error) that association joined to a real mover, or a
    track that jumped from one object to another; each piece then faces the drop tests as a track of
    its own (see cleanup.split_steps). Only cuts that leave both pieces detected in enough frames to be
    kept (``min_frames``, ``min_frame_fraction``) are made. 0 (the default): never cut. At 3 (pipeline_fidelity,
    seeds 101-130): ID switches 51 -> 42 (5.60 -> 4.42 per 10 tracks), questions naming a box off their
    object (wrong_referent) 252 -> 206, QA over all .261 -> .293, centre error .638 -> .583, recall .396
    both, but precision .604 -> .579 (91 -> 95 tracks: the pieces of 111, 117, 118, 129 match nothing),
    gated .888 @ 7.4 % -> .861 @ 9.6 %, as compiled .842 (804/955) -> .832 (807/970); with
    ``step_window`` 4: recall .403, precision .583, 4.48 switches per 10, wrong_referent 193, QA .290,
    gated .895 @ 9.5 %, as compiled .818 (797/974). On seeds 131-150 at 3: recall .375 -> .385,
    precision .545 -> .536, switches 3.49 -> 3.04 per 10, centre .747 -> .635, QA .290 -> .311, gated
    .941 @ 8.5 % -> .935 @ 9.6 %, as compiled .879 (543/618) both. Off: precision and compiled
    agreement fell on 101-130 (the gate keeps questions about the pieces that match nothing)."""
    step_window: int = 3
    """...the detected frames on each side of a cut compared (no two of them more than ``max_coast`` + 1
    apart: a longer gap is stitch's)..."""
    step_max_similarity: float = 0.7
    """...and the colour similarity under which a step in area is a change of object (an object that
    approaches or leaves the image border changes its area but keeps its colours)."""
    hidden_min_similarity: float = 0.5
    """A track carried back into another's mask (merged movers) stays while its colours are this alike."""
    max_jump: float = 0.4
    """...and the jump is under this fraction of the image diagonal."""
    fragment_max_area: float = 0.25
    """A track smaller than this fraction of a track it touches and moves with is a piece of it."""
    duplicate_min_frames: float = 0.5
    """A track lying mostly (60 %) inside a longer one in this fraction of its detected frames is dropped."""
    match_iou: float = 0.1
    """Least IoU of a predicted box and a component to match (centroid proximity also matches)."""
    match_max_area_ratio: float = 0.0
    """A track and a detection (or a lost track and the detection that would revive it) do not match when
    the detection's area is over this many times the track's predicted one, or under its inverse, and their
    colours are under ``colour_min_similarity`` alike: the track would jump onto another object
    (association._size_jump). 0 (the default): no such test. At 3 (pipeline_fidelity --seeds 101-130): ID
    switches 51 -> 47 (5.60 -> 4.95 per 10 tracks), wrong_referent 142 -> 116 (referent_diagnose: boxes
    on another object, other_object + gt_hidden_other, 98 -> 66), recall .396 -> .410,
    precision .604 -> .600 (91 -> 95 tracks), centre .564 -> .530, QA .397 -> .414, gated .925 @ 13.2 % ->
    .931 @ 14.5 %, as compiled .913 (926) -> .922 (920); seeds 131-150: switches 23 -> 20 (3.48 -> 2.99),
    wrong_referent 98 -> 62, QA .414 -> .440, gated .837 @ 15.4 % -> .874 @ 15.3 %, but recall .375 ->
    .354, precision .545 -> .507 and as compiled .906 -> .889 (orbit 148: a track cut at a size jump and
    stitched to another dog). Off: compiled agreement and recall fell on 131-150; at 4 and 5 the tracker
    alone loses 148's two matches too."""
    colour_trim: bool = True
    """Cut each final mask to the pixels whose colours are more common in it than in a 4 px ring around it
    (segment.trim_to_colours: flow smear, the ground a mover uncovers behind it, its shadow)."""
    min_fill: float = 0.35
    """Masks covering less of their box than this are replaced by their convex hull."""
    background_model: bool = True
    """On clips whose every frame pair keeps one background homography (a still camera or one that only
    turns), find movers' whole silhouettes with a temporal-median background of the stabilised frames
    (:mod:`.stabilised`): detections and final masks are the foreground the motion detections touch, and
    an object that stops stays detected. Other clips, or with False, use the motion masks alone."""
    background_planar_fraction: float = 0.5
    """...when at least this fraction of the frame pairs keep a single background homography (see
    stabilised.still_or_turning) and the aligned frames agree (``background_max_noise``)..."""
    background_samples: int = 15
    """Frames (spread over the clip) whose aligned median is the background..."""
    background_max_noise: float = 5.0
    """...refused when the sampled aligned frames' median colour distance from it (8-bit Lab units) is above this
    (parallax or drift the homographies missed)."""
    background_sigma: float = 6.0
    """Foreground: colour distance above the clip's median + this · 1.4826 · MAD over the sampled frames..."""
    background_min_distance: float = 14.0
    """...and above this (8-bit Lab units)..."""
    background_turning: bool = True
    """Use the background model on cameras that turn (pan, tilt) too, not only on still ones."""
    background_hold: bool = False
    """With the background model, an object that stops moving stays detected while it differs from the
    background (stabilised.foreground_detections), so its track goes on; off by default: on dev seeds
    101-117 (static and pan) it changed no recall or precision and added identity switches (7.7 -> 8.1 per 10 tracks)."""
    background_split: bool = False
    """With the background model, a motion detection that holds separate pieces of the foreground (movers
    a few pixels apart that the flow's smear joined) is cut into one detection per piece
    (stabilised.split_by_foreground), which association does not join again. Off by default: on the 24
    static/pan seeds 101-157 (pipeline_fidelity) it gained recall (61 -> 64 of 118 objects, no scene lost) and
    centre error (mean .771 -> .742 of the spread) but lost precision (.718 -> .688), centre median
    (.515 -> .638) and QA (all .362 -> .358, gated .735 -> .708)."""
    background_reach: float = 0.04
    """A mask takes the foreground within this fraction of its box diagonal of it (its object's feet or blank
    interior the motion missed; not the whole connected foreground, which joins movers that touch)..."""
    background_shadow_low: float = 0.3
    """...except shadows: pixels whose brightness (R + G + B) is between this..."""
    background_shadow_high: float = 0.95
    """...and this fraction of the background's..."""
    background_shadow_chroma: float = 0.04
    """...and whose chromaticity (R, G, B) / (R + G + B) differs from the background's by less than this."""
    person_detector: str = "auto"
    """"hog" (needs cv2.HOGDescriptor), "shape", "auto" (hog where OpenCV has it, else shape) or "none"."""
    person_min_fraction: float = 0.3
    """Fraction of a track's looked-at frames with person evidence that makes it a person."""
    person_weak_fraction: float = 0.1
    """...or this fraction when the median box is at least person_min_aspect times taller than wide."""
    person_min_aspect: float = 1.8
    """Box height / width of a standing person (the shape evidence when OpenCV has no HOG)."""
    person_min_upright: float = 1.2
    """A person's median box is at least this many times taller than wide (dogs, cars and balls are not)."""
    person_samples: int = 16
    """Detected frames per track the person detector looks at (spread over the track)."""
    hog_hit_threshold: float = -0.3
    """SVM score a HOG window needs; OpenCV's 0 misses most people in ordinary video (slim or
    side-on figures score -0.3..0), and per-frame false hits are outvoted by person_min_fraction."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise Recon4dError(f"ClassicTrackerConfig: {message}")

        if self.work_long_side < 32:
            fail(f"work_long_side must be at least 32 pixels, got {self.work_long_side}.")
        if self.depth_block_px < 1 or self.depth_window < 1:
            fail(f"depth_block_px and depth_window must be at least 1, got {self.depth_block_px} and "
                 f"{self.depth_window}.")
        if not 1.0 <= self.fov_deg <= 170.0:
            fail(f"fov_deg must lie in [1, 170] degrees, got {self.fov_deg}.")
        if self.flow_finest_scale not in (0, 1, 2) or self.flow_patch_stride < 1:
            fail(f"flow_finest_scale must be 0, 1 or 2 and flow_patch_stride at least 1, got "
                 f"{self.flow_finest_scale} and {self.flow_patch_stride}.")
        if self.flow_descent_iterations < 1 or self.flow_refine_iterations < 0:
            fail(f"flow_descent_iterations must be at least 1 and flow_refine_iterations at least 0, got "
                 f"{self.flow_descent_iterations} and {self.flow_refine_iterations}.")
        if self.motion_threads < 0:
            fail(f"motion_threads must be at least 0 (0: automatic), got {self.motion_threads}.")
        if self.pose_steps < 0 or self.pose_grid_px < 1 or self.pose_span_deg < 0:
            fail(f"pose_steps and pose_span_deg must be at least 0 and pose_grid_px at least 1, got "
                 f"{self.pose_steps}, {self.pose_span_deg} and {self.pose_grid_px}.")
        if not 0.0 <= self.long_baseline_decay < 1.0 or self.long_baseline_floor_px < 0:
            fail(f"long_baseline_decay must lie in [0, 1) and long_baseline_floor_px be at least 0, got "
                 f"{self.long_baseline_decay} and {self.long_baseline_floor_px}.")
        if self.flow_shift_px < 0:
            fail(f"flow_shift_px must be at least 0 (0: off), got {self.flow_shift_px}.")
        if self.flow_prior_features < 0 or self.flow_prior_gate_px < 0 or self.flow_prior_margin < 0:
            fail(f"flow_prior_features, flow_prior_gate_px and flow_prior_margin must be at least 0, got "
                 f"{self.flow_prior_features}, {self.flow_prior_gate_px} and {self.flow_prior_margin}.")
        if self.long_step_frames < 0 or self.long_step_grid_px < 1:
            fail(f"long_step_frames must be at least 0 and long_step_grid_px at least 1, got "
                 f"{self.long_step_frames} and {self.long_step_grid_px}.")
        if self.turn_max_stretch < 0:
            fail(f"turn_max_stretch must be at least 0 (0: off), got {self.turn_max_stretch}.")
        if self.aperture_window < 0 or not 0.0 < self.aperture_corner <= 1.0:
            fail(f"aperture_window must be at least 0 and aperture_corner lie in (0, 1], got "
                 f"{self.aperture_window} and {self.aperture_corner}.")
        if self.plane_bound_planes < 0:
            fail(f"plane_bound_planes must be at least 0, got {self.plane_bound_planes}.")
        if self.detection_score_full < 0:
            fail(f"detection_score_full must be at least 0 (0: no scores), got {self.detection_score_full}.")
        if self.max_planes < 1:
            fail(f"max_planes must be at least 1, got {self.max_planes}.")
        if self.person_samples < 1:
            fail(f"person_samples must be at least 1, got {self.person_samples}.")
        if self.background_speed_ratio < 0:
            fail(f"background_speed_ratio must be at least 0, got {self.background_speed_ratio}.")
        if self.background_samples < 3:
            fail(f"background_samples must be at least 3, got {self.background_samples}.")
        if not 0.0 <= self.background_shadow_low <= self.background_shadow_high <= 1.0:
            fail(f"background_shadow_low and background_shadow_high must satisfy 0 <= low <= high <= 1, got "
                 f"{self.background_shadow_low} and {self.background_shadow_high}.")
        if self.scene_ring_px <= SMEAR_PX or self.scene_flow_px < 0 or self.scene_flow_relative < 0:
            fail(f"scene_ring_px must exceed {SMEAR_PX} and scene_flow_px, scene_flow_relative be at least 0, got "
                 f"{self.scene_ring_px}, {self.scene_flow_px} and {self.scene_flow_relative}.")
        if self.stitch_max_gap < 0 or self.stitch_near_diagonals < 0:
            fail(f"stitch_max_gap and stitch_near_diagonals must be at least 0, got {self.stitch_max_gap} and "
                 f"{self.stitch_near_diagonals}.")
        if self.step_area_ratio != 0 and self.step_area_ratio <= 1 or self.step_window < 1:
            fail(f"step_area_ratio must be 0 (off) or above 1 and step_window at least 1, got "
                 f"{self.step_area_ratio} and {self.step_window}.")
        if self.match_max_area_ratio != 0 and self.match_max_area_ratio <= 1:
            fail(f"match_max_area_ratio must be 0 (off) or above 1, got {self.match_max_area_ratio}.")
        if self.merge_step_ratio < 0 or (0 < self.merge_step_ratio <= 1) or self.merge_window < 1:
            fail(f"merge_step_ratio must be 0 (off) or above 1 and merge_window at least 1, got "
                 f"{self.merge_step_ratio} and {self.merge_window}.")
        if self.apart_min_frames < 1:
            fail(f"apart_min_frames must be at least 1, got {self.apart_min_frames}.")
        if self.min_frames < 1 or self.max_coast < 0:
            fail(f"min_frames must be ≥ 1 and max_coast ≥ 0, got {self.min_frames} and {self.max_coast}.")
        for name in ("plane_min_fraction", "plane_min_spread", "min_area_fraction", "component_min_area_fraction",
                     "min_frame_fraction",
                     "min_point_support", "min_normal_motion", "coast_max_changed", "core_fraction", "planar_inlier_ratio", "duplicate_min_frames", "hidden_min_similarity", "step_max_similarity", "fragment_max_area", "border_fraction", "colour_min_similarity", "match_iou", "min_fill",
                     "person_min_fraction", "person_weak_fraction", "steady_fraction", "background_contrast",
                     "background_planar_fraction", "scene_share", "apart_max_similarity", "profile_split_depth",
                     "profile_max_similarity", "merge_inside"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if self.person_detector not in _PERSON_DETECTORS:
            fail(f"person_detector must be one of {_PERSON_DETECTORS}, got {self.person_detector!r}.")
        if self.person_detector == "hog" and not hog_available():
            fail(f"person_detector='hog' needs cv2.HOGDescriptor, which OpenCV {cv2.__version__} lacks; "
                 "use 'shape' (or 'auto'), or install an OpenCV 4.x wheel.")


def hog_available() -> bool:
    """Whether this OpenCV build has the HOG people detector (4.x yes, 5.x main module no)."""
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")
