"""One self-contained HTML page about a scene (and optionally the questions compiled from it).

The page needs no server and no network: every picture is a base64 PNG inside the file. It
holds the summary of :func:`recon4d.summary.summarize_scene`, the scene figure of
:func:`recon4d.viz.plots.scene_figure`, headless Open3D renders of three frames and, given a QA
JSONL export, four histograms of the questions (type, phase count, margin, correct letter). It is written to a temporary file
beside the target and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from pathlib import Path

from recon4d.errors import Recon4dError
from recon4d.outputs import check_output, write_text
from recon4d.viz.plots import figure_png, pyplot, scene_figure
from recon4d.qa_compiler.records import LETTERS, QARecord
from recon4d.summary import summarize_scene

class ReportError(Recon4dError, ValueError):
    """The questions file given to the report is missing or not a QA JSONL export."""


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; height: auto; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_section(summary: dict) -> str:
    backends = ", ".join(f"{k}={v}" for k, v in summary["backends"].items()) or "none recorded"
    fps = summary["fps"]
    facts = [
        ["source", summary["source"] or "n/a"],
        ["frames", summary["n_frames"]],
        ["duration (s)", f"{summary['duration_s']:.2f}"],
        ["fps", "n/a" if fps is None else f"{fps:g}"],
        ["backends", backends],
        ["camera path length", f"{summary['camera_path_length']:.2f}"],
        ["point maps / masks", f"{'yes' if summary['has_points'] else 'no'} / {'yes' if summary['has_masks'] else 'no'}"],
    ]
    camera = summary.get("camera_quality")
    if camera is not None:
        facts.append(["camera quality", f"{camera['motion']}, scale from {camera['scale_source']}, "
                      f"{camera['trusted_frames']}/{summary['n_frames']} frames trusted, {camera['frozen_frames']} "
                      f"frozen, score {_fmt(camera['score'])}"])
    objects = [
        [o["id"], o["category"], "yes" if o["is_agent"] else "no", f"{o['visible_frames']}/{summary['n_frames']}",
         ", ".join(f"{a:.2f}–{b:.2f}" for a, b in o["visible_spans_s"]) or "never", f"{o['path_length']:.2f}",
         "n/a" if o.get("quality") is None else _fmt(o["quality"]["score"]),
         "" if o.get("quality") is None else o["quality"]["issues"]]
        for o in summary["objects"]
    ]
    warnings = summary.get("warnings") or []
    warning_list = ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>") if warnings else (
        "<p>none recorded</p>")
    return ("<section id=\"summary\"><h2>Summary</h2>" + _table(["field", "value"], facts)
            + f"<h3>{len(objects)} objects</h3>"
            + _table(["id", "category", "agent", "visible frames", "visible spans (s)", "path length", "quality",
                      "issues"], objects)
            + f"<h3 id=\"warnings\">{len(warnings)} pipeline warning(s)</h3>" + warning_list
            + "</section>")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _bar_png(title: str, xlabel: str, labels: list[str], counts: list[int], expected: float | None = None) -> bytes:
    """A bar chart of ``counts``; ``expected`` draws the count each bar would have if balanced."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(6, 3.6))
    axes.bar(range(len(labels)), counts, color="tab:blue")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if expected is not None:
        axes.axhline(expected, color="tab:red", ls="--", lw=1, label=f"uniform ({expected:g})")
        axes.legend(fontsize=8)
    axes.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("questions")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure_png(figure)


