"""Fixtures of the QA compiler tests: a real local chat-completions server."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class ChatServer:
    """A real local HTTP server answering chat completions from a script of steps."""

    url: str = ""
    script: list = field(default_factory=list)
    requests: list = field(default_factory=list)

    def reply(self, content):
        self.script.append(("reply", content))

    def status(self, code, body="server exploded"):
        self.script.append(("status", code, body))

    def raw(self, body: bytes):
        self.script.append(("raw", body))

    def slow(self, delay_s, content):
        self.script.append(("slow", delay_s, content))


def _handler(state: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            step = state.script.pop(0) if state.script else ("status", 500, "script exhausted")
            if step[0] == "slow":
                time.sleep(step[1])
                step = ("reply", step[2])
            if step[0] == "reply":
                payload = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": step[1]}, "finish_reason": "stop"}]})
                self._send(200, payload.encode())
            elif step[0] == "raw":
                self._send(200, step[1])
            else:
                self._send(step[1], step[2].encode())

        def _send(self, code, body: bytes):
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def chat_server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = ChatServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


