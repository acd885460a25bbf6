"""`recon4d weights download` against a local server speaking the Hub's file API (never the network)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("huggingface_hub")

from recon4d import weights  # noqa: E402
from recon4d.cli.main import main  # noqa: E402
from recon4d.weights import HubFile  # noqa: E402
from tests.models.tiny_pi3 import write_tiny_pi3  # noqa: E402
from tests.weights.hub_server import LocalHub  # noqa: E402

REPO = "test-org/pi3-tiny"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, bytes]:
    folder = write_tiny_pi3(tmp_path_factory.mktemp("tiny") / "pi3")
    return {name: (folder / name).read_bytes() for name in ("model.safetensors", "config.json")}


CHUNK = 64 * 1024
"""huggingface_hub writes a download in chunks of 10 MB; the tiny checkpoint is 0.6 MB, so the tests
use 64 KB chunks to be interrupted mid-file as a real checkpoint is."""


@pytest.fixture
def hub(tiny, monkeypatch, tmp_path):
    """A local Hub serving the tiny π³ files; the pi3 component pinned to their sha256."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)
    with LocalHub() as server:
        pins = {name: server.add(REPO, "main", name, data, lfs=(name != "config.json")) for name, data in tiny.items()}
        component = dataclasses.replace(weights.COMPONENTS["pi3"], hub=tuple(
            HubFile(REPO, name, name, sha256=pins[name]) for name in ("model.safetensors", "config.json")))
        monkeypatch.setitem(weights.COMPONENTS, "pi3", component)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("RECON4D_HOME", str(tmp_path / "home"))
        yield server


