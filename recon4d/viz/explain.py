"""Why a compiled question has its answer: one picture of the evidence in a QA record.

The figure shows the source-video frames at the start and end of the asked interval with the
targets' boxes (source pixels), the per-step quantity the answer was derived from
(``record.quantities``) against the rule thresholds of its profile (paper Table 8), the
phases the rules derived, the margin, and the question with its options.

Phase spans are recomputed from the quantities with the same rules as
:mod:`recon4d.qa_compiler.rules`; when the recomputed phase count disagrees with
``record.phases`` (a record from another profile version) the phases are listed but not
placed on the time axis.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from recon4d.optional import require
from recon4d.errors import Recon4dError, VideoError
from recon4d.outputs import check_output, write_bytes
from recon4d.viz.plots import figure_png, pyplot
from recon4d.qa_compiler.records import LETTERS, QARecord
from recon4d.qa_compiler.rules import get_profile
from recon4d.types import Scene


class ExplainError(Recon4dError, ValueError):
    """A record cannot be explained with the scene or video it was given."""


def _phase_name(phase) -> str:
    return "|".join(phase) if isinstance(phase, (tuple, list)) else str(phase).replace("_", " ")


def _runs(labels: list) -> list[tuple[int, int]]:
    """Inclusive (first, last) index runs of equal consecutive labels."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i - 1))
            start = i
    return runs


def distance_spans(values: np.ndarray, low: float, high: float, near_zero: float) -> list[tuple[int, int]]:
    """(anchor, end) index pairs of the phases of the distance rule (Table 8 anchor scan).

    values: (N,) distances or speeds. A phase starting at anchor s is steady while values stay
    within [low, high] × x[s] (or both near zero), else grows while each step ratio > high,
    else shrinks while each step ratio < low; the last index of a phase anchors the next.
    """
    x = np.asarray(values, np.float64)
    n, spans, s = len(x), [], 0

    def ratio(a: float, b: float) -> float:
        return b / a if a > 0 else (np.inf if b > 0 else np.nan)

    def steady(a: float, b: float) -> bool:
        return bool(low <= ratio(a, b) <= high or (a < near_zero and b < near_zero))

    while s < n - 1:
        e = s + 1
        if steady(x[s], x[e]):
            while e < n and steady(x[s], x[e]):
                e += 1
            end = n - 1 if e == n else e
        elif ratio(x[s], x[e]) > high:
            while e < n and ratio(x[e - 1], x[e]) > high:
                e += 1
            end = e - 1
        else:
            while e < n and x[e] / x[e - 1] < low and x[e] >= near_zero:
                e += 1
            end = n - 1 if e == n else (e if x[e] < near_zero else e - 1)
        spans.append((s, end))
        s = end
    return spans


def _direction_labels(unit: np.ndarray, threshold: float) -> list[tuple[str, ...]]:
    """Per-step FLU labels of (N, 3) unit vectors: an axis is named past ±threshold."""
    names = (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))
    return [tuple(pos if c > threshold else neg for (pos, neg), c in zip(names, row) if abs(c) > threshold)
            for row in unit]


