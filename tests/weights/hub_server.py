"""A local HTTP server speaking the part of the Hugging Face Hub's file API that downloads use.

    HEAD/GET /{org}/{repo}/resolve/{revision}/{path}
        200 (or 206 for "Range: bytes=N-") with X-Repo-Commit, ETag (the sha256 for large files,
        as the Hub does for LFS files), X-Linked-Etag/X-Linked-Size, Content-Length, Accept-Ranges
    404 with X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound otherwise

Faults for tests: ``serve(..., corrupt=...)`` serves other bytes than the ones a client expects;
``drop(path, [n1, n2, ...])`` closes the connection after n1, then n2... bytes of the next GET
bodies; ``stall(path, n)`` sends n bytes and then hangs. Every request is logged with its Range.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFiles:
    files: dict = field(default_factory=dict)  # (repo, revision, path) -> bytes
    lfs: set = field(default_factory=set)
    etag_override: dict = field(default_factory=dict)
    drops: dict = field(default_factory=dict)  # path -> [body bytes of the next GETs before a drop]
    log: list = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    stall_paths: set = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubFiles

    def log_message(self, *args):  # quiet
        pass

    def _lookup(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None, "RepoNotFound"
        repo, revision, path = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
        if not any(r == repo for r, _, _ in self.hub.files):
            return None, "RepoNotFound"
        if not any(r == repo and v == revision for r, v, _ in self.hub.files):
            return None, "RevisionNotFound"
        key = (repo, revision, path)
        return (key, None) if key in self.hub.files else (None, "EntryNotFound")

    def _headers(self, key, data: bytes, start: int):
        etag = self.hub.etag_override.get(key) or (hashlib.sha256(data).hexdigest() if key in self.hub.lfs
                                                   else hashlib.sha1(data).hexdigest())
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{etag}"')
        if key in self.hub.lfs:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()

    def _answer(self, with_body: bool):
        key, error = self._lookup()
        self.hub.log.append((self.command, self.path, self.headers.get("Range")))
        if key is None:
            self.send_response(404)
            self.send_header("X-Error-Code", error)
            self.send_header("X-Error-Message", error)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.hub.files[key]
        start = 0
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes=") and with_body:
            start = int(ranged[len("bytes="):].split("-")[0] or 0)
        self.send_response(206 if start else 200)
        self._headers(key, data, start)
        if not with_body:
            return
        plan = self.hub.drops.get(key[2])
        body = data[start:]
        if plan:
            n_bytes = plan.pop(0)
            self.wfile.write(body[:n_bytes])
            self.wfile.flush()
            if key[2] in self.hub.stall_paths:  # hold the connection open until released
                self.hub.stalled.wait(120)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_HEAD(self):
        self._answer(with_body=False)

    def do_GET(self):
        self._answer(with_body=True)


class LocalHub:
    """``with LocalHub() as hub: hub.add("org/repo", "main", "f.bin", data, lfs=True)``; ``hub.url``."""

    def __init__(self):
        self.state = HubFiles()
        handler = type("Handler", (_Handler,), {"hub": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo: str, revision: str, path: str, data: bytes, lfs: bool = True) -> str:
        self.state.files[(repo, revision, path)] = data
        if lfs:
            self.state.lfs.add((repo, revision, path))
        return hashlib.sha256(data).hexdigest()

    def drop(self, path: str, byte_counts: list[int]) -> None:
        """The next GETs of ``path`` send these many body bytes each, then close the connection."""
        self.state.drops[path] = list(byte_counts)

    def stall(self, path: str, n_bytes: int) -> None:
        """The next GET of ``path`` sends ``n_bytes`` and then hangs (until the server stops)."""
        self.state.drops[path] = [n_bytes]
        self.state.stall_paths.add(path)

    def gets(self, path: str) -> list:
        return [(method, rng) for method, p, rng in self.state.log if method == "GET" and p.endswith("/" + path)]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.state.stalled.set()
        self.server.shutdown()
        self.server.server_close()