def _download(root, *extra):
    return CliRunner().invoke(main, ["weights", "download", "pi3", "--weights-dir", str(root), *extra])


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_download_end_to_end(hub, tiny, tmp_path):
    root = tmp_path / "weights"
    result = _download(root)
    assert result.exit_code == 0, result.output
    assert "matches the pinned sha256" in result.output and "installed" in result.output
    assert _tree(root) == ["pi3", "pi3/config.json", "pi3/model.safetensors"]
    for name, data in tiny.items():
        assert (root / "pi3" / name).read_bytes() == data
    assert not (tmp_path / "home" / "downloads").exists() or _tree(tmp_path / "home" / "downloads") == []
    verify = CliRunner().invoke(main, ["weights", "verify", "pi3", "--weights-dir", str(root)])
    assert verify.exit_code == 0 and "pi3: ok" in verify.output
    again = _download(root)  # in place already: refused before anything is fetched
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_a_corrupted_file_is_refused_and_nothing_is_placed(hub, tiny, tmp_path):
    bad = bytearray(tiny["model.safetensors"])
    bad[len(bad) // 2] ^= 0xFF
    hub.add(REPO, "main", "model.safetensors", bytes(bad))  # the Hub serves other bytes than the pinned ones
    root = tmp_path / "weights"
    result = _download(root)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"has sha256 {hashlib.sha256(bad).hexdigest()}" in result.output and "pinned" in result.output
    assert _tree(root) == []
    downloads = tmp_path / "home" / "downloads"
    assert not any(p.name == "model.safetensors" for p in downloads.rglob("*"))


def test_unpinned_file_is_checked_against_the_hubs_sha256(hub, tiny, tmp_path, monkeypatch):
    component = weights.COMPONENTS["pi3"]
    monkeypatch.setitem(weights.COMPONENTS, "pi3", dataclasses.replace(
        component, hub=tuple(dataclasses.replace(h, sha256=None) for h in component.hub)))
    good = hashlib.sha256(tiny["model.safetensors"]).hexdigest()
    hub.state.etag_override[(REPO, "main", "model.safetensors")] = good
    bad = bytearray(tiny["model.safetensors"])
    bad[100] ^= 0x01
    hub.state.files[(REPO, "main", "model.safetensors")] = bytes(bad)  # damaged on the way
    result = _download(tmp_path / "weights")
    assert result.exit_code == 1 and "the Hub states for it" in result.output
    assert _tree(tmp_path / "weights") == []
    hub.state.files[(REPO, "main", "model.safetensors")] = tiny["model.safetensors"]
    result = _download(tmp_path / "weights")
    assert result.exit_code == 0 and "matches the Hub's sha256 (not pinned)" in result.output
    assert "config.json" in result.output and "not pinned; the Hub states no sha256" in result.output


def test_an_interrupted_download_continues_where_it_stopped(hub, tiny, tmp_path):
    size = len(tiny["model.safetensors"])
    cut = (size // 3) // CHUNK * CHUNK
    # the connection drops after a third, then its five retries get nothing: the first try gives up
    hub.drop("model.safetensors", [cut, 0, 0, 0, 0, 0])
    root = tmp_path / "weights"
    first = _download(root)
    assert first.exit_code == 1 and "could not be downloaded" in first.output and "continues on the next try" in first.output
    assert _tree(root) == []
    parts = list((tmp_path / "home" / "downloads").rglob("model.safetensors.*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == cut
    before = len(hub.gets("model.safetensors"))
    second = _download(root)
    assert second.exit_code == 0, second.output
    assert hub.gets("model.safetensors")[before:] == [("GET", f"bytes={cut}-")]  # only the rest was fetched
    assert (root / "pi3" / "model.safetensors").read_bytes() == tiny["model.safetensors"]


_DOWNLOAD = textwrap.dedent("""
    import dataclasses, sys
    from recon4d import weights
    from recon4d.weights import HubFile
    from recon4d.weights_download import download_component
    from huggingface_hub import constants
    constants.DOWNLOAD_CHUNK_SIZE = 64 * 1024
    pins = dict(arg.split("=") for arg in sys.argv[3:])
    component = dataclasses.replace(weights.COMPONENTS["pi3"], hub=tuple(
        HubFile("test-org/pi3-tiny", name, name, sha256=pins[name]) for name in ("model.safetensors", "config.json")))
    weights.COMPONENTS["pi3"] = component
    download_component("pi3", sys.argv[2], sys.argv[1], __import__("os").environ["HF_ENDPOINT"])
""")


def test_kill_9_mid_download_then_the_next_try_resumes(hub, tiny, tmp_path):
    size = len(tiny["model.safetensors"])
    cut = (size // 2) // CHUNK * CHUNK
    hub.stall("model.safetensors", cut)
    home, root = tmp_path / "home", tmp_path / "weights"
    pins = [f"{n}={hashlib.sha256(d).hexdigest()}" for n, d in tiny.items()]
    env = {**os.environ, "HF_ENDPOINT": hub.url}
    child = subprocess.Popen([sys.executable, "-c", _DOWNLOAD, str(home), str(root), *pins], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        parts = list(home.rglob("model.safetensors.*.part"))
        if parts and parts[0].stat().st_size >= cut:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _tree(root) == []
    result = _download(root)
    assert result.exit_code == 0, result.output
    assert hub.gets("model.safetensors")[-1] == ("GET", f"bytes={cut}-")
    assert (root / "pi3" / "model.safetensors").read_bytes() == tiny["model.safetensors"]


def test_files_that_do_not_load_are_not_placed(hub, tiny, tmp_path, monkeypatch):
    # Without its config.json the tiny checkpoint is read as the public π³ and every shape is wrong.
    component = weights.COMPONENTS["pi3"]
    hub.add(REPO, "main", "config.json", b"{}", lfs=False)
    pinned = tuple(dataclasses.replace(h, sha256=None) for h in component.hub)
    monkeypatch.setitem(weights.COMPONENTS, "pi3", dataclasses.replace(component, hub=pinned))
    result = _download(tmp_path / "weights")
    assert result.exit_code == 1 and "pi3" in result.output and "Traceback" not in result.output
    assert _tree(tmp_path / "weights") == []


@pytest.mark.parametrize("args, code, words", [
    (["nope"], 2, "there are no weights called 'nope'"),
    (["pi3", "--revision", "v9"], 1, "has no revision 'v9'"),
])
def test_bad_names_and_revisions(hub, tmp_path, args, code, words):
    result = CliRunner().invoke(main, ["weights", "download", *args, "--weights-dir", str(tmp_path / "w")])
    assert result.exit_code == code and words in result.output and "Traceback" not in result.output
    assert _tree(tmp_path / "w") == []


def test_nothing_downloads_implicitly(hub, tmp_path):
    from recon4d.synth.scene import SynthConfig, write_synthetic

    video = write_synthetic(tmp_path / "s", SynthConfig(seed=0, n_frames=6, width=160, height=96)).video
    result = CliRunner().invoke(main, ["process", str(video), "-o", str(tmp_path / "o.zarr"), "--recon", "pi3",
                                       "--frames", "4"])
    assert result.exit_code == 1 and "needs weights that are not installed" in result.output
    assert hub.state.log == []  # no request reached the Hub