def _speed_labels(former: np.ndarray, latter: np.ndarray, eps: float, near_zero: float) -> list[int]:
    """Per-step +1 (former faster), 0 (same), −1 (latter faster): Table 8 ratio 1.2 and 1/1.2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = former / latter
    sign = np.where(ratio > 1 + eps, 1, np.where(ratio < 1 / (1 + eps), -1, 0))
    return np.where((former < near_zero) & (latter < near_zero), 0, sign).tolist()


def _series_times(scene: Scene, record: QARecord, n: int) -> np.ndarray:
    """Times of an n-step series of the interval: frames (n = F) or step ends (n = F − 1)."""
    first, last = record.frame_range
    times = scene.timestamps_s[first:last + 1]
    if n == len(times):
        return times
    if n == len(times) - 1:
        return times[1:]
    return np.linspace(record.interval_s[0], record.interval_s[1], n)


def _span_edges(times: np.ndarray, a: int, b: int, shared_anchors: bool) -> tuple[float, float]:
    """Time edges of a phase: its first/last sample, or half-way to the neighbouring steps."""
    if shared_anchors:
        return float(times[a]), float(times[b])
    left = (times[a - 1] + times[a]) / 2 if a > 0 else times[a]
    right = (times[b] + times[b + 1]) / 2 if b + 1 < len(times) else times[b]
    return float(left), float(right)


def _mark_phases(axes, times: np.ndarray, spans, record: QARecord, shared_anchors: bool = False) -> None:
    """Tint each phase span, draw its borders and write its number and label above it."""
    phases = list(record.phases)
    if len(spans) != len(phases):
        axes.text(0.01, 0.98, "phases: " + "; ".join(f"({i + 1}) {_phase_name(p)}" for i, p in enumerate(phases)),
                  transform=axes.transAxes, va="top", fontsize=7)
        return
    tints = ("#fff4d6", "#e3f0ff")
    for i, ((a, b), phase) in enumerate(zip(spans, phases)):
        left, right = _span_edges(times, a, b, shared_anchors)
        axes.axvspan(left, right, color=tints[i % 2], zorder=-2)
        if i:
            axes.axvline(left, color="0.4", lw=0.8, ls="--", zorder=-1)
        axes.text((left + right) / 2, 1.01, f"({i + 1}) {_phase_name(phase)}", transform=axes.get_xaxis_transform(),
                  ha="center", va="bottom", fontsize=8)


def _plot_ratio_series(axes, scene, record, name, values, profile) -> None:
    """Distance or speed: the series, per-phase anchor bands (1 ± eps) × anchor, near-zero line."""
    times = _series_times(scene, record, len(values))
    low, high = 1 - profile.ratio_epsilon, 1 + profile.ratio_epsilon
    spans = distance_spans(values, low, high, profile.near_zero)
    axes.plot(times, values, "o-", color="tab:blue", ms=3, label=name)
    for i, (a, b) in enumerate(spans):
        anchor = values[a]
        axes.fill_between([times[a], times[b]], low * anchor, high * anchor, color="tab:green", alpha=0.18,
                          label=f"{low:g}–{high:g} × phase anchor" if i == 0 else None)
    axes.axhline(profile.near_zero, color="tab:red", lw=0.8, ls=":", label=f"near zero ({profile.near_zero:g})")
    axes.set_ylabel(f"{name} (m{'/s' if 'speed' in name else ''})")
    _mark_phases(axes, times, spans, record, shared_anchors=True)


def _plot_speed_comparison(axes, scene, record, former, latter, profile) -> None:
    """Two speed series and their ratio against 1.2 and 1/1.2 (log axis)."""
    times = _series_times(scene, record, len(former))
    eps = profile.ratio_epsilon
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = former / latter
    axes.plot(times, ratio, "o-", color="tab:purple", ms=3, label="former / latter")
    axes.axhspan(1 / (1 + eps), 1 + eps, color="tab:green", alpha=0.18, label=f"nearly the same (1/{1 + eps:g}–{1 + eps:g})")
    axes.set_yscale("log")
    axes.set_ylabel("speed ratio")
    twin = axes.twinx()
    twin.plot(times, former, color="tab:orange", lw=0.9, alpha=0.7, label="former speed")
    twin.plot(times, latter, color="tab:cyan", lw=0.9, alpha=0.7, label="latter speed")
    twin.set_ylabel("speed (m/s)")
    twin.legend(fontsize=7, loc="lower right")
    spans = _runs(_speed_labels(former, latter, eps, profile.near_zero))
    _mark_phases(axes, times, spans, record)


def _plot_components(axes, scene, record, name, vectors, profile) -> None:
    """Unit-vector FLU components against ±threshold; one vector becomes bars."""
    threshold = profile.direction_threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    axes.axhspan(-threshold, threshold, facecolor="none", hatch="//", edgecolor="0.75", lw=0, label=f"unnamed (|c| ≤ {threshold:.3g})")
    colours = ("tab:red", "tab:green", "tab:blue")
    axis_names = ("forward x", "left y", "up z")
    if len(unit) == 1:
        axes.bar(axis_names, unit[0], color=colours)
        axes.set_ylim(-1.05, 1.05)
        axes.set_ylabel(f"{name} (unit)")
        axes.set_xlabel("FLU axis (one vector for the whole interval)")
        axes.set_title("labels: " + "; ".join(_phase_name(p) for p in record.phases), fontsize=8)
        return
    times = _series_times(scene, record, len(unit))
    for c in range(3):
        axes.plot(times, unit[:, c], "o-", ms=3, color=colours[c], label=axis_names[c])
    axes.set_ylim(-1.05, 1.05)
    axes.set_ylabel(f"{name} (unit)")
    _mark_phases(axes, times, _runs(_direction_labels(unit, threshold)), record)


def _plot_quantities(axes, scene: Scene, record: QARecord) -> None:
    profile = get_profile(record.profile)
    q = {k: np.asarray(v, np.float64) for k, v in record.quantities.items() if k != "phase_margins"}
    if "speed_former" in q and "speed_latter" in q:
        _plot_speed_comparison(axes, scene, record, q["speed_former"], q["speed_latter"], profile)
    elif "distance" in q or "speed" in q:
        name = "distance" if "distance" in q else "speed"
        _plot_ratio_series(axes, scene, record, name, q[name], profile)
    elif "forward" in q or "direction" in q:
        name = "forward" if "forward" in q else "direction"
        _plot_components(axes, scene, record, name, q.get("displacement", q[name]).reshape(-1, 3), profile)
    else:
        axes.text(0.5, 0.5, f"no per-step quantities in this record ({record.qtype})", ha="center",
                  transform=axes.transAxes)
        axes.set_axis_off()
        return
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=4)


def _target_rows(scene: Scene, record: QARecord) -> list[tuple[str, int]]:
    """(label, row) of every object the record is about: its targets, then an agent observer."""
    rows = []
    observer = () if record.observer in ("camera", *record.targets) else (record.observer,)
    for target in (*record.targets, *observer):
        if target == "camera":
            continue
        try:
            rows.append((target, scene.object_index(int(target))))
        except (KeyError, ValueError):
            raise ExplainError(f"target {target!r} of the record is not an object of the scene (ids "
                               f"{scene.ids.tolist()}); pass the scene the record was compiled from.") from None
    return rows


def _decode_interval_frames(video_path: Path, source_indices: list[int]) -> dict[int, np.ndarray]:
    from recon4d.video import iter_frames

    if not Path(video_path).is_file():
        raise VideoError(f"video {video_path} does not exist; pass --video with the clip the record was "
                         "compiled from.")
    wanted = sorted(set(source_indices))
    return {index: rgb for index, _, rgb in iter_frames(video_path, wanted)}


def _draw_frame(axes, rgb: np.ndarray, scene: Scene, frame: int, targets, colours, title: str,
                observer: str) -> None:
    """The frame with the boxes of ``targets`` (label, row) at scene frame ``frame``; the observer dashed."""
    axes.imshow(rgb)
    patches = _patches()
    for (label, row), colour in zip(targets, colours):
        x1, y1, x2, y2 = scene.box_xyxy[row, frame]
        if not np.isfinite([x1, y1, x2, y2]).all():
            continue
        axes.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2, edgecolor=colour,
                                         ls="--" if label == observer else "-"))
        role = " (observer)" if label == observer else ""
        axes.text(x1, y1 - 2, f"{label} {scene.categories[row]}{role}", color="white", fontsize=8,
                  bbox=dict(facecolor=colour, alpha=0.8, pad=1, lw=0))
    axes.set_title(title, fontsize=9)
    axes.set_axis_off()


def _patches():
    """matplotlib.patches (after the Agg backend is set)."""
    pyplot()
    return require("matplotlib.patches", extra="viz", purpose="plots")


def _text_block(record: QARecord) -> str:
    lines = textwrap.wrap(f"[{record.qtype}, {record.viewpoint}, observer {record.observer}] {record.question}", 95)
    for letter, option in zip(LETTERS, record.options):
        mark = "✔" if letter == record.answer else " "
        lines += textwrap.wrap(f"{mark} {letter}. {option}", 95, subsequent_indent="      ")
    return "\n".join(lines)


def explain_figure(record: QARecord, scene: Scene, video_path: str | Path | None):
    """The matplotlib figure (12 × 10 in) explaining ``record``: the start and end frames with
    the targets' boxes (axes 0 and 1), the quantity series with the rule thresholds and phases
    (axes 2), the question and its options (axes 3), the answer and margin in the title.

    video_path: the source video (boxes are in its pixels); None uses ``record.video_path``,
    else the scene's source.
    Raises ExplainError when the record's frames or targets are not in the scene, VideoError
    when the video is missing or cannot be decoded.
    """
    first, last = record.frame_range
    if not 0 <= first <= last < scene.n_frames:
        raise ExplainError(f"the record's frame range {record.frame_range} is outside the scene's "
                           f"{scene.n_frames} frames; pass the scene the record was compiled from.")
    targets = _target_rows(scene, record)
    video_path = video_path or record.video_path or (scene.source.path if scene.source else "")
    if not video_path:
        raise VideoError("neither the record nor the scene names a source video; pass video_path (--video).")
    video_path = Path(video_path)
    source = [int(scene.frame_index[first]), int(scene.frame_index[last])]
    frames = _decode_interval_frames(video_path, source)

    plt = pyplot()
    figure = plt.figure(figsize=(12, 10))
    grid = figure.add_gridspec(3, 2, height_ratios=[1.0, 1.0, 0.55])
    colours = [plt.get_cmap("tab10")(k % 10) for k in range(len(targets))]
    observer_only = "" if record.observer in record.targets else record.observer
    times = scene.timestamps_s
    _draw_frame(figure.add_subplot(grid[0, 0]), frames[source[0]], scene, first, targets, colours,
                f"start: frame {source[0]} (t = {times[first]:.2f} s)", observer_only)
    shown_last = record.visible_range[1]
    hidden = f", shown to the model up to {times[shown_last]:.2f} s" if first <= shown_last < last else ""
    _draw_frame(figure.add_subplot(grid[0, 1]), frames[source[1]], scene, last, targets, colours,
                f"end: frame {source[1]} (t = {times[last]:.2f} s{hidden})", observer_only)
    quantity_axes = figure.add_subplot(grid[1, :])
    _plot_quantities(quantity_axes, scene, record)
    if quantity_axes.axison and not quantity_axes.get_xlabel():
        quantity_axes.set_xlabel("time (s)")
    text_axes = figure.add_subplot(grid[2, :])
    text_axes.set_axis_off()
    text_axes.text(0.0, 1.0, _text_block(record), va="top", ha="left", fontsize=9, family="DejaVu Sans",
                   transform=text_axes.transAxes)
    margin = "∞" if not np.isfinite(record.margin) else f"{record.margin:.3f}"
    figure.suptitle(f"{record.video_id} · {record.qtype} · answer {record.answer}: {record.answer_text}\n"
                    f"interval {record.interval_s[0]:.2f}–{record.interval_s[1]:.2f} s · profile {record.profile} · "
                    f"margin {margin}", fontsize=10)
    figure.tight_layout()
    return figure


def explain_record(record: QARecord, scene: Scene, video_path: str | Path | None, out_png: str | Path,
                   dpi: int = 100) -> Path:
    """Write the 1200×1000 px PNG of :func:`explain_figure` for ``record`` to ``out_png``."""
    check_output(out_png, "file", what="explanation figure")
    figure = explain_figure(record, scene, video_path)
    return write_bytes(out_png, figure_png(figure, dpi=dpi), what="explanation figure")
