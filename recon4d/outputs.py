"""Writing outputs safely: one atomic-write helper, exclusive output locks, stale temporaries.

Every file or folder recon4d writes (scene stores, QA exports, reports, PNGs, config JSONs,
videos, installed weights, batch records) goes through :func:`atomic_output`:

    with atomic_output(path, kind="file") as staging:   # lock on path, stale temporaries removed
        staging.write_bytes(data)                        # .NAME.<pid>-<hex>.partial beside path
    # staging renamed over path; an old folder is swapped out atomically, then removed

- Temporary names are unique per writer (process id + random hex) and hidden, beside the
  target so the final rename stays on one file system and is atomic.
- :func:`output_lock` holds an exclusive ``flock`` on ``.NAME.lock`` beside the target: a second
  writer of the same path (another process, another thread) is refused at once with a clear
  message instead of interleaving with the first.
- Under the lock every temporary an earlier writer of the same path left behind (kill -9, power
  loss) is removed, and a displaced old folder is put back when the target is missing, so the
  next run cleans up after a crash at any moment.
- Replacing a folder exchanges the two names in one ``renameat2(RENAME_EXCHANGE)`` call where the
  kernel offers it; elsewhere the old folder is renamed aside first, and the cleanup above
  restores it if the process dies between the two renames.
- OS errors (read-only folder, disk full, file-size limit, a file in the way) become one
  :class:`OutputError` paragraph naming the path; nothing partial is left and the previous
  content of the path is unchanged.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Literal

from recon4d.errors import OutputError

Kind = Literal["file", "dir"]

_PARTIAL, _DISPLACED, _LOCK = ".partial", ".old", ".lock"

_held_lock = threading.Lock()
_held: dict[str, tuple[int, int, int]] = {}  # resolved path -> (pid, thread id, depth)


def _key(path: Path) -> str:
    return str(Path(os.path.abspath(path)))


def temporary_name(path: str | Path, suffix: str = _PARTIAL) -> Path:
    """A unique hidden name beside ``path``: ``.NAME.<pid>-<8 hex>.partial``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def lock_name(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}{_LOCK}")


def _why(exc: OSError) -> str:
    reasons = {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied (the folder is not writable by you)",
        errno.EPERM: "the operation is not permitted (read-only or immutable folder)",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file would exceed the file-size limit (ulimit -f)",
        errno.ENOTDIR: "a file is in the way where a folder is needed",
        errno.EISDIR: "a folder is in the way where a file is needed",
        errno.ENAMETOOLONG: "the name is too long",
    }
    return reasons.get(exc.errno, exc.strerror or str(exc))


def output_error(path: str | Path, exc: OSError, what: str = "write") -> OutputError:
    """One paragraph for an OS error while writing ``path``."""
    detail = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return OutputError(f"cannot {what} {path}: {_why(exc)}{detail}. Nothing was written there and anything "
                       "already at that path is unchanged; free space, fix the permissions or choose another "
                       "output path, then run the command again.")


def _nearest_existing(path: Path) -> Path:
    current = path
    while not os.path.lexists(current):
        if current.parent == current:
            break
        current = current.parent
    return current


