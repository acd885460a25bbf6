"""Shared fixtures: small hand-built scenes and the shared reference data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """RECON4D_HOME in a temporary folder for the whole run: tests neither see a developer's
    installed weights (``auto`` must resolve the same everywhere) nor write caches into ~."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("recon4d_home")
        patch.setenv("RECON4D_HOME", str(home))
        yield home


def in_ci() -> bool:
    """True under CI (``CI=true``), where reference data must be present."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing_shared_data(what: str) -> None:
    """A test needs ``what`` from ../shared/data and it is absent: fail under CI, else skip."""
    message = f"{what} is absent ({SHARED_DATA} sits beside the checkout)"
    if in_ci():
        pytest.fail(f"{message}; CI=true needs the reference data", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the checkout; absent, its tests skip with a reason (fail under CI)."""
    if not SHARED_DATA.is_dir():
        missing_shared_data(f"reference data folder {SHARED_DATA}")
    return SHARED_DATA


def make_scene(n_frames: int = 5, n_objects: int = 2, height: int = 6, width: int = 10,
               heavy: bool = True, seed: int = 0):
    """A small, fully specified Scene with random content (and heavy arrays if asked)."""
    from recon4d.types import Scene, SourceInfo

    rng = np.random.default_rng(seed)
    t, k = n_frames, n_objects
    cam_to_world = np.tile(np.eye(4), (t, 1, 1))
    cam_to_world[:, :3, 3] = rng.normal(size=(t, 3))
    visible = rng.random((k, t)) > 0.2
    center = rng.normal(size=(k, t, 3))
    center[~visible] = np.nan
    box = np.sort(rng.uniform(0, 100, size=(k, t, 4)), axis=-1).astype(np.float32)
    box[~visible] = np.nan
    orientation = rng.uniform(-90, 90, size=(k, t, 3)).astype(np.float32)
    is_agent = np.arange(k) % 2 == 0
    orientation[~is_agent] = np.nan
    intrinsics = np.full((t, 3, 3), np.nan, np.float32)
    return Scene(
        timestamps_s=np.arange(t) / 10.0,
        frame_index=np.arange(t) * 3,
        cam_to_world=cam_to_world,
        intrinsics=intrinsics,
        ids=np.arange(k) + 7,
        categories=tuple("person" if a else "box" for a in is_agent),
        is_agent=is_agent,
        visible=visible,
        box_xyxy=box,
        center_world=center,
        orientation=orientation,
        orient_conf=rng.random((k, t)).astype(np.float32),
        extent=rng.random((k, t, 3)).astype(np.float32),
        local_points=rng.normal(size=(t, height, width, 3)).astype(np.float32) if heavy else None,
        conf=rng.random((t, height, width)).astype(np.float32) if heavy else None,
        masks=(rng.random((k, t, height, width)) > 0.5) if heavy else None,
        source=SourceInfo(path="clip.mp4", sha256="0" * 64, fps=30.0, n_frames=100, size=(100, 60)),
        backends={"recon": {"name": "test", "version": "0"}},
        config={"frames": t},
    )


@pytest.fixture
def small_scene():
    return make_scene()


def make_quality(n_objects: int, n_frames: int, seed: int = 0):
    """(ObjectQuality, CameraQuality) with random but valid content."""
    from recon4d.types import CameraQuality, ObjectQuality

    rng = np.random.default_rng(seed)
    k, t = n_objects, n_frames
    objects = ObjectQuality(
        lifted_fraction=rng.random(k), outlier_fraction=rng.random(k), depth_jumps=rng.integers(0, 4, k),
        max_depth_jump_m=rng.random(k) * 2, max_speed_mps=rng.random(k) * 20, speed_limit_mps=np.full(k, 12.0),
        id_switch_steps=rng.integers(0, 2, k), detection_score=np.where(rng.random(k) > 0.5, rng.random(k), np.nan),
        size_ok_fraction=rng.random(k), noise_m=rng.random(k) * 0.1, smooth_lambda_s3=rng.random(k) * 0.01,
        score=rng.random(k), issues=tuple(f"issue {i}" if i % 2 else "" for i in range(k)),
        frame_ok=rng.random((k, t)) > 0.3, track_fraction=rng.random(k), box_stable_fraction=rng.random(k),
        motion_evidence=1 + 3 * rng.random(k))
    camera = CameraQuality(inlier_ratio=rng.random(t), reprojection_px=rng.random(t), frozen=rng.random(t) > 0.8,
                           frame_ok=rng.random(t) > 0.2, motion="parallax", scale_source="ground-plane", score=0.75)
    return objects, camera
