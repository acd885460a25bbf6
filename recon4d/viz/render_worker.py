"""Render worker: ``python -m recon4d.viz.render_worker`` (started by :mod:`recon4d.viz.offscreen`).

Reads requests from stdin and writes replies to the original stdout, each an 8-byte
little-endian length followed by a pickle. A request is the arguments of
:func:`recon4d.viz.open3d_render.render_payload`; a reply is ("ok", image | failure list) or
("error", message). Everything the libraries print goes to stderr, so the reply channel
stays clean. The process ends when stdin closes.
"""

from __future__ import annotations

import os
import pickle
import sys


def read_frame(stream) -> bytes | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    return data if len(data) == size else None


def write_frame(stream, data: bytes) -> None:
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # Open3D's C++ logging writes to fd 1
    from recon4d.viz.open3d_render import render_payload

    while (request := read_frame(sys.stdin.buffer)) is not None:
        try:
            reply = ("ok", render_payload(*pickle.loads(request)))
        except Exception as exc:  # reported to the caller, which raises a Recon4dError
            reply = ("error", f"{type(exc).__name__}: {exc}")
        write_frame(replies, pickle.dumps(reply))


if __name__ == "__main__":
    main()
