"""Tests of recon4d.models.pi3: checkpoint layout, procedural golden outputs, strict loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from recon4d.errors import ShapeError  # noqa: E402
from recon4d.models.pi3 import CheckpointError, Pi3, Pi3Config, procedural_state_dict  # noqa: E402
from recon4d.models.pi3.heads import svd_orthogonalize  # noqa: E402
from recon4d.models.pi3.rope import patch_positions, rope_2d  # noqa: E402

OUTPUTS = ("points", "local_points", "conf", "camera_poses")


@pytest.fixture(scope="module")
def tiny_model() -> Pi3:
    model = Pi3(Pi3Config.tiny()).eval()
    model.load_state_dict(procedural_state_dict(model))
    return model


@pytest.fixture
def tiny_checkpoint(tiny_model, tmp_path):
    path = tmp_path / "model.safetensors"
    state = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    safetensors_torch.save_file(state, str(path))
    return path, state


def test_default_state_dict_matches_public_checkpoint_manifest(shared_data):
    manifest = json.loads((shared_data / "pi3_state_dict_manifest.json").read_text())["tensors"]
    with torch.device("meta"):
        model = Pi3()
    ours = {key: list(t.shape) for key, t in model.state_dict().items()}
    assert sorted(set(manifest) - set(ours)) == []
    assert sorted(set(ours) - set(manifest)) == []
    assert {k: s for k, s in ours.items() if manifest[k] != s} == {}


@pytest.mark.slow
def test_procedural_weights_reproduce_golden_outputs(shared_data):
    golden = np.load(shared_data / "pi3_procedural_golden.npz")
    model = Pi3().eval()
    model.load_state_dict(procedural_state_dict(model))
    with torch.no_grad():
        out = model(torch.from_numpy(golden["imgs"]))
    for name in OUTPUTS:
        assert out[name].shape == golden[name].shape, name
        err = float(np.abs(out[name].numpy() - golden[name]).max())
        assert err <= 1e-4, f"{name}: max abs error {err}"


def test_tiny_forward_shapes_and_pose_structure(tiny_model):
    imgs = torch.rand(2, 3, 3, 28, 42)
    with torch.no_grad():
        out = tiny_model(imgs)
    assert out["points"].shape == (2, 3, 28, 42, 3)
    assert out["local_points"].shape == (2, 3, 28, 42, 3)
    assert out["conf"].shape == (2, 3, 28, 42, 1)
    assert out["camera_poses"].shape == (2, 3, 4, 4)
    assert all(torch.isfinite(t).all() for t in out.values())
    assert (out["local_points"][..., 2] > 0).all()
    rotation = out["camera_poses"][..., :3, :3]
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), torch.eye(3).expand(2, 3, 3, 3),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out["camera_poses"][..., 3, :], torch.tensor([0.0, 0, 0, 1]).expand(2, 3, 4))
    expected = torch.einsum("bnij,bnhwj->bnhwi", rotation, out["local_points"]) \
        + out["camera_poses"][..., None, None, :3, 3]
    torch.testing.assert_close(out["points"], expected)


def test_tiny_forward_is_permutation_equivariant(tiny_model):
    imgs = torch.rand(1, 3, 3, 28, 28)
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        out = tiny_model(imgs)
        permuted = tiny_model(imgs[:, order])
    for name in OUTPUTS:
        torch.testing.assert_close(permuted[name], out[name][:, order], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape", [(1, 3, 28, 28), (1, 2, 3, 28, 30), (1, 2, 4, 28, 28)])
def test_forward_rejects_bad_input_shapes(tiny_model, shape):
    with pytest.raises(ShapeError):
        tiny_model(torch.rand(shape))


def test_from_pretrained_round_trip_is_exact(tiny_model, tiny_checkpoint):
    path, _ = tiny_checkpoint
    loaded = Pi3.from_pretrained(path, config=Pi3Config.tiny())
    imgs = torch.rand(1, 2, 3, 28, 42)
    with torch.no_grad():
        want, got = tiny_model(imgs), loaded(imgs)
    for name in OUTPUTS:
        torch.testing.assert_close(got[name], want[name], atol=0, rtol=0)


def test_from_pretrained_names_a_missing_key(tiny_checkpoint, tmp_path):
    _, state = tiny_checkpoint
    state = dict(state)
    del state["camera_head.fc_t.bias"]
    path = tmp_path / "missing.safetensors"
    safetensors_torch.save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"missing keys: camera_head\.fc_t\.bias"):
        Pi3.from_pretrained(path, config=Pi3Config.tiny())


def test_from_pretrained_names_a_renamed_key(tiny_checkpoint, tmp_path):
    _, state = tiny_checkpoint
    state = dict(state)
    state["encoder.blocks.0.ls1.scale"] = state.pop("encoder.blocks.0.ls1.gamma")
    path = tmp_path / "renamed.safetensors"
    safetensors_torch.save_file(state, str(path))
    with pytest.raises(CheckpointError) as info:
        Pi3.from_pretrained(path, config=Pi3Config.tiny())
    assert "missing keys: encoder.blocks.0.ls1.gamma" in str(info.value)
    assert "unexpected keys: encoder.blocks.0.ls1.scale" in str(info.value)


def test_from_pretrained_names_a_wrong_shape(tiny_checkpoint, tmp_path):
    _, state = tiny_checkpoint
    state = dict(state, register_token=torch.zeros(1, 1, 7, 32))
    path = tmp_path / "shape.safetensors"
    safetensors_torch.save_file(state, str(path))
    with pytest.raises(CheckpointError, match="wrong shapes: register_token"):
        Pi3.from_pretrained(path, config=Pi3Config.tiny())


def test_from_pretrained_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Pi3.from_pretrained(tmp_path / "absent.safetensors")


def test_procedural_state_dict_is_deterministic_and_keeps_imagenet_stats():
    model = Pi3(Pi3Config.tiny())
    first, second = procedural_state_dict(model), procedural_state_dict(model)
    assert list(first) == sorted(model.state_dict())
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=0, rtol=0)
    torch.testing.assert_close(first["image_mean"].flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert 0.015 < float(first["encoder.pos_embed"].std()) < 0.025


def test_svd_orthogonalize_returns_rotations_and_keeps_rotations():
    generator = torch.Generator().manual_seed(0)
    m = torch.randn(64, 9, generator=generator)
    r = svd_orthogonalize(m)
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.det(r), torch.ones(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(svd_orthogonalize(r), r, atol=1e-5, rtol=0)


def test_patch_positions_put_special_tokens_at_origin_and_patches_from_one():
    pos = patch_positions(2, 2, 3, n_special=1)
    assert pos.shape == (2, 7, 2)
    assert pos[0].tolist() == [[0, 0], [1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]


def test_rope_2d_is_identity_at_origin_and_relative_elsewhere():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 1, 8, generator=generator)
    k = torch.randn(1, 2, 1, 8, generator=generator)
    origin = torch.zeros(1, 1, 2, dtype=torch.long)
    torch.testing.assert_close(rope_2d(q, origin, 100.0), q)

    def score(pos_q, pos_k):
        qp = rope_2d(q, torch.tensor([[pos_q]]), 100.0)
        kp = rope_2d(k, torch.tensor([[pos_k]]), 100.0)
        return (qp * kp).sum(-1)

    torch.testing.assert_close(score([1, 2], [3, 5]), score([4, 4], [6, 7]), atol=1e-5, rtol=0)