def check_output(path: str | Path, kind: Kind = "file", overwrite: bool = True,
                 replaceable: Callable[[Path], bool] | None = None, what: str = "output") -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Checks that nothing of the other kind is in the way, that an existing target may be
    replaced (``overwrite``; a folder only when ``replaceable(path)`` says it is ours, so
    ``--overwrite`` never deletes a user's folder), and that the nearest existing ancestor is a
    writable folder. Raises OutputError naming the path and what to do.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise OutputError(f"{path} cannot be used as the {what} path: give a file or folder name.")
    if os.path.lexists(path):
        if path.is_dir() and kind == "file":
            raise OutputError(f"{path} is a folder, but the {what} is a file; give a file name (inside that "
                              "folder, for instance) or another path.")
        if not path.is_dir() and kind == "dir":
            raise OutputError(f"{path} is a file, but the {what} is a folder; remove the file yourself or "
                              "choose another path (--overwrite replaces only what recon4d wrote).")
        if not overwrite:
            raise OutputError(f"{path} already exists; pass --overwrite to replace it or choose another path.")
        if kind == "dir" and replaceable is not None and not replaceable(path):
            raise OutputError(f"{path} exists and is not a {what} written by recon4d; --overwrite replaces only "
                              "those, so nothing of yours is deleted. Remove it yourself or choose another path.")
    ancestor = _nearest_existing(path.parent if path.parent != path else path)
    if not ancestor.is_dir():
        raise OutputError(f"cannot create {path}: {ancestor} is a file, not a folder; choose another path.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: the folder {ancestor} is not writable by you; fix its "
                          "permissions or choose another output path.")
    return path


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parents of ``path``; return those created (deepest last)."""
    created = []
    for parent in reversed(path.parents):
        if not os.path.lexists(parent):
            try:
                parent.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                _remove_created(created)
                raise output_error(path, exc, "create the folder for") from exc
            created.append(parent)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def clean_stale(path: str | Path) -> list[Path]:
    """Remove the temporaries earlier writers of ``path`` left (call it holding the lock).

    A displaced old folder (``.NAME.*.old``) is moved back to ``path`` when ``path`` is missing
    (the writer died between its two renames); otherwise it is removed with the rest. Also
    removes ``NAME.partial``, the fixed temporary name older versions used. Returns what was
    removed or restored.
    """
    path = Path(path)
    touched = []
    for stale in stale_temporaries(path, legacy=False):
        name = stale.name
        if name.endswith(_DISPLACED) and not os.path.lexists(path):
            try:
                os.rename(stale, path)
                touched.append(stale)
                continue
            except OSError:
                pass
        _remove(stale)
        touched.append(stale)
    legacy = path.with_name(path.name + _PARTIAL)
    if os.path.lexists(legacy):
        _remove(legacy)
        touched.append(legacy)
    return touched


def _temporary_pattern(path: Path) -> re.Pattern:
    # exactly temporary_name's form: ".NAME.<pid>-<8 hex>.partial|.old" (so "q.jsonl" never matches
    # the temporaries of its companion "q.jsonl.config.json")
    return re.compile(rf"^\.{re.escape(path.name)}\.\d+-[0-9a-f]{{8}}(\{_PARTIAL}|\{_DISPLACED})$")


def stale_temporaries(path: str | Path, legacy: bool = True) -> list[Path]:
    """Temporaries of ``path`` that exist now (for checks, messages and :func:`clean_stale`)."""
    path = Path(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    pattern = _temporary_pattern(path)
    found = [path.parent / n for n in sorted(names) if pattern.match(n)]
    old_style = path.with_name(path.name + _PARTIAL)
    return found + ([old_style] if legacy and os.path.lexists(old_style) else [])


def _busy(path: Path, lock_path: Path) -> OutputError:
    try:
        owner = lock_path.read_text().strip()
    except OSError:
        owner = ""
    who = f" (process {owner})" if owner.isdigit() else ""
    return OutputError(f"{path} is being written by another recon4d run{who}; two runs must not write the same "
                       "output. Wait for that run to finish, or choose another output path.")


@contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (``.NAME.lock`` beside it) for the block.

    Re-entrant within one thread; another thread or process asking for the same path gets an
    OutputError at once (no waiting). Missing parent folders are created, and removed again
    when the block leaves nothing at ``path``. Stale temporaries of ``path`` are cleaned when
    the lock is first taken.
    """
    import fcntl

    path = Path(path)
    key = _key(path)
    me = (os.getpid(), threading.get_ident())
    with _held_lock:
        entry = _held.get(key)
        if entry is not None and entry[0] == me[0]:
            if entry[1] != me[1]:
                raise _busy(path, lock_name(path))
            _held[key] = (*me, entry[2] + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield path
        finally:
            with _held_lock:
                pid, tid, depth = _held[key]
                _held[key] = (pid, tid, depth - 1)
        return
    created = _make_parents(path)
    lock_path = lock_name(path)
    handle = None
    try:
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise output_error(path, exc, "lock") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(path, lock_path) from None
            except OSError as exc:
                os.close(fd)
                raise output_error(path, exc, "lock") from exc
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else the holder before us unlinked it between our open and flock: retry
                handle = fd
                break
            os.close(fd)
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        with _held_lock:
            _held[key] = (*me, 1)
        clean_stale(path)
        yield path
    finally:
        with _held_lock:
            if _held.get(key, (None,))[0] == me[0]:
                _held.pop(key, None)
        if handle is not None:
            try:
                os.unlink(lock_path)
            except OSError:
                pass
            os.close(handle)
        if not os.path.lexists(path):
            _remove_created(created)


def holds_lock(path: str | Path) -> bool:
    """Whether this thread holds :func:`output_lock` on ``path``."""
    entry = _held.get(_key(Path(path)))
    return entry is not None and entry[:2] == (os.getpid(), threading.get_ident())


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the kernel or libc cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _install(staging: Path, path: Path) -> None:
    """Put ``staging`` in place of ``path`` so that ``path`` is always old or new, never half."""
    if not os.path.lexists(path) or not path.is_dir() or not staging.is_dir():
        os.replace(staging, path)
        return
    if _exchange(staging, path):
        _remove(staging)  # holds the old folder now; a crash here is cleaned by the next writer
        return
    displaced = temporary_name(path, _DISPLACED)
    os.rename(path, displaced)
    os.rename(staging, path)
    _remove(displaced)


@contextmanager
def atomic_output(path: str | Path, kind: Kind = "file", overwrite: bool = True,
                  replaceable: Callable[[Path], bool] | None = None, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; install it when the block succeeds.

    ``kind="dir"`` creates the temporary folder; ``kind="file"`` yields a name to create.
    Holds :func:`output_lock` on ``path`` for the block, runs :func:`check_output` first, and on
    any error removes the temporary and leaves ``path`` as it was. OS errors are re-raised as
    OutputError naming ``path``.
    """
    path = Path(path)
    check_output(path, kind, overwrite, replaceable, what)
    with output_lock(path):
        staging = temporary_name(path)
        try:
            if kind == "dir":
                staging.mkdir()
            yield staging
            if kind == "file" and staging.is_file():
                _fsync(staging)
            if not os.path.lexists(staging):
                raise OutputError(f"nothing was written for {path} (the writer produced no output).")
            _install(staging, path)
        except OSError as exc:
            _remove(staging)
            raise output_error(path, exc) from exc
        except BaseException:
            _remove(staging)
            raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (replacing a file there)."""
    with atomic_output(path, "file", what=what) as staging:
        with open(staging, "xb") as handle:
            handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, what: str = "output") -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), what)


def write_json(path: str | Path, data, what: str = "output", indent: int | None = 2) -> Path:
    """Write ``data`` as indented JSON with a trailing newline to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=indent) + "\n", what)


def json_text(data, indent: int | None = 2) -> str:
    """``data`` as the JSON text :func:`write_json` writes."""
    return json.dumps(data, indent=indent) + "\n"


@contextmanager
def companions(*files: tuple[str | Path, str | None, str]) -> Iterator[None]:
    """Companion files of a command's main output — ``(path, text or None to skip, what)``,
    e.g. the resolved config beside a store — written to temporaries *before* the block runs and
    put in place after it succeeds, so a failure at any point (the main output or a companion
    that cannot be written) leaves none of them behind and the main output is not written alone."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for path, text, what in files:
            if text is None:
                continue
            staging = stack.enter_context(atomic_output(path, "file", what=what))
            with open(staging, "xb") as handle:
                handle.write(text.encode("utf-8"))
        yield


@contextmanager
def atomic_file(path: str | Path, what: str = "output") -> Iterator:
    """A binary handle whose content replaces ``path`` when the block succeeds."""
    with atomic_output(path, "file", what=what) as staging:
        with open(staging, "xb") as handle:
            yield handle
