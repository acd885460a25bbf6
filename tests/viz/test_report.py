"""recon4d.viz.report: one static, valid HTML5 page with embedded PNGs."""

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from recon4d.cli.report import report_command
from recon4d.errors import StoreError
from recon4d.qa_compiler.compiler import CompileConfig, compile_scene
from recon4d.qa_compiler.export import export
from recon4d.viz.report import ReportError, qa_statistics, write_report
from recon4d.store import open_scene
from recon4d.synth.scene import SynthConfig, write_synthetic

CHROMIUM = Path("/usr/bin/chromium")


class _Page(HTMLParser):
    """Collects what the tests look at: tags, attributes, images, section ids, title text."""

    def __init__(self):
        super().__init__()
        self.doctype = None
        self.tags: list[tuple[str, dict]] = []
        self.title = ""
        self._in_title = False

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def all(self, tag):
        return [attrs for name, attrs in self.tags if name == tag]


def parse(path) -> _Page:
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def scene_and_qa(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    paths = write_synthetic(root / "clip", SynthConfig(seed=2, n_frames=24, width=160, height=96, n_objects=3))
    records, _ = compile_scene(open_scene(paths.scene), CompileConfig(n_per_scene=10, seed=0))
    return paths.scene, export(records, root / "qa.jsonl", "jsonl"), records


def _png_sources(page: _Page) -> list[bytes]:
    images = []
    for attrs in page.all("img"):
        assert attrs["src"].startswith("data:image/png;base64,")
        assert attrs.get("alt"), "every image needs an alt text"
        images.append(base64.b64decode(attrs["src"].split(",", 1)[1]))
    return images


def test_report_with_questions(scene_and_qa, tmp_path):
    scene_path, qa_path, records = scene_and_qa
    out = write_report(scene_path, tmp_path / "out" / "report.html", qa_path=qa_path)
    page = parse(out)
    assert page.doctype.lower() == "doctype html"
    assert page.all("html")[0]["lang"] == "en"
    assert any(m.get("charset") == "utf-8" for m in page.all("meta"))
    assert page.title.startswith("recon4d report")
    assert {s.get("id") for s in page.all("section")} == {"summary", "plots", "renders", "qa"}
    images = _png_sources(page)
    assert len(images) == 8 and all(i.startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert not any(a.get("src", "").startswith(("http", "file")) for _, a in page.tags)
    text = out.read_text()
    assert f"Questions ({len(records)} in qa.jsonl)" in text and "<td>person</td>" in text
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_report_lists_quality_and_warnings(tmp_path):
    from dataclasses import replace

    from recon4d.store import write_scene
    from tests.conftest import make_quality, make_scene

    scene = make_scene(heavy=False)
    objects, camera = make_quality(scene.n_objects, scene.n_frames)
    path = write_scene(replace(scene, object_quality=objects, camera_quality=camera,
                               warnings=("recon: the camera <froze>",)), tmp_path / "q.zarr")
    text = write_report(path, tmp_path / "report.html", renders=False).read_text()
    assert "1 pipeline warning(s)" in text and "the camera &lt;froze&gt;" in text
    assert "scale from ground-plane" in text and "issue 1" in text


def test_report_without_questions(scene_and_qa, tmp_path):
    scene_path, _, _ = scene_and_qa
    page = parse(write_report(scene_path, tmp_path / "report.html", renders=False))
    assert {s.get("id") for s in page.all("section")} == {"summary", "plots"}
    assert len(_png_sources(page)) == 1


def test_renders_are_the_viewer_images(scene_and_qa, tmp_path):
    import cv2

    from recon4d.viz.viewer import render_image

    scene_path, _, _ = scene_and_qa
    page = parse(write_report(scene_path, tmp_path / "report.html"))
    renders = _png_sources(page)[1:]
    assert len(renders) == 3  # frames 0, middle, last
    scene = open_scene(scene_path)
    images = []
    for png, frame in zip(renders, (0, scene.n_frames // 2, scene.n_frames - 1)):
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        assert image.shape == (450, 800, 3) and image.std() > 5
        # Content: the very image the viewer renders for that frame (the point colours of the frame).
        expected = render_image(scene, frame=frame, size=(800, 450), color_by="rgb")
        assert np.abs(image.astype(int) - expected.astype(int)).mean() < 1.0, frame
        images.append(image)
    # Three different frames: the current camera (drawn in red) and the points move between them.
    assert all(np.abs(a.astype(int) - b.astype(int)).mean() > 0.5 for a, b in zip(images, images[1:]))
    reddish = [(image[..., 0] > 200) & (image[..., 1] < 80) & (image[..., 2] < 80) for image in images]
    assert all(r.sum() > 20 for r in reddish)  # the current camera's frustum


def test_renders_failing_are_said_not_dropped(scene_and_qa, tmp_path, monkeypatch):
    import recon4d.viz.viewer
    from recon4d.errors import Recon4dError

    def broken(*args, **kwargs):
        raise Recon4dError("headless rendering is not possible on this machine (test)")

    monkeypatch.setattr(recon4d.viz.viewer, "render_image", broken)
    scene_path, _, _ = scene_and_qa
    text = write_report(scene_path, tmp_path / "report.html").read_text()
    assert "No 3D views in this report: headless rendering is not possible" in text


def test_qa_statistics(scene_and_qa):
    _, _, records = scene_and_qa
    stats = qa_statistics(records)
    assert stats["n"] == len(records) == sum(stats["types"].values()) == sum(stats["letters"].values())
    assert sum(stats["phase_counts"].values()) == len(records) and set(stats["letters"]) == set("ABCD")


def test_errors_leave_no_file(scene_and_qa, tmp_path):
    scene_path, _, _ = scene_and_qa
    out = tmp_path / "report.html"
    with pytest.raises(ReportError, match="cannot read questions"):
        write_report(scene_path, out, qa_path=tmp_path / "missing.jsonl")
    with pytest.raises(StoreError):
        write_report(tmp_path / "nothing.zarr", out)
    assert list(tmp_path.iterdir()) == []


def test_cli(scene_and_qa, tmp_path):
    scene_path, qa_path, _ = scene_and_qa
    out = tmp_path / "r.html"
    result = CliRunner().invoke(report_command, [str(scene_path), "-o", str(out), "--qa", str(qa_path)])
    assert result.exit_code == 0, result.output
    assert "images embedded" in result.output and len(_png_sources(parse(out))) == 8


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed; headless console check skipped")
def test_chromium_loads_without_console_errors(scene_and_qa, tmp_path):
    scene_path, qa_path, _ = scene_and_qa
    out = write_report(scene_path, tmp_path / "report.html", qa_path=qa_path)
    profile = tmp_path / "profile"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", "--dump-dom", out.resolve().as_uri()]
    if shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} is not executable")
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'id="qa"' in result.stdout
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, "\n".join(console)
