"""The weights-free pipeline on the reference clips of ../shared/data: where its depth cues do not
hold (objects on a table, not on the floor), it must fail loudly (issue 11), not place things
tens of metres away for the QA compiler to turn into labels."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import missing_shared_data


@pytest.mark.slow
def test_cups_on_a_table_are_gated_out_or_placed_within_reach(shared_data):
    from recon4d.pipeline import ProcessConfig, process_video
    from recon4d.qa_compiler.compiler import CompileConfig
    from recon4d.qa_compiler.quality_gate import apply_quality_gate

    video = shared_data / "videos" / "02_cups.mp4"
    if not video.is_file():
        missing_shared_data(str(video))
    result = process_video(video, ProcessConfig(tracker="classic", recon="classic", orient="motion"))
    scene = result.scene
    gate = apply_quality_gate(scene, CompileConfig().min_quality)
    for k in range(scene.n_objects):
        kept = gate.object_ok[k]
        if kept.any():  # what the QA compiler may use must be on the table, within reach of the phone
            distance = np.linalg.norm(scene.center_world[k, kept] - scene.cam_to_world[kept, :3, 3], axis=-1)
            assert distance.max() < 3.0, f"object {k} kept by the gate at {distance.max():.1f} m"
    assert np.array_equal(scene.cam_to_world[:, :3, 3], np.zeros((scene.n_frames, 3)))  # a still camera: no path
    dropped = ~gate.object_ok.any(axis=1) & scene.visible.any(axis=1)
    if dropped.any():  # dropped silently is not enough: the warnings say why
        assert any("not trusted" in w for w in result.warnings)
