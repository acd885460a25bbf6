"""The bad-input lab: session-built originals (a tiny video, a store, a QA file) and a fresh
folder per case holding copies, so a case may damage its inputs freely."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

TEMPORARY_SUFFIXES = (".partial", ".lock", ".old", ".part", ".incomplete")


@dataclass(frozen=True)
class Originals:
    """Inputs built once per session."""

    video: Path
    """A 12-frame 160×96 synthetic mp4."""
    store: Path
    """Its ground-truth store (points, confidences, masks)."""
    qa: Path
    """Questions compiled from the store (JSONL)."""


def build_originals(root: Path) -> Originals:
    from recon4d.qa_compiler.compiler import CompileConfig, compile_scenes
    from recon4d.qa_compiler.export import export
    from recon4d.synth.scene import SynthConfig, write_synthetic

    paths = write_synthetic(root / "synth", SynthConfig(seed=2, n_frames=12, width=160, height=96, n_objects=2))
    records, _ = compile_scenes([paths.scene], CompileConfig(n_per_scene=6, seed=0))
    qa = export(records, root / "qa.jsonl", "jsonl")
    return Originals(video=paths.video, store=paths.scene, qa=qa)


class Lab:
    """One case's folder: copies of the originals on request, plus a snapshot of the tree."""

    def __init__(self, folder: Path, originals: Originals):
        self.folder = folder
        self.originals = originals
        self.cleanups: list = []
        self.env: dict[str, str] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / name

    def video(self, name: str = "clip.mp4") -> Path:
        target = self.folder / name
        if not target.exists():
            shutil.copy2(self.originals.video, target)
        return target

    def store(self, name: str = "scene.zarr") -> Path:
        target = self.folder / name
        if not target.exists():
            shutil.copytree(self.originals.store, target)
        return target

    def qa(self, name: str = "qa.jsonl") -> Path:
        target = self.folder / name
        if not target.exists():
            shutil.copy2(self.originals.qa, target)
        return target

    def write(self, name: str, content: str | bytes) -> Path:
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def read_only(self, folder: Path) -> None:
        """Make ``folder`` unwritable for real: chmod for a normal user; for root (who ignores
        permission bits) the immutable attribute where the file system has one, else the case
        runs with writes under it failing as the kernel would (EACCES, see run_case.py)."""
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return
        import subprocess

        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            self.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(folder)], capture_output=True))
        else:
            self.env["RECON4D_TEST_EACCES"] = str(folder)

    def hold_lock(self, path: Path) -> None:
        """Another process holds the exclusive lock on ``path`` while the case runs."""
        import subprocess
        import sys

        holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom recon4d.outputs import output_lock\n"
                                   "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()",
                                   str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "locked"

        def release():  # the holder finishes normally (and removes its lock file)
            holder.stdin.close()
            holder.wait(timeout=60)

        self.cleanups.append(release)

    def rewrite_array(self, store: Path, array: str) -> None:
        """Overwrite one value of ``array`` with another valid one (the checksum no longer matches)."""
        import zarr

        target = zarr.open_group(str(store), mode="a")[array]
        index = (0,) * target.ndim
        target[index] = target[index] + 0.25

    def poison_poses(self, store: Path) -> None:
        """Camera poses of NaN (a reconstruction that failed but was written anyway)."""
        import numpy as np
        import zarr

        poses = zarr.open_group(str(store), mode="a")["camera/cam_to_world"]
        poses[:] = np.full(poses.shape, np.nan)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()

    def snapshot(self) -> dict[str, str]:
        """Every path under the folder with a digest of its content ("dir" for folders)."""
        found = {}
        for dirpath, dirnames, filenames in os.walk(self.folder):
            for name in dirnames:
                found[os.path.relpath(os.path.join(dirpath, name), self.folder)] = "dir"
            for name in filenames:
                full = os.path.join(dirpath, name)
                with open(full, "rb") as handle:
                    found[os.path.relpath(full, self.folder)] = hashlib.sha256(handle.read()).hexdigest()
        return found


def temporaries(snapshot: dict[str, str]) -> list[str]:
    return sorted(p for p in snapshot if Path(p).name.endswith(TEMPORARY_SUFFIXES))
