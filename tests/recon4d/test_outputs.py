"""recon4d.outputs: atomic writes, exclusive locks, stale temporaries, OS errors as one paragraph."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from recon4d import outputs
from recon4d.errors import OutputError
from recon4d.outputs import (atomic_output, check_output, clean_stale, output_lock, stale_temporaries,
                             temporary_name, write_bytes, write_json, write_text)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_leaves_only_the_file(tmp_path):
    write_text(tmp_path / "a.txt", "hello")
    write_json(tmp_path / "b.json", {"x": 1})
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert (tmp_path / "b.json").read_text() == '{\n  "x": 1\n}\n'
    assert _names(tmp_path) == ["a.txt", "b.json"]


def test_temporary_names_are_unique_hidden_and_beside(tmp_path):
    names = {temporary_name(tmp_path / "out.json") for _ in range(50)}
    assert len(names) == 50
    assert all(n.parent == tmp_path and n.name.startswith(".out.json.") and n.name.endswith(".partial")
               for n in names)


def test_error_in_block_keeps_old_content_and_leaves_nothing(tmp_path):
    target = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as staging:
            staging.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old" and _names(tmp_path) == ["a.txt"]


def test_folder_replacement_swaps_whole_folders(tmp_path):
    target = tmp_path / "store"
    with atomic_output(target, "dir") as staging:
        (staging / "one").write_text("1")
    with atomic_output(target, "dir") as staging:
        (staging / "two").write_text("2")
    assert _names(target) == ["two"] and _names(tmp_path) == ["store"]


def test_folder_replacement_without_exchange_support(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    target = tmp_path / "store"
    for name in ("one", "two"):
        with atomic_output(target, "dir") as staging:
            (staging / name).write_text(name)
    assert _names(target) == ["two"] and _names(tmp_path) == ["store"]


def test_stale_temporaries_are_cleaned_by_the_next_writer(tmp_path):
    target = tmp_path / "q.jsonl"
    temporary_name(target).write_text("left by a killed run")
    folder = temporary_name(target)
    folder.mkdir()
    (folder / "chunk").write_text("x")
    (tmp_path / "q.jsonl.partial").write_text("older naming")
    (tmp_path / ".q.jsonl.x.partial.keep").write_text("not ours")
    (tmp_path / ".other.1-2.partial").write_text("another target's")
    companion = temporary_name(tmp_path / "q.jsonl.config.json")  # a live writer of another path
    companion.write_text("{}")
    assert len(stale_temporaries(target)) == 3
    write_text(target, "new")
    assert _names(tmp_path) == [".other.1-2.partial", companion.name, ".q.jsonl.x.partial.keep", "q.jsonl"]


def test_displaced_folder_is_restored_when_the_target_is_missing(tmp_path):
    # A writer killed between renaming the old folder aside and renaming the new one in.
    target = tmp_path / "s.zarr"
    displaced = temporary_name(target, ".old")
    displaced.mkdir()
    (displaced / "zarr.json").write_text("{}")
    clean_stale(target)
    assert (target / "zarr.json").exists() and _names(tmp_path) == ["s.zarr"]


def test_lock_refuses_a_second_thread_and_is_reentrant(tmp_path):
    target = tmp_path / "out.zarr"
    with output_lock(target):
        with output_lock(target):  # same thread: fine
            pass
        errors = []

        def other():
            try:
                with output_lock(target):
                    pass
            except OutputError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert errors and "being written by another recon4d run" in errors[0]
    with output_lock(target):  # released
        pass
    assert _names(tmp_path) == []


_HOLD = textwrap.dedent("""
    import sys, time
    from recon4d.outputs import output_lock
    with output_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_lock_refuses_another_process_and_names_it(tmp_path):
    target = tmp_path / "out.zarr"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=f"process {holder.pid}"):
            with output_lock(target):
                pass
    finally:
        holder.kill()
        holder.wait()
    # The kernel drops a dead holder's lock: the next writer proceeds (and cleans the lock file).
    write_bytes(target, b"ok")
    assert _names(tmp_path) == ["out.zarr"]


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from recon4d.outputs import atomic_output
    with atomic_output(sys.argv[1], sys.argv[2]) as staging:
        if sys.argv[2] == "dir":
            staging.joinpath("part").write_text("half")
        else:
            staging.write_text("half")
        print("writing", flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_kill_9_mid_write_then_next_run_is_clean(tmp_path, kind):
    target = tmp_path / "out"
    with atomic_output(target, kind) as staging:
        (staging / "old").write_text("old") if kind == "dir" else staging.write_text("old")
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target), kind], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert stale_temporaries(target)  # the killed run's temporary is there ...
    assert (target / "old").read_text() == "old" if kind == "dir" else target.read_text() == "old"
    with atomic_output(target, kind) as staging:  # ... and the next writer removes it
        (staging / "new").write_text("new") if kind == "dir" else staging.write_text("new")
    assert _names(tmp_path) == ["out"]


