"""Tests of qa_compiler/referents.py: which frames' boxes may name an object."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recon4d.qa_compiler.referents import referent_frames, steady_boxes
from tests.qa_compiler.test_questions import rich_scene


def _walking_boxes(n_frames: int = 10) -> np.ndarray:
    """(1, T, 4) a 40 × 80 box walking 4 px a frame."""
    x = 100.0 + 4.0 * np.arange(n_frames)
    return np.stack([x, np.full(n_frames, 50.0), x + 40.0, np.full(n_frames, 130.0)], -1)[None]


def test_a_walking_box_is_steady_and_a_merge_or_a_jump_is_not():
    boxes = _walking_boxes()
    assert steady_boxes(boxes).all()
    merged = boxes.copy()
    merged[0, 4, 2] += 60.0  # grown over a neighbour for one frame: area × 2.5
    jumped = boxes.copy()
    jumped[0, 7] += [70.0, 0.0, 70.0, 0.0]  # the same size, on something else
    assert np.flatnonzero(~steady_boxes(merged)[0]).tolist() == [4]
    # the jump differs from both neighbours, and frames within two of it are compared with it as well
    # a jump spoils the frame and the ends of the clip that have fewer neighbours to outvote it
    assert np.flatnonzero(~steady_boxes(jumped)[0]).tolist() == [7, 8, 9]
    assert steady_boxes(jumped, min_agree=0.5)[0, 9]
    # all neighbours must agree: the merge spoils the frames next to it (two frames away it is within 2²)
    assert np.flatnonzero(~steady_boxes(merged, min_agree=1.0)[0]).tolist() == [3, 4, 5]


def test_hidden_frames_are_not_steady_and_are_not_compared():
    boxes = _walking_boxes()
    boxes[0, 3] = np.nan
    boxes[0, 5] = [0.0, 0.0, 5.0, 5.0]
    steady = steady_boxes(boxes)
    assert not steady[0, 3] and not steady[0, 5]
    assert steady[0, [0, 1, 8, 9]].all()
    assert steady_boxes(boxes[:, :1]).tolist() == [[True]]  # nothing to compare with
    assert steady_boxes(np.zeros((0, 4, 4))).shape == (0, 4)


def test_referent_frames_need_observation_and_steadiness_only_where_observation_is_recorded():
    scene = rich_scene(0, n_frames=8)
    np.testing.assert_array_equal(referent_frames(scene), scene.visible)  # ground truth: as before
    observed = np.ones_like(scene.visible)
    observed[0, 2] = False
    boxes = scene.box_xyxy.copy()
    boxes[1, 5, 2:] += 200.0  # object 1's box balloons at frame 5
    tracked = replace(scene, observed=observed, box_xyxy=boxes)
    named = referent_frames(tracked)
    assert np.flatnonzero(~named[0]).tolist() == [2]
    assert np.flatnonzero(~named[1]).tolist() == [5, 6, 7]  # 6 and 7 have too few other neighbours
    assert named[2:].all()
    assert referent_frames(tracked, steady=False)[1, 5]


def test_referent_frames_need_the_quality_record_to_pass_the_frame_where_there_is_one():
    from tests.conftest import make_quality

    scene = rich_scene(0, n_frames=8)
    objects, _ = make_quality(scene.n_objects, scene.n_frames, seed=4)
    assert not objects.frame_ok.all()
    tracked = replace(scene, observed=np.ones_like(scene.visible), object_quality=objects)
    np.testing.assert_array_equal(referent_frames(tracked), objects.frame_ok & referent_frames(tracked, trusted=False))
    assert referent_frames(tracked, trusted=False).all()
    # ground truth with a record (a test scene) but no observation: unaffected
    np.testing.assert_array_equal(referent_frames(replace(scene, object_quality=objects)), scene.visible)