def _margin_png(margins: list[float]) -> bytes:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 3.6))
    finite = [m for m in margins if math.isfinite(m)]
    if finite:
        axes.hist(finite, bins=min(30, max(5, len(finite) // 2)), color="tab:orange")
    else:
        axes.text(0.5, 0.5, "no finite margins", ha="center", transform=axes.transAxes)
    axes.set_xlabel("margin (relative distance to the nearest rule threshold)")
    axes.set_ylabel("questions")
    axes.set_title(f"margins ({len(finite)} finite of {len(margins)})", fontsize=10)
    figure.tight_layout()
    return figure_png(figure)


def qa_statistics(records: list[QARecord]) -> dict:
    """Counts behind the QA section: by type, by phase count, by letter, and the margins."""
    return {
        "n": len(records),
        "types": dict(sorted(Counter(r.qtype for r in records).items())),
        "phase_counts": dict(sorted(Counter(len(r.phases) for r in records).items())),
        "letters": {letter: sum(r.answer == letter for r in records) for letter in LETTERS},
        "margins": [float(r.margin) for r in records],
    }


def _qa_section(records: list[QARecord], qa_path: Path) -> str:
    stats = qa_statistics(records)
    images = [
        _img(_bar_png("question types", "type", list(stats["types"]), list(stats["types"].values())),
             "Histogram of question types"),
        _img(_bar_png("phases per answer", "number of phases", [str(k) for k in stats["phase_counts"]],
                      list(stats["phase_counts"].values())), "Histogram of the number of phases per answer"),
        _img(_margin_png(stats["margins"]), "Histogram of answer margins"),
        _img(_bar_png("correct letter balance", "letter", list(stats["letters"]), list(stats["letters"].values()),
                      expected=stats["n"] / len(LETTERS)),
             "Bar chart of how often each letter is the correct answer"),
    ]
    rows = [[t, n] for t, n in stats["types"].items()]
    return (f"<section id=\"qa\"><h2>Questions ({stats['n']} in {html.escape(qa_path.name)})</h2>"
            + _table(["type", "questions"], rows)
            + "<div class=\"grid\">" + "".join(images) + "</div></section>")


_RENDER_SIZE = (800, 450)


def _renders_section(scene) -> str:
    """Headless Open3D renders (:mod:`recon4d.viz.viewer`) at the first, middle and last frames, or
    a paragraph saying why there are none (open3d missing, no offscreen rendering)."""
    import cv2

    from recon4d.viz.viewer import render_image

    frames = sorted({0, scene.n_frames // 2, scene.n_frames - 1})
    colour = "rgb" if scene.local_points is not None and scene.source is not None \
        and Path(scene.source.path).is_file() else "object"
    parts = ['<section id="renders"><h2>3D views</h2>',
             "<p>Points of the frame (when the store has point maps), camera frustums along the path with the "
             "current one in red, object trajectories with the current position marked, agents' forward arrows "
             "and the world axes (x red, y green, z blue).</p>", '<div class="grid">']
    try:
        for frame in frames:
            image = render_image(scene, frame=frame, size=_RENDER_SIZE, color_by=colour)
            ok, png = cv2.imencode(".png", image[..., ::-1])
            if not ok:
                raise Recon4dError(f"OpenCV could not encode the render of frame {frame} as PNG")
            parts.append(f"<figure>{_img(png.tobytes(), f'3D view at frame {frame}')}"
                         f"<figcaption>frame {frame}, t = {scene.timestamps_s[frame]:.2f} s</figcaption></figure>")
    except Recon4dError as exc:
        return ('<section id="renders"><h2>3D views</h2>'
                f"<p>No 3D views in this report: {html.escape(str(exc))}</p></section>")
    return "\n".join([*parts, "</div>", "</section>"])


def render_report(scene_path: str | Path, qa_path: str | Path | None = None, renders: bool = True) -> str:
    """The report page as an HTML5 string (see :func:`write_report`); ``renders`` adds the
    headless 3D views of :mod:`recon4d.viz.viewer`."""
    from recon4d.qa_compiler.export import read_jsonl
    from recon4d.store import open_scene

    scene_path = Path(scene_path)
    scene = open_scene(scene_path)
    figure, _ = scene_figure(scene)
    title = f"recon4d report: {scene_path.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        _summary_section(summarize_scene(scene)),
        '<section id="plots"><h2>Trajectories, speeds and distance</h2>',
        "<p>Top-down view in the FLU frame of the camera at frame 0: forward up the page, left to the left.</p>",
        _img(figure_png(figure), "Scene plots: top-down and side views of object and camera paths, speeds over "
             "time, and the distance between the first two objects with the 0.8/1.2 bands"),
        "</section>",
    ]
    if renders:
        parts.append(_renders_section(scene))
    if qa_path is not None:
        qa_path = Path(qa_path)
        try:
            records = read_jsonl(qa_path)
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot read questions from {qa_path}: {exc}. Pass a .jsonl written by "
                              "`recon4d qa SCENE -o qa.jsonl`.") from exc
        parts.append(_qa_section(records, qa_path))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_report(scene_path: str | Path, out_html: str | Path, qa_path: str | Path | None = None,
                 renders: bool = True) -> Path:
    """Write the self-contained HTML report of a scene store (and a QA JSONL, if given).

    Raises StoreError for a path that is not a scene store, ReportError for a missing or
    malformed JSONL. The file appears complete or not at all.
    """
    out_html = Path(out_html)
    check_output(out_html, "file", what="report")
    page = render_report(scene_path, qa_path, renders)
    return write_text(out_html, page, what="report")