def test_check_output_refuses_what_is_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "mine.txt").write_text("precious")
    with pytest.raises(OutputError, match="is a file, but the scene store is a folder"):
        check_output(tmp_path / "file", "dir", overwrite=True, what="scene store")
    with pytest.raises(OutputError, match="is a folder, but the report is a file"):
        check_output(tmp_path / "folder", "file", what="report")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        check_output(tmp_path / "folder", "dir", overwrite=False)
    with pytest.raises(OutputError, match="not a scene store written by recon4d"):
        check_output(tmp_path / "folder", "dir", overwrite=True, replaceable=lambda p: False, what="scene store")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "sub" / "x.json", "file")
    assert (tmp_path / "folder" / "mine.txt").read_text() == "precious"


def test_check_output_refuses_a_folder_without_write_permission(tmp_path, monkeypatch):
    # root may write anywhere, so the permission answer is the kernel's access() call, replaced here
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(OutputError, match="is not writable by you"):
        check_output(tmp_path / "new" / "x.json", "file")


def test_missing_parents_are_created_and_removed_again_on_failure(tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    with pytest.raises(RuntimeError):
        with atomic_output(target):
            raise RuntimeError("boom")
    assert _names(tmp_path) == []
    write_text(target, "ok")
    assert target.read_text() == "ok"


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "permission denied")])
def test_os_errors_become_one_paragraph_and_leave_nothing(tmp_path, monkeypatch, code, words):
    target = write_text(tmp_path / "q.json", "old")
    real_open = open

    def failing_write(path, data):
        with real_open(path, "xb") as handle:
            handle.write(data[:3])
        raise OSError(code, os.strerror(code), str(path))

    with pytest.raises(OutputError) as caught:
        with atomic_output(target) as staging:
            failing_write(staging, b"new content")
    message = str(caught.value)
    assert words in message and str(target) in message and "\n" not in message
    assert target.read_text() == "old" and _names(tmp_path) == ["q.json"]


def test_file_size_limit_is_a_clean_error(tmp_path):
    # A real limit (ulimit -f): Python ignores SIGXFSZ, so the write fails with EFBIG.
    code = textwrap.dedent("""
        import resource, sys
        from recon4d.errors import OutputError
        from recon4d.outputs import write_bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_bytes(sys.argv[1], b"x" * 100_000)
        except OutputError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.bin")], capture_output=True, text=True,
                         timeout=60)
    assert "file-size limit" in out.stdout and out.returncode == 0, out.stderr
    assert _names(tmp_path) == []


def test_lock_file_is_removed_and_a_racing_holder_retries(tmp_path):
    target = tmp_path / "x"
    with output_lock(target):
        assert outputs.lock_name(target).exists()
    assert not outputs.lock_name(target).exists()
    time.sleep(0)  # the lock is free again for anyone
    with output_lock(target):
        pass
