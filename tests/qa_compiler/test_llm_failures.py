"""LLM failures never hang, never lose the templated questions, and are reported with reasons."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.main import main
from recon4d.qa_compiler.export import read_jsonl
from recon4d.qa_compiler.llm import LLMConfig, LLMError, generate_llm_question
from recon4d.qa_compiler.nontemplate import compile_llm_questions, usable
from recon4d.store import write_scene
from tests.conftest import make_scene
from tests.qa_compiler.test_llm import DOG, PERSON, TIMES, TRAJECTORIES, VALID


class _Trickle(BaseHTTPRequestHandler):
    """Answers 200 with a long body, one byte every 0.2 s (a stuck proxy, an overloaded server)."""

    headers_first = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if not self.headers_first:
                for byte in b"HTTP/1.1 200 OK\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(params=[True, False], ids=["trickled-body", "trickled-headers"])
def trickle_url(request):
    handler = type("Handler", (_Trickle,), {"headers_first": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_trickling_server_hits_the_total_deadline(trickle_url):
    # Each byte comes well within a per-read timeout; only a deadline on the whole request ends it.
    config = LLMConfig(url=trickle_url, model="m", timeout_s=1.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="did not answer within 1.0 s") as caught:
        generate_llm_question(config, TRAJECTORIES, [PERSON, DOG], "camera", TIMES)
    assert time.monotonic() - started < 3.0 and caught.value.kind == "timeout"


def _scene_with_nan_visible_centres():
    scene = make_scene(n_frames=12, n_objects=2, heavy=False, seed=3)
    visible = np.ones((2, 12), bool)
    centre = np.random.default_rng(0).normal(size=(2, 12, 3))
    centre[0, 4:7] = np.nan  # marked visible, but lifting found no centre there (older stores)
    box = np.tile(np.array([10, 10, 40, 60], np.float32), (2, 12, 1))
    return replace(scene, visible=visible, center_world=centre, box_xyxy=box)


def test_nan_centres_in_visible_frames_are_not_asked_about(chat_server):
    from recon4d.errors import ShapeError

    try:
        scene = _scene_with_nan_visible_centres()
    except ShapeError as exc:  # a Scene that refuses them protects the compiler as well
        assert "centre" in str(exc) or "center" in str(exc)
        return
    assert not usable(scene)[0, 4:7].any() and usable(scene)[1].all()
    for _ in range(6):
        chat_server.reply(VALID)
    config = LLMConfig(url=chat_server.url, model="m", timeout_s=5.0, max_retries=0)
    records, report = compile_llm_questions(scene, config, 6, seed=1, video_id="v")
    assert report.generated + sum(report.failures.values()) == 6
    for request in chat_server.requests:
        assert "nan" not in request["body"]["messages"][1]["content"].lower()


def test_llm_failures_keep_the_templated_questions_and_give_reasons(tmp_path):
    store = write_scene(make_scene(n_frames=30, n_objects=3, heavy=False, seed=5), tmp_path / "s.zarr")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    out = tmp_path / "q.jsonl"
    result = CliRunner().invoke(main, ["qa", str(store), "-o", str(out), "-n", "4", "--llm-url", dead,
                                       "--llm-n", "5", "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    templated = read_jsonl(out)
    assert templated and all(r.qtype != "llm" for r in templated)
    assert "could not reach" in result.stderr and "warning: llm" in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())["llm"]
    assert report["generated"] == 0 and report["failures"].get("unreachable") == 3
    assert report["failures"].get("not_asked") == 2  # a dead server is not asked five times
    assert any("could not reach" in f["reason"] for f in report["failure_reasons"])


def test_a_non_http_url_is_refused_before_compiling(tmp_path):
    store = write_scene(make_scene(heavy=False), tmp_path / "s.zarr")
    result = CliRunner().invoke(main, ["qa", str(store), "-o", str(tmp_path / "q.jsonl"), "--llm-url", "ftp://x/v1"])
    assert result.exit_code == 2 and "--llm-url" in result.stderr and "http://" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
