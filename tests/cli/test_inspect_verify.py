"""`recon4d inspect --verify`: recompute the checksum a store recorded."""

import json

from click.testing import CliRunner

from recon4d.cli.main import main
from recon4d.store import store_checksum, write_scene
from tests.conftest import make_scene


def test_verify_ok_prints_the_checksum(tmp_path):
    path = write_scene(make_scene(), tmp_path / "s.zarr")
    result = CliRunner().invoke(main, ["inspect", str(path), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    verified = json.loads(result.stdout)["verified"]
    assert verified["ok"] and verified["computed_sha256"] == store_checksum(path) and verified["mismatched"] == []


def test_verify_names_the_damaged_array(tmp_path):
    path = write_scene(make_scene(), tmp_path / "s.zarr")
    chunk = path / "objects" / "masks" / "c" / "0" / "1" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[-3] ^= 0xFF
    chunk.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["inspect", str(path), "--verify"])
    assert result.exit_code == 1
    assert "is damaged" in result.output and "objects/masks" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_chunk_fails_plain_inspect(tmp_path):
    path = write_scene(make_scene(heavy=False), tmp_path / "s.zarr")
    (path / "camera" / "cam_to_world" / "c" / "0" / "0" / "0").unlink()
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 1 and "chunk camera/cam_to_world/c/0/0/0 is missing" in result.output
