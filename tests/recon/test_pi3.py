"""The pi3 backend: chunk stitching, focal fit, validity, weights loading and checks."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

torch = pytest.importorskip("torch")

from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.recon.pi3 import (  # noqa: E402
    Pi3BackendConfig,
    Pi3Reconstructor,
    check_weights,
    chunk_spans,
    fit_focal,
)
from recon4d.types import Clip  # noqa: E402
from tests.models.tiny_pi3 import write_tiny_pi3  # noqa: E402


@pytest.mark.parametrize("n,chunk,overlap", [(5, 8, 2), (8, 8, 2), (9, 8, 2), (20, 8, 3), (33, 16, 4), (17, 4, 1)])
def test_chunk_spans_cover_with_overlap(n, chunk, overlap):
    spans = chunk_spans(n, chunk, overlap)
    covered = np.zeros(n, int)
    for start, stop in spans:
        assert 0 <= start < stop <= n
        assert stop - start == min(chunk, n)
        covered[start:stop] += 1
    assert (covered >= 1).all() and spans[0][0] == 0 and spans[-1][1] == n
    for (_, stop_a), (start_b, _) in zip(spans, spans[1:]):
        assert stop_a - start_b >= overlap


def _pinhole_points(depth: np.ndarray, focal: float) -> np.ndarray:
    height, width = depth.shape[-2:]
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    x = (cols - width / 2) / focal * depth
    y = (rows - height / 2) / focal * depth
    return np.stack([x, y, depth], axis=-1)


def test_fit_focal_recovers_pinhole():
    rng = np.random.default_rng(1)
    depth = rng.uniform(1, 5, (30, 40))
    points = _pinhole_points(depth, 37.5)
    points[..., 1] *= 37.5 / 41.0  # a different fy
    fx, fy = fit_focal(points, np.ones((30, 40), bool))
    assert fx == pytest.approx(37.5, rel=1e-9) and fy == pytest.approx(41.0, rel=1e-9)
    assert np.isnan(fit_focal(points, np.zeros((30, 40), bool))[0])


def test_lift_validity_is_the_pi3_rule():
    """π³'s validity rule (conf > 0.1, no depth edge over 0.03) as lifting applies it."""
    from recon4d.lift.lifting import LiftConfig, valid_point_mask

    rng = np.random.default_rng(2)
    depth = rng.uniform(1, 1.05, (2, 12, 14))
    depth[0, 5:, 7:] = 3.0  # a step: its 3×3 border is an edge
    points = _pinhole_points(depth, 20.0).astype(np.float32)
    conf = rng.uniform(0, 0.3, depth.shape).astype(np.float32)
    got = valid_point_mask(points, conf, LiftConfig(conf_threshold=0.1, depth_edge_rtol=0.03))
    expected = np.zeros_like(got)
    for t in range(2):
        for i in range(12):
            for j in range(14):
                win = points[t, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2, 2]
                edge = (win.max() - win.min()) / points[t, i, j, 2] > 0.03
                expected[t, i, j] = conf[t, i, j] > 0.1 and not edge
    np.testing.assert_array_equal(got, expected)
    assert not got[0, 4:6, 6:8].any()


class _FakeModel:
    class config:
        patch_size = 14


