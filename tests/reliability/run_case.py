"""Run ``recon4d ARGS...`` in this interpreter with the faults a case asks for (tests only).

    RECON4D_TEST_FSIZE=N     a real file-size limit of N bytes (ulimit -f; Python ignores SIGXFSZ)
    RECON4D_TEST_ENOSPC=NAME writes to files whose name contains NAME fail as on a full disk
    RECON4D_TEST_EACCES=DIR  the folder DIR answers as an unwritable folder does for a normal user
                             (root ignores permission bits, so a root test run needs this)
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import sys


def _under(path, folder: str) -> bool:
    try:
        return os.path.abspath(os.fspath(path)).startswith(os.path.abspath(folder) + os.sep)
    except TypeError:
        return False


def _install_faults() -> None:
    limit = os.environ.get("RECON4D_TEST_FSIZE")
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
    full = os.environ.get("RECON4D_TEST_ENOSPC")
    denied = os.environ.get("RECON4D_TEST_EACCES")
    real_open, real_os_open, real_mkdir, real_access = builtins.open, os.open, os.mkdir, os.access

    class _FullFile(io.RawIOBase):
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._handle.name)

        def writable(self):
            return True

        def close(self):
            self._handle.close()
            super().close()

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def fault_open(file, mode="r", *args, **kwargs):
        writing = any(flag in mode for flag in "wax+")
        if writing and denied and _under(file, denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        handle = real_open(file, mode, *args, **kwargs)
        if writing and full and full in os.path.basename(os.fspath(file)) and not os.fspath(file).endswith(".lock"):
            return _FullFile(handle)
        return handle

    def fault_os_open(path, flags, *args, **kwargs):
        if denied and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    def fault_mkdir(path, *args, **kwargs):
        if denied and _under(path, denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    def fault_access(path, mode, *args, **kwargs):
        if denied and mode & os.W_OK and os.path.abspath(os.fspath(path)) == os.path.abspath(denied):
            return False
        return real_access(path, mode, *args, **kwargs)

    if full or denied:
        builtins.open = io.open = fault_open
        os.open, os.mkdir, os.access = fault_os_open, fault_mkdir, fault_access


if __name__ == "__main__":
    _install_faults()
    from recon4d.cli.main import main

    main(sys.argv[1:], prog_name="recon4d")
