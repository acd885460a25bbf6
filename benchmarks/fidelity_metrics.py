"""Metrics of an estimated scene against synthetic ground truth (used by ``pipeline_fidelity.py``).

Both scenes are on the same sampled frames: the ground truth is cut to the estimate's
``frame_index`` (:func:`gt_on_frames`). Definitions (each function says its own):

- matching: one-to-one GT object ↔ estimated track (Hungarian on mean box IoU over
  co-visible frames), eligible when that mean is ≥ 0.3 and the pair is co-visible in at
  least half the frames the GT object is visible in (a few good frames do not make a track);
- recall / precision over *counted* objects: GT objects visible in at least ``MIN_GT_FRAMES``
  sampled frames; tracks matched to an uncounted GT object count neither way;
- identity switches (:func:`identity_switches`): per estimated track, how often the GT
  object it covers changes;
- camera: ATE after Sim(3), path lengths, rotation error after the best global rotation;
- centres: error in each frame's camera frame after one global scale, over the scene spread;
- QA: questions compiled from the estimate, answered again on the ground truth through the
  matching (:func:`qa_outcomes`); implausible labels (:func:`implausible_steps`); what
  decided the wrong answers is in ``answer_causes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from recon4d.geometry import rotation_to_orientation, umeyama_sim3
from recon4d.types import Scene

MIN_IOU = 0.3
MIN_COVERAGE = 0.5
MIN_GT_FRAMES = 5  # the QA compiler's shortest interval (min_interval_frames)
MAX_SPEED_M_S = 12.0  # faster than any runner: a label from such a speed is wrong
MAX_DEPTH_JUMP_M = 1.0  # between consecutive sampled frames
VEHICLES = frozenset({"car", "truck", "bus", "motorcycle", "bicycle", "train", "boat", "airplane"})


# --- frames and boxes -------------------------------------------------------------------------------


def gt_on_frames(full: Scene, frame_index: np.ndarray) -> Scene:
    """The ground truth on the sampled frames ``frame_index`` (heavy arrays dropped)."""
    frames = np.asarray(frame_index)
    return replace(full, timestamps_s=full.timestamps_s[frames], frame_index=full.frame_index[frames],
                   cam_to_world=full.cam_to_world[frames], intrinsics=full.intrinsics[frames],
                   visible=full.visible[:, frames], box_xyxy=full.box_xyxy[:, frames],
                   center_world=full.center_world[:, frames], orientation=full.orientation[:, frames],
                   orient_conf=full.orient_conf[:, frames],
                   extent=None if full.extent is None else full.extent[:, frames],
                   local_points=None, conf=None, masks=None)


def oracle_scene(gt: Scene, object_to_world: np.ndarray) -> Scene:
    """``gt`` with every object's true centre (and agents' orientation) in every frame, seen or not.

    object_to_world: (K, T, 4, 4) true poses on ``gt``'s frames. Questions about a matched
    object are answered from where it really was, also while hidden or out of view.
    """
    centre = object_to_world[..., :3, 3]
    agent_rotation = np.einsum("tji,ktjl->ktil", gt.cam_to_world[:, :3, :3], object_to_world[..., :3, :3])
    orientation = np.where(gt.is_agent[:, None, None], rotation_to_orientation(agent_rotation), np.nan)
    seen = gt.visible[..., None]
    return replace(gt, visible=np.ones_like(gt.visible),
                   center_world=np.where(seen, gt.center_world, centre),
                   orientation=np.where(seen & np.isfinite(gt.orientation), gt.orientation, orientation),
                   orient_conf=np.where(gt.is_agent[:, None], 1.0, np.nan) * np.ones(gt.visible.shape))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes broadcast over leading dims (..., 4); 0 where either box is NaN or empty."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    low, high = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[..., 2:] - a[..., :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[..., 2:] - b[..., :2], 0.0, None), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_a + area_b - inter)
    return np.nan_to_num(iou, nan=0.0)


def iou_table(gt: Scene, est: Scene) -> np.ndarray:
    """(G, E, T) box IoU of every GT object and estimated track per frame (0 where either is unseen)."""
    iou = box_iou(gt.box_xyxy[:, None], est.box_xyxy[None])
    return np.where(gt.visible[:, None] & est.visible[None], iou, 0.0)


# --- matching, recall, precision, identity -----------------------------------------------------------


@dataclass(frozen=True)
class Matching:
    """One-to-one GT ↔ track assignment.

    pairs:       (gt row, track row) matched.
    counted:     (G,) bool: GT objects visible in ≥ MIN_GT_FRAMES frames (recall counts them).
    mean_iou:    (G, E) mean IoU over co-visible frames (0 where never co-visible).
    coverage:    (G, E) co-visible frames / frames the GT object is visible in.
    """

    pairs: tuple[tuple[int, int], ...]
    counted: np.ndarray
    mean_iou: np.ndarray
    coverage: np.ndarray

    @property
    def gt_to_est(self) -> dict[int, int]:
        return dict(self.pairs)

    @property
    def est_to_gt(self) -> dict[int, int]:
        return {e: g for g, e in self.pairs}

    def recall(self) -> tuple[int, int]:
        """(matched counted GT objects, counted GT objects)."""
        return sum(1 for g, _ in self.pairs if self.counted[g]), int(self.counted.sum())

    def precision(self, n_tracks: int) -> tuple[int, int]:
        """(tracks matched to counted objects, tracks not matched to an uncounted object)."""
        on_uncounted = sum(1 for g, _ in self.pairs if not self.counted[g])
        return sum(1 for g, _ in self.pairs if self.counted[g]), n_tracks - on_uncounted


def match_tracks(gt: Scene, est: Scene, iou: np.ndarray | None = None) -> Matching:
    """Hungarian assignment maximising the mean IoU over co-visible frames among eligible pairs
    (mean IoU ≥ MIN_IOU, co-visible in ≥ MIN_COVERAGE of the GT object's visible frames)."""
    iou = iou_table(gt, est) if iou is None else iou
    both = gt.visible[:, None] & est.visible[None]
    n_both = both.sum(axis=-1)
    mean_iou = np.where(n_both > 0, iou.sum(axis=-1) / np.maximum(n_both, 1), 0.0)
    coverage = n_both / np.maximum(gt.visible.sum(axis=-1), 1)[:, None]
    eligible = (n_both > 0) & (mean_iou >= MIN_IOU) & (coverage >= MIN_COVERAGE)
    pairs: list[tuple[int, int]] = []
    if eligible.any():
        rows, cols = linear_sum_assignment(np.where(eligible, -mean_iou, 1.0))
        pairs = [(int(g), int(e)) for g, e in zip(rows, cols, strict=True) if eligible[g, e]]
    return Matching(tuple(sorted(pairs)), gt.visible.sum(axis=-1) >= MIN_GT_FRAMES, mean_iou, coverage)


def covered_objects(iou: np.ndarray, est_visible: np.ndarray) -> np.ndarray:
    """(E, T) int: the GT row each track covers per frame (its best IoU, if ≥ MIN_IOU), else −1.

    −1 also where the track is not visible.
    """
    if iou.shape[0] == 0:
        return np.full(iou.shape[1:], -1)
    best = iou.argmax(axis=0)
    return np.where((iou.max(axis=0) >= MIN_IOU) & est_visible, best, -1)


def identity_switches(covered: np.ndarray) -> np.ndarray:
    """(E,) identity switches per track: over the frames where a track covers some GT object
    (``covered`` ≥ 0, :func:`covered_objects`), in time order, the number of times that object
    differs from the one it covered last. A track that goes A, A, −1, B, B, A has 2; frames
    covering nothing (background, or a box no object overlaps by MIN_IOU) neither count nor reset."""
    switches = np.zeros(covered.shape[0], int)
    for e, row in enumerate(covered):
        seen = row[row >= 0]
        switches[e] = int((seen[1:] != seen[:-1]).sum())
    return switches


def fragments(covered: np.ndarray, counted: np.ndarray) -> int:
    """Σ over counted GT objects of (distinct tracks that ever cover it − 1), for those covered."""
    total = 0
    for g in np.flatnonzero(counted):
        tracks = np.flatnonzero((covered == g).any(axis=1))
        total += max(0, len(tracks) - 1)
    return total


# --- camera -------------------------------------------------------------------------------------------


def rotation_angle_deg(rotation: np.ndarray) -> np.ndarray:
    """Geodesic angle (...) in degrees of rotations (..., 3, 3)."""
    cos = (np.trace(rotation, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def path_length(cam_to_world: np.ndarray) -> float:
    """Σ of the camera's steps (its own units); exactly 0 for a camera that never moves."""
    return float(np.linalg.norm(np.diff(cam_to_world[:, :3, 3], axis=0), axis=1).sum())


def camera_errors(gt_cam_to_world: np.ndarray, est_cam_to_world: np.ndarray) -> dict:
    """Camera trajectory errors on common frames (poses (T, 4, 4), OpenCV camera → world).

    - ``ate_m``: RMSE of estimated positions after the Sim(3) (Umeyama) that best maps them
      onto the GT positions; ``ate_rel``: that over the GT path length. None when the GT
      camera does not move (static or tripod) — then ``est_path`` must be 0;
    - ``rotation_err_deg_*``: angle between GT and estimated camera orientations after the
      best global rotation (chordal mean of R_gt · R_estᵀ), defined for every camera;
    - ``relative_rotation_err_deg_median``: per-step relative rotation error;
    - ``gt_path_m``, ``est_path`` (estimate's units), ``sim3_scale`` (metres per estimate unit).
    Frames whose estimated pose is not finite are left out (``finite_poses`` says how many stay).
    """
    finite = np.isfinite(est_cam_to_world).all(axis=(1, 2))
    gt, est = gt_cam_to_world[finite], est_cam_to_world[finite]
    out = {"finite_poses": float(finite.mean()), "gt_path_m": path_length(gt_cam_to_world),
           "est_path": path_length(est) if len(est) else None, "ate_m": None, "ate_rel": None, "sim3_scale": None}
    if len(est) < 2:
        return dict(out, rotation_err_deg_mean=None, rotation_err_deg_max=None, relative_rotation_err_deg_median=None)
    gt_pos, est_pos = gt[:, :3, 3], est[:, :3, 3]
    if out["gt_path_m"] > 0:
        if np.ptp(est_pos, axis=0).max() > 0:
            scale, rotation, translation = umeyama_sim3(est_pos, gt_pos)
            aligned = scale * est_pos @ rotation.T + translation
            out["sim3_scale"] = float(scale)
        else:  # a frozen estimate: the best similarity maps it to the GT mean
            aligned = np.broadcast_to(gt_pos.mean(axis=0), gt_pos.shape)
            out["sim3_scale"] = 0.0
        out["ate_m"] = float(np.sqrt(np.mean(np.sum((aligned - gt_pos) ** 2, axis=1))))
        out["ate_rel"] = out["ate_m"] / out["gt_path_m"]
    u, _, vt = np.linalg.svd(np.einsum("tij,tkj->ik", gt[:, :3, :3], est[:, :3, :3]))
    align = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    error = rotation_angle_deg(np.swapaxes(gt[:, :3, :3], 1, 2) @ align @ est[:, :3, :3])
    step_gt = np.swapaxes(gt[:-1, :3, :3], 1, 2) @ gt[1:, :3, :3]
    step_est = np.swapaxes(est[:-1, :3, :3], 1, 2) @ est[1:, :3, :3]
    relative = rotation_angle_deg(np.swapaxes(step_gt, 1, 2) @ step_est)
    return dict(out, rotation_err_deg_mean=float(error.mean()), rotation_err_deg_max=float(error.max()),
                relative_rotation_err_deg_median=float(np.median(relative)))


# --- object centres --------------------------------------------------------------------------------


def camera_frame(cam_to_world: np.ndarray, points_world: np.ndarray) -> np.ndarray:
    """World points (K, T, 3) in each frame's OpenCV camera frame (T cameras (T, 4, 4))."""
    return np.einsum("tji,ktj->kti", cam_to_world[:, :3, :3], points_world - cam_to_world[None, :, :3, 3])


def scene_spread(gt: Scene, counted: np.ndarray | None = None) -> float:
    """RMS distance of the GT centres (visible frames of counted objects) from their mean, metres."""
    rows = np.ones(gt.n_objects, bool) if counted is None else counted
    centres = gt.center_world[rows][gt.visible[rows]]
    centres = centres[np.isfinite(centres).all(axis=1)]
    return float(np.sqrt(np.mean(np.sum((centres - centres.mean(axis=0)) ** 2, axis=1)))) if len(centres) else 0.0


def centre_errors(gt: Scene, est: Scene, matching: Matching) -> dict:
    """Errors of matched tracks' centres, relative to the scene spread (:func:`scene_spread`).

    - ``centre_error_rel`` (RMSE) and ``centre_error_rel_median``: per frame both centres in
      their own camera's frame, the estimate times one global scale (the median of
      |GT| / |estimate| distances from the camera over all compared points), then the
      distance — where objects are relative to the camera, the quantity behind every
      camera-observer question, with no alignment that could absorb errors;
    - ``centre_error_rel_covered``: the same RMSE (same scale) over the frames where the track's
      box covers its GT object (IoU ≥ MIN_IOU): where the box is on something else (a merge, a
      piece, another object) the error is the tracker's identity and box error, which recall,
      identity switches and the QA referent check count, not where the object was put;
      ``centres_covered`` those frames;
    - ``centre_scale``: that scale (metres per estimate unit; 1 for a metric estimate);
    - ``centre_rmse_sim3_rel``: the earlier benchmark's figure (one Sim(3) fitted to the
      matched centres themselves, in the world), kept for comparison.
    """
    gt_cam, est_cam, gt_world, est_world, covers = [], [], [], [], []
    gt_cam_all = camera_frame(gt.cam_to_world, gt.center_world)
    est_cam_all = camera_frame(est.cam_to_world, est.center_world)
    for g, e in matching.pairs:
        if not matching.counted[g]:
            continue
        both = (gt.visible[g] & est.visible[e] & np.isfinite(est_cam_all[e]).all(axis=-1)
                & np.isfinite(gt_cam_all[g]).all(axis=-1))
        gt_cam.append(gt_cam_all[g, both])
        est_cam.append(est_cam_all[e, both])
        covers.append(box_iou(gt.box_xyxy[g, both], est.box_xyxy[e, both]) >= MIN_IOU)
        gt_world.append(gt.center_world[g, both])
        est_world.append(est.center_world[e, both])
    spread = scene_spread(gt, matching.counted)
    empty = {"centre_error_rel": None, "centre_error_rel_median": None, "centre_scale": None,
             "centre_error_rel_covered": None, "centre_rmse_sim3_rel": None, "centres_compared": 0,
             "centres_covered": 0, "scene_spread_m": spread}
    if not gt_cam or sum(len(x) for x in gt_cam) == 0 or spread == 0:
        return empty
    gt_cam, est_cam = np.concatenate(gt_cam), np.concatenate(est_cam)
    ratio = np.linalg.norm(gt_cam, axis=1) / np.maximum(np.linalg.norm(est_cam, axis=1), 1e-12)
    scale = float(np.median(ratio))
    error = np.linalg.norm(scale * est_cam - gt_cam, axis=1)
    out = dict(empty, centre_error_rel=float(np.sqrt(np.mean(error**2))) / spread,
               centre_error_rel_median=float(np.median(error)) / spread, centre_scale=scale,
               centres_compared=int(len(error)))
    covers = np.concatenate(covers)
    if covers.any():
        out.update(centre_error_rel_covered=float(np.sqrt(np.mean(error[covers] ** 2))) / spread,
                   centres_covered=int(covers.sum()))
    gt_world, est_world = np.concatenate(gt_world), np.concatenate(est_world)
    if len(gt_world) >= 3 and np.linalg.matrix_rank(est_world - est_world.mean(axis=0), tol=1e-9) >= 2:
        s, rotation, translation = umeyama_sim3(est_world, gt_world)
        aligned = s * est_world @ rotation.T + translation
        out["centre_rmse_sim3_rel"] = float(np.sqrt(np.mean(np.sum((aligned - gt_world) ** 2, axis=1)))) / spread
    return out


def category_counts(gt: Scene, est: Scene, matching: Matching) -> dict:
    """Over matched counted pairs: how many, how many agree on agent/object, on the exact category,
    and the confusion {GT category: {estimated category: n}}."""
    confusion: dict[str, dict[str, int]] = {}
    agent = exact = n = 0
    for g, e in matching.pairs:
        if not matching.counted[g]:
            continue
        n += 1
        agent += int(bool(gt.is_agent[g]) == bool(est.is_agent[e]))
        exact += int(gt.categories[g] == est.categories[e])
        row = confusion.setdefault(gt.categories[g], {})
        row[est.categories[e]] = row.get(est.categories[e], 0) + 1
    return {"matched": n, "agent_correct": agent, "category_correct": exact, "confusion": confusion}


# --- labels ------------------------------------------------------------------------------------------


def implausible_steps(scene: Scene) -> np.ndarray:
    """(K, T) bool: frame t is implausible for object k when, from sampled frame t−1 to t, it
    moves faster than MAX_SPEED_M_S in the world (objects not labelled a vehicle) or its depth
    — its distance from the camera centre, which a turning camera leaves alone — changes by
    more than MAX_DEPTH_JUMP_M. Frame 0 and unseen steps are False."""
    flags = np.zeros(scene.visible.shape, bool)
    if scene.n_frames < 2 or scene.n_objects == 0:
        return flags
    dt = np.diff(scene.timestamps_s)
    speed = np.linalg.norm(np.diff(scene.center_world, axis=1), axis=-1) / dt
    depth = np.linalg.norm(camera_frame(scene.cam_to_world, scene.center_world), axis=-1)
    jump = np.abs(np.diff(depth, axis=1))
    vehicle = np.array([c in VEHICLES for c in scene.categories], bool)[:, None]
    with np.errstate(invalid="ignore"):
        flags[:, 1:] = np.nan_to_num(((speed > MAX_SPEED_M_S) & ~vehicle) | (jump > MAX_DEPTH_JUMP_M), nan=False)
    return flags


def kept_by_gate(records, gated: Scene, noisy=(), min_stability: float = 1.0) -> list[bool]:
    """Per record (compiled without the gate): would the gate keep it?

    The gate hides what it refuses (objects, object frames, camera frames); a question needing
    any of it fails on the gated view. With ``noisy`` copies of that view (the recorded
    trajectory error added), a question is also refused unless its answer is the same on at
    least ``min_stability`` of them (a copy that cannot answer counts as different) — the
    compiler's stable-answer check. This is the gate's verdict on each question of one pool.
    """
    from recon4d.qa_compiler.compiler import reanswer
    from recon4d.qa_compiler.questions import Skip

    def answer(scene, record):
        try:
            return reanswer(scene, record).description.text
        except (Skip, ValueError, IndexError, KeyError):
            return None

    kept = []
    for record in records:
        if answer(gated, record) is None:
            kept.append(False)
            continue
        same = sum(answer(scene, record) == record.answer_text for scene in noisy)
        kept.append(not noisy or same / len(noisy) >= min_stability)
    return kept


def record_objects(record) -> list[str]:
    """Object labels (not "camera") a record is about: its observer and targets."""
    return [label for label in (record.observer, *record.targets) if label != "camera"]


def record_is_implausible(scene: Scene, flags: np.ndarray, record) -> bool:
    """Some object of ``record`` has an implausible step (:func:`implausible_steps`) in its interval."""
    first, last = record.frame_range
    for label in record_objects(record):
        row = scene.object_index(int(label))
        if flags[row, first + 1 : last + 1].any():
            return True
    return False


@dataclass(frozen=True)
class QAOutcome:
    """How one question compiled from the estimate fares on the ground truth.

    qtype:        question type.
    agree:        the GT answer (through the matching) equals the compiled answer.
    reason:       "agree", "wrong_answer", "unmatched_object" (some object has no GT match),
                  "wrong_referent" (the box the question names an object by does not cover
                  its matched GT object, IoU < MIN_IOU, at that frame) or "gt_undefined" (the
                  GT cannot answer it, e.g. the facing of a non-agent).
    names_right:  every object is matched and named by its GT category in the question.
    implausible:  its label comes from an implausible step (:func:`record_is_implausible`).
    about_objects: it is about at least one object (not the camera alone).
    """

    qtype: str
    agree: bool
    reason: str
    names_right: bool
    implausible: bool
    about_objects: bool = True
    cause: str | None = None
    """For a wrong answer about matched objects (or the camera): the estimated quantity that
    decided it (``answer_causes.attribute_causes``), else None."""
    phases: tuple[int, int] | None = None
    """For such an answer: (phases of the compiled answer, phases of the GT answer)."""


def denoted_frames(record, timestamps_s: np.ndarray) -> dict[str, int]:
    """Object label → the frame whose box the question names it by (``qa_compiler.questions.denote``):
    an absolute observer at its frozen time, direction prediction at the last shown frame,
    everything else at the first frame of the interval."""
    first, shown_last = record.frame_range[0], record.visible_range[1]
    predicts = record.qtype.endswith("dir_pred")
    frames = {label: shown_last if predicts else first for label in record.targets}
    if record.observer_time_s is not None:
        frames[record.observer] = int(np.argmin(np.abs(timestamps_s - record.observer_time_s)))
    else:
        frames[record.observer] = shown_last if predicts else first
    frames.pop("camera", None)
    return frames


def qa_outcomes(records, est: Scene, oracle: Scene, matching: Matching, gt: Scene | None = None) -> list[QAOutcome]:
    """Re-answer every record (compiled from ``est``) on ``oracle`` (:func:`oracle_scene`), with
    each estimated track replaced by its matched GT object. Wrong: questions about an
    unmatched track (or one matched to an uncounted object), and questions naming an object
    by a box that does not cover its matched GT object (``gt``'s boxes, default ``oracle``'s)."""
    from recon4d.qa_compiler.compiler import reanswer
    from recon4d.qa_compiler.questions import Skip

    gt = oracle if gt is None else gt
    est_to_gt = {str(int(est.ids[e])): str(int(oracle.ids[g])) for g, e in matching.pairs if matching.counted[g]}
    est_to_gt["camera"] = "camera"
    flags = implausible_steps(est)
    outcomes = []
    for record in records:
        implausible = record_is_implausible(est, flags, record)
        labels = [record.observer, *record.targets]
        about = bool(record_objects(record))
        if any(label not in est_to_gt for label in labels):
            outcomes.append(QAOutcome(record.qtype, False, "unmatched_object", False, implausible, about))
            continue
        referents_ok = all(
            box_iou(est.box_xyxy[est.object_index(int(label)), t],
                    gt.box_xyxy[gt.object_index(int(est_to_gt[label])), t]) >= MIN_IOU
            for label, t in denoted_frames(record, est.timestamps_s).items())
        if not referents_ok:
            outcomes.append(QAOutcome(record.qtype, False, "wrong_referent", False, implausible, about))
            continue
        names_right = all(est.categories[est.object_index(int(label))]
                          == oracle.categories[oracle.object_index(int(est_to_gt[label]))]
                          for label in record_objects(record))
        moved = replace(record, observer=est_to_gt[record.observer], targets=tuple(est_to_gt[t] for t in record.targets))
        try:
            text = reanswer(oracle, moved).description.text
        except (Skip, ValueError, IndexError, KeyError):
            outcomes.append(QAOutcome(record.qtype, False, "gt_undefined", names_right, implausible, about))
            continue
        agree = text == record.answer_text
        outcomes.append(QAOutcome(record.qtype, agree, "agree" if agree else "wrong_answer", names_right and agree,
                                  implausible, about))
    return outcomes


def summarise_outcomes(outcomes: list[QAOutcome]) -> dict:
    """Agreement overall and per type, the share naming objects right, reasons, implausible share,
    and agreement of the questions about objects apart from those about the camera alone (a
    pipeline that finds nothing still gets camera questions right)."""
    if not outcomes:
        return {"n": 0, "agreement": None, "agreement_named": None, "implausible_fraction": None,
                "reasons": {}, "about_objects": {"n": 0, "agreement": None}, "by_type": {}}
    by_type: dict[str, list[QAOutcome]] = {}
    reasons: dict[str, int] = {}
    for outcome in outcomes:
        by_type.setdefault(outcome.qtype, []).append(outcome)
        reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
    return {
        "n": len(outcomes),
        "agreement": float(np.mean([o.agree for o in outcomes])),
        "agreement_named": float(np.mean([o.names_right for o in outcomes])),
        "implausible_fraction": float(np.mean([o.implausible for o in outcomes])),
        "reasons": dict(sorted(reasons.items())),
        "about_objects": {"n": sum(o.about_objects for o in outcomes),
                          "agreement": (float(np.mean([o.agree for o in outcomes if o.about_objects]))
                                        if any(o.about_objects for o in outcomes) else None)},
        "by_type": {t: {"n": len(v), "agreement": float(np.mean([o.agree for o in v]))}
                    for t, v in sorted(by_type.items())},
        "causes": summarise_causes(outcomes),
    }


def summarise_causes(outcomes: list[QAOutcome]) -> dict:
    """The wrong answers about matched objects split by their cause (``answer_causes.CAUSES``),
    overall and per type, with how many of them have more phases than the GT answer (a jittery
    series cut into extra phases)."""
    wrong = [o for o in outcomes if o.reason == "wrong_answer" and o.cause is not None]
    causes: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    for o in wrong:
        causes[o.cause] = causes.get(o.cause, 0) + 1
        row = by_type.setdefault(o.qtype, {})
        row[o.cause] = row.get(o.cause, 0) + 1
    more_phases = sum(1 for o in wrong if o.phases is not None and o.phases[0] > o.phases[1])
    return {"wrong_answer": len(wrong), "by_cause": dict(sorted(causes.items())),
            "by_type": {t: dict(sorted(v.items())) for t, v in sorted(by_type.items())},
            "more_phases_than_gt": more_phases}
