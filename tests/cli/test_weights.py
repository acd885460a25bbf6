"""`recon4d weights list/verify/import` and the registry's view of installed weights."""

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from recon4d.backends import resolve_backend  # noqa: E402
from recon4d.cli.main import main  # noqa: E402
from recon4d.errors import Recon4dError  # noqa: E402
from recon4d.weights import sha256_path  # noqa: E402
from tests.models.tiny_pi3 import write_tiny_pi3  # noqa: E402


def _run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_list_shows_every_component_missing_then_present(tmp_path):
    root = tmp_path / "weights"
    report = json.loads(_run("weights", "list", "--weights-dir", str(root), "--json").output)
    names = {c["name"]: c for c in report["components"]}
    assert set(names) == {"pi3", "grounding-dino", "sam2", "orient-anything"}
    assert not any(c["present"] for c in names.values())
    assert {(b["stage"], b["name"]) for b in report["backends"] if b["usable"]} == {
        ("track", "classic"), ("recon", "classic"), ("orient", "motion")}
    write_tiny_pi3(root / "pi3")
    report = json.loads(_run("weights", "list", "--weights-dir", str(root), "--json").output)
    pi3 = next(c for c in report["components"] if c["name"] == "pi3")
    assert pi3["present"] and {f["path"] for f in pi3["files"]} == {"pi3/config.json", "pi3/model.safetensors"}
    digest = {f["path"]: f["sha256"] for f in pi3["files"]}["pi3/model.safetensors"]
    assert digest == sha256_path(root / "pi3" / "model.safetensors")
    text = _run("weights", "list", "--weights-dir", str(root), "--no-hash").output
    assert "pi3/  present" in text and "sam2/  MISSING (*.pt)" in text


def test_env_home_is_the_default_root(tmp_path):
    out = _run("weights", "list", "--json", env={"RECON4D_HOME": str(tmp_path)}).output
    assert json.loads(out)["weights_dir"] == str(tmp_path / "weights")


def test_verify_ok_and_failed(tmp_path):
    root = tmp_path / "weights"
    result = _run("weights", "verify", "--weights-dir", str(root))
    assert result.exit_code == 0 and "no weights are installed" in result.output
    result = _run("weights", "verify", "pi3", "--weights-dir", str(root))
    assert result.exit_code == 1 and "pi3: MISSING" in result.output
    write_tiny_pi3(root / "pi3")
    result = _run("weights", "verify", "--weights-dir", str(root))
    assert result.exit_code == 0 and "pi3: ok" in result.output
    (root / "pi3" / "config.json").unlink()  # tiny weights read as the public sizes: every shape is wrong
    result = _run("weights", "verify", "pi3", "--weights-dir", str(root))
    assert result.exit_code == 1 and "pi3: FAILED" in result.output and "wrong shapes" in result.output


def test_import_checks_before_placing(tmp_path):
    download = write_tiny_pi3(tmp_path / "download")
    root = tmp_path / "weights"
    # A lone tiny file is checked against the public sizes and refused; nothing is left behind.
    result = CliRunner().invoke(main, ["weights", "import", "pi3", str(download / "model.safetensors"),
                                       "--weights-dir", str(root)])
    assert result.exit_code == 1 and "does not match the π³ state dict" in result.output
    assert not (root / "pi3").exists() and (not root.exists() or list(root.iterdir()) == [])
    result = _run("weights", "import", "pi3", str(download), "--weights-dir", str(root))
    assert result.exit_code == 0 and "installed" in result.output
    assert sha256_path(root / "pi3") == sha256_path(download)
    result = CliRunner().invoke(main, ["weights", "import", "pi3", str(download), "--weights-dir", str(root)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert _run("weights", "import", "pi3", str(download), "--weights-dir", str(root), "--overwrite").exit_code == 0
    result = CliRunner().invoke(main, ["weights", "import", "nope", str(download), "--weights-dir", str(root)])
    assert result.exit_code == 2 and "no weights called 'nope'" in result.output  # a usage error (README)


def test_auto_picks_pi3_when_present_and_explicit_missing_is_clear(tmp_path):
    root = tmp_path / "weights"
    assert resolve_backend("recon", "auto", root).spec.name == "classic"
    with pytest.raises(Recon4dError, match=r"pi3.*needs model\.safetensors.*--recon classic"):
        resolve_backend("recon", "pi3", root)
    with pytest.raises(Recon4dError, match=r"grounding-dino.*sam2.*--tracker classic"):
        resolve_backend("track", "sam2", root)
    write_tiny_pi3(root / "pi3")
    resolved = resolve_backend("recon", "auto", root)
    assert resolved.spec.name == "pi3" and str(root) in resolved.reason


def test_file_hashes_are_cached_until_the_file_changes(tmp_path, monkeypatch):
    import os

    import recon4d.store
    from recon4d.weights import file_sha256_cached

    monkeypatch.setenv("RECON4D_HOME", str(tmp_path / "home"))
    reads = []
    original = recon4d.store.file_sha256
    monkeypatch.setattr(recon4d.store, "file_sha256", lambda path: reads.append(path) or original(path))
    file = tmp_path / "model.bin"
    file.write_bytes(b"a" * 1000)
    first = file_sha256_cached(file)
    assert file_sha256_cached(file) == first and len(reads) == 1  # second call from the cache
    assert (tmp_path / "home" / "cache" / "sha256.json").is_file()
    file.write_bytes(b"b" * 1000)
    os.utime(file, ns=(1, 1))  # a different modification time
    assert file_sha256_cached(file) == original(file) != first and len(reads) == 2
