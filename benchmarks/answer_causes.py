"""What decided a wrong answer about matched objects: the estimate's quantities put into the ground truth one at a time.

A question compiled from the estimate whose objects are all matched (``fidelity_metrics.qa_outcomes``
reason "wrong_answer") is re-answered on hybrids of the ground truth (:func:`hybrid_scenes`), each
carrying one estimated quantity; the quantity whose hybrid alone gives the compiled answer is the
cause (:func:`attribute_causes`, :data:`CAUSES`). Used by ``pipeline_fidelity.py`` (``qa.causes``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fidelity_metrics import Matching, QAOutcome, camera_frame
from recon4d.types import Scene

CAUSES = ("camera", "centre_depth", "centre_lateral", "centre", "orientation", "scale", "several", "combined",
          "other")
"""What decided a matched-but-wrong answer (:func:`attribute_causes`): one estimated quantity put
into the ground truth alone gives the compiled answer — the camera poses, the objects' depths
along their viewing rays, their directions from the camera (box placement), both of those
together, the agents' orientations, the global scale (absolute thresholds such as the
near-zero speed); "several" when more than one does alone, "combined" when only all of them
together do, "other" when not even all together do (frames, visibility)."""


def hybrid_scenes(est: Scene, oracle: Scene, matching: Matching, scale: float) -> dict[str, Scene]:
    """The ground truth (``oracle``, :func:`oracle_scene`) with one estimated quantity put in at a time.

    Estimated quantities are brought into the GT world by the similarity that makes the first
    frames' cameras coincide, with ``scale`` (metres per estimate unit, ``centre_errors``'
    ``centre_scale``); an object's position is its camera-relative position (where lifting
    puts it) composed with its frame's camera pose, so a camera error moves the objects with
    it as it does in the pipeline. Matched objects take the estimate where their track is
    visible (elsewhere the truth). Keys: "camera" (estimated poses, GT camera-relative
    positions), "centre" (estimated camera-relative positions), "centre_depth" (their distance
    from the camera along the GT ray), "centre_lateral" (GT distance along the estimated ray),
    "orientation" (estimated agent orientations, camera-relative), "scale" (the GT scaled by
    1/``scale``: the estimate's unit), "all" (everything estimated: the estimate itself up to a
    similarity).
    """
    gt_cam = oracle.cam_to_world.astype(np.float64)
    est_cam = est.cam_to_world.astype(np.float64)
    ok_cam = np.isfinite(est_cam).all(axis=(1, 2))
    first = int(np.argmax(ok_cam)) if ok_cam.any() else 0
    align_r = gt_cam[first, :3, :3] @ est_cam[first, :3, :3].T
    aligned = gt_cam.copy()
    aligned[ok_cam, :3, :3] = align_r @ est_cam[ok_cam, :3, :3]
    aligned[ok_cam, :3, 3] = (scale * (est_cam[ok_cam, :3, 3] - est_cam[first, :3, 3]) @ align_r.T
                              + gt_cam[first, :3, 3])
    gt_rel = camera_frame(gt_cam, oracle.center_world.astype(np.float64))
    est_rel_all = scale * camera_frame(est_cam, est.center_world.astype(np.float64))
    rel = gt_rel.copy()
    orientation = oracle.orientation.astype(np.float64).copy()
    for g, e in matching.pairs:
        if not matching.counted[g]:
            continue
        ok = est.visible[e] & np.isfinite(est_rel_all[e]).all(axis=-1) & ok_cam
        rel[g, ok] = est_rel_all[e, ok]
        seen = ok & np.isfinite(est.orientation[e]).all(axis=-1)
        orientation[g, seen] = est.orientation[e, seen]
    gt_range = np.linalg.norm(gt_rel, axis=-1, keepdims=True)
    est_range = np.linalg.norm(rel, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        depth_only = np.where(gt_range > 0, gt_rel / gt_range * est_range, gt_rel)
        lateral_only = np.where(est_range > 0, rel / est_range * gt_range, gt_rel)

    def place(cams: np.ndarray, rel_points: np.ndarray) -> Scene:
        world = np.einsum("tij,ktj->kti", cams[:, :3, :3], rel_points) + cams[None, :, :3, 3]
        return replace(oracle, cam_to_world=cams, center_world=world)

    scaled = oracle.cam_to_world.astype(np.float64).copy()
    scaled[:, :3, 3] /= scale
    unscaled = aligned.copy()  # the estimate's own unit: undo the scale about the first camera
    unscaled[:, :3, 3] = (aligned[:, :3, 3] - gt_cam[first, :3, 3]) / scale + gt_cam[first, :3, 3]
    return {
        "camera": place(aligned, gt_rel),
        "centre": place(gt_cam, rel),
        "centre_depth": place(gt_cam, depth_only),
        "centre_lateral": place(gt_cam, lateral_only),
        "orientation": replace(oracle, orientation=orientation),
        "scale": replace(oracle, cam_to_world=scaled, center_world=oracle.center_world / scale),
        "all": replace(place(unscaled, rel / scale), orientation=orientation),
    }


def attribute_causes(outcomes: list[QAOutcome], records, est: Scene, oracle: Scene, matching: Matching,
                     scale: float | None) -> list[QAOutcome]:
    """``outcomes`` (:func:`qa_outcomes`) with ``cause`` and ``phases`` set on every wrong answer
    about matched objects (reason "wrong_answer"): the estimated quantity that alone
    (:func:`hybrid_scenes`) turns the GT answer into the compiled one (:data:`CAUSES`); where only
    parts of the centre do, the first of depth, lateral, both."""
    from recon4d.qa_compiler.compiler import reanswer
    from recon4d.qa_compiler.questions import Skip

    if not any(o.reason == "wrong_answer" for o in outcomes):
        return list(outcomes)
    scale = float(scale) if scale is not None and np.isfinite(scale) and scale > 0 else 1.0
    est_to_gt = {str(int(est.ids[e])): str(int(oracle.ids[g])) for g, e in matching.pairs if matching.counted[g]}
    est_to_gt["camera"] = "camera"
    hybrids = hybrid_scenes(est, oracle, matching, scale)
    singles = ("camera", "centre_depth", "centre_lateral", "centre", "orientation", "scale")
    out = []
    for outcome, record in zip(outcomes, records, strict=True):
        if outcome.reason != "wrong_answer":
            out.append(outcome)
            continue
        moved = replace(record, observer=est_to_gt[record.observer],
                        targets=tuple(est_to_gt[t] for t in record.targets))

        def answer(scene):
            try:
                return reanswer(scene, moved).description
            except (Skip, ValueError, IndexError, KeyError):
                return None

        hits = [name for name in singles
                if (a := answer(hybrids[name])) is not None and a.text == record.answer_text]
        centre_parts = {"centre_depth", "centre_lateral", "centre"}
        if hits and set(hits) <= centre_parts:
            cause = hits[0]
        elif len(hits) == 1:
            cause = hits[0]
        elif hits:
            cause = "several"
        else:
            full = answer(hybrids["all"])
            cause = "combined" if full is not None and full.text == record.answer_text else "other"
        truth = answer(oracle)
        phases = (len(record.phases), len(truth.phases)) if truth is not None else None
        out.append(replace(outcome, cause=cause, phases=phases))
    return out
