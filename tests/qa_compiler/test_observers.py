"""qa_compiler/observers.py: which frames give an observer pose (issue 10: NaN confidence)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recon4d.qa_compiler.observers import CAMERA, oriented, pose_known
from tests.conftest import make_scene


def test_nan_orientation_confidence_is_not_confident():
    scene = make_scene(n_frames=6, n_objects=2, heavy=False)
    agent = int(np.flatnonzero(scene.is_agent)[0])
    visible = scene.visible.copy()
    visible[agent] = True
    center = scene.center_world.copy()
    center[agent] = 1.0
    orientation = scene.orientation.copy()
    orientation[agent] = 10.0
    conf = scene.orient_conf.copy()
    conf[agent] = [0.9, np.nan, 0.9, 0.2, np.nan, 0.9]
    scene = replace(scene, visible=visible, center_world=center, orientation=orientation, orient_conf=conf)
    assert oriented(scene, 0.6)[agent].tolist() == [True, False, True, False, False, True]
    assert pose_known(scene, agent, 0.6).tolist() == [True, False, True, False, False, True]
    assert pose_known(scene, CAMERA, 0.6).all()