def test_chunks_are_stitched_into_one_similarity_frame(monkeypatch):
    """Each chunk sees the truth under its own random Sim(3); stitching must undo them all."""
    rng = np.random.default_rng(3)
    n, height, width, focal = 13, 28, 42, 30.0
    rotations = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.05, (n, 3)), axis=0)).as_matrix()
    truth = np.tile(np.eye(4), (n, 1, 1))
    truth[:, :3, :3] = rotations
    truth[:, :3, 3] = np.cumsum(rng.normal(0, 0.2, (n, 3)), axis=0)
    depth = rng.uniform(2, 6, (n, height, width))
    local = _pinhole_points(depth, focal)
    frames = np.zeros((n, height, width, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)  # the stub reads which frames it was given
    calls = []

    def fake_forward(self, chunk_frames):
        idx = chunk_frames[:, 0, 0, 0].astype(int)
        scale = rng.uniform(0.5, 2.0)
        sim = np.eye(4)
        sim[:3, :3] = Rotation.random(random_state=len(calls)).as_matrix()
        sim[:3, 3] = rng.normal(0, 3, 3)
        poses = truth[idx].copy()
        poses[:, :3, 3] *= scale
        poses = sim @ poses
        lp = local[idx] * scale
        calls.append(idx)
        return {"local_points": lp.astype(np.float32), "conf": np.full(lp.shape[:3], 0.9, np.float32),
                "camera_poses": poses}

    monkeypatch.setattr(Pi3Reconstructor, "_forward", fake_forward)
    backend = Pi3Reconstructor(_FakeModel(), Pi3BackendConfig(chunk_frames=5, overlap=2))
    clip = Clip(frames=frames, timestamps_s=np.arange(n) / 10, frame_index=np.arange(n), fps=10.0, source="fake",
                source_size=(width * 2, height * 2))
    recon = backend.reconstruct(clip)
    assert len(calls) == len(chunk_spans(n, 5, 2)) > 2
    relative = np.linalg.inv(truth[0]) @ truth
    np.testing.assert_allclose(recon.cam_to_world[:, :3, :3], relative[:, :3, :3], atol=1e-5)
    scale = recon.local_points[..., 2] / local[..., 2]
    assert np.ptp(scale) < 1e-4 * scale.mean()  # one scale for the whole clip
    np.testing.assert_allclose(recon.cam_to_world[:, :3, 3], scale.mean() * relative[:, :3, 3], atol=1e-4)
    np.testing.assert_allclose(recon.intrinsics[:, 0, 0], focal * 2, rtol=1e-4)  # source pixels: 2× the clip


@pytest.fixture()
def weights_dir(tmp_path):
    write_tiny_pi3(tmp_path / "weights" / "pi3", seed=0)
    return tmp_path / "weights"


def _clip(n=6, height=42, width=70, size=(140, 84)):
    frames = (np.random.default_rng(4).random((n, height, width, 3)) * 255).astype(np.uint8)
    return Clip(frames=frames, timestamps_s=np.arange(n) / 5, frame_index=np.arange(n), fps=5.0, source="x",
                source_size=size)


def test_tiny_weights_reconstruct_a_clip(weights_dir):
    backend = Pi3Reconstructor.from_config({"chunk_frames": 4, "overlap": 2}, "cpu", weights_dir)
    assert len(backend.weights_sha256) == 64
    seen = []
    recon = backend.reconstruct(_clip(), progress=lambda done, total: seen.append((done, total)))
    assert recon.local_points.shape == (6, 42, 70, 3) and recon.conf.shape == (6, 42, 70)
    assert np.isfinite(recon.local_points).all() and (recon.local_points[..., 2] > 0).all()
    assert ((recon.conf > 0) & (recon.conf < 1)).all()
    np.testing.assert_allclose(recon.cam_to_world[0], np.eye(4), atol=1e-9)
    np.testing.assert_allclose(recon.cam_to_world[:, 3], np.tile([0, 0, 0, 1], (6, 1)))
    assert seen == [(1, 2), (2, 2)]
    again = Pi3Reconstructor.from_config({"chunk_frames": 4, "overlap": 2}, "cpu", weights_dir).reconstruct(_clip())
    np.testing.assert_array_equal(recon.local_points, again.local_points)


def test_frames_not_multiple_of_patch_are_resized_and_back(weights_dir):
    backend = Pi3Reconstructor.from_config({}, "cpu", weights_dir)
    recon = backend.reconstruct(_clip(n=3, height=40, width=65))
    assert recon.local_points.shape == (3, 40, 65, 3) and recon.conf.shape == (3, 40, 65)


def test_options_and_missing_weights_are_clear(weights_dir, tmp_path):
    with pytest.raises(Recon4dError, match="unknown option.*chunk"):
        Pi3Reconstructor.from_config({"chunk": 3}, "cpu", weights_dir)
    with pytest.raises(Recon4dError, match="overlap"):
        Pi3Reconstructor.from_config({"chunk_frames": 4, "overlap": 4}, "cpu", weights_dir)
    with pytest.raises(Recon4dError, match=r"pi3[/\\]model.safetensors.*--recon classic"):
        Pi3Reconstructor.from_config({}, "cpu", tmp_path / "nothing")


def test_check_weights_names_bad_keys(weights_dir):
    from safetensors.torch import load_file, save_file

    directory = weights_dir / "pi3"
    assert "config.json" in check_weights(directory)
    state = load_file(str(directory / "model.safetensors"))
    key = sorted(state)[3]
    state["renamed." + key] = state.pop(key)
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(Recon4dError, match=rf"missing keys: .*{key}.*unexpected keys: renamed\.{key}"):
        check_weights(directory)
    (directory / "config.json").write_text(json.dumps({"widht": 3}))
    with pytest.raises(Recon4dError, match="unknown π³ config fields.*widht"):
        check_weights(directory)
    (directory / "model.safetensors").write_bytes(b"not safetensors")
    (directory / "config.json").unlink()
    with pytest.raises(Recon4dError, match="not a readable safetensors"):
        check_weights(Path(directory))


def test_chunks_without_shared_confident_pixels_fall_back_to_scale_1_with_a_warning(monkeypatch):
    """Issue 10: the scale-1 fallback used to be silent."""
    from recon4d.recon.pi3 import Pi3StitchWarning

    n, height, width = 8, 14, 28
    frames = np.zeros((n, height, width, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)

    def fake_forward(self, chunk_frames):
        idx = chunk_frames[:, 0, 0, 0].astype(int)
        poses = np.tile(np.eye(4), (len(idx), 1, 1))
        poses[:, 0, 3] = idx * 0.1
        conf = np.full((len(idx), height, width), 0.9 if idx[0] == 0 else 0.01, np.float32)  # 2nd chunk unsure
        return {"local_points": _pinhole_points(np.full((len(idx), height, width), 3.0), 20.0).astype(np.float32),
                "conf": conf, "camera_poses": poses}

    monkeypatch.setattr(Pi3Reconstructor, "_forward", fake_forward)
    backend = Pi3Reconstructor(_FakeModel(), Pi3BackendConfig(chunk_frames=5, overlap=2))
    clip = Clip(frames=frames, timestamps_s=np.arange(n) / 10, frame_index=np.arange(n), fps=10.0, source="fake",
                source_size=(width, height))
    with pytest.warns(Pi3StitchWarning, match=r"chunk 2 of 2 \(frames 3-7\) could not be aligned .* scale 1"):
        recon = backend.reconstruct(clip)
    assert np.isfinite(recon.cam_to_world).all() and recon.unit == "arbitrary"
    np.testing.assert_allclose(recon.cam_to_world[:, 0, 3], np.arange(n) * 0.1, atol=1e-12)  # chained exactly
