"""Static matplotlib pictures of a scene: trajectories seen from an observer, speeds, distances.

The top-down view is drawn in the observer's FLU frame (x forward, y left, z up; DESIGN §2)
the way a person standing there would sketch it: forward points up the page and left points
to the left, so the horizontal axis carries −y (metres to the observer's right). Plotting +y
to the right would mirror every trajectory.

matplotlib is optional (``recon4d[viz]``) and imported inside the functions, with the Agg
backend, so importing this module costs nothing and works without a display.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon4d.optional import require
from recon4d.errors import Recon4dError
from recon4d.outputs import check_output, write_bytes
from recon4d.geometry import agent_observer_pose, camera_observer_pose, to_observer_frame
from recon4d.types import Scene

CAMERA = "camera"
# Table 8: distances within 0.8–1.2 of their reference count as "nearly constant".
RATIO_BAND = (0.8, 1.2)


class PlotError(Recon4dError, ValueError):
    """A plot was asked for with arguments the scene cannot satisfy (unknown id, frame...)."""


@dataclass(frozen=True, eq=False)
class SceneLayout:
    """What :func:`plot_scene` drew, in the observer's FLU frame (for checks and reuse).

    ids:            (K,) object ids, rows of the arrays below.
    labels:         K strings "id category".
    objects_flu:    (K, T, 3) object centres, forward/left/up metres, NaN when not visible.
    camera_flu:     (T, 3) camera centre in the same frame.
    topdown_xy:     (K, T, 2) what the top-down panel plots: (−left, forward) = (right, forward).
    camera_topdown: (T, 2) the camera path as plotted there.
    observer:       "camera" or the observer object's id as a string.
    frame:          scene frame index of the frozen observer.
    pair:           (a, b) entity labels of the distance panel, or None when there was none.
    distance:       (T,) distance between the pair (NaN where one is not visible), or None.
    """

    ids: np.ndarray
    labels: tuple[str, ...]
    objects_flu: np.ndarray
    camera_flu: np.ndarray
    topdown_xy: np.ndarray
    camera_topdown: np.ndarray
    observer: str
    frame: int
    pair: tuple[str, str] | None
    distance: np.ndarray | None


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (no display needed)."""
    matplotlib = require("matplotlib", extra="viz", purpose="plots and reports")
    matplotlib.use("Agg", force=True)
    return require("matplotlib.pyplot", extra="viz", purpose="plots and reports")


def figure_png(figure, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    plt = pyplot()
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def topdown_xy(points_flu: np.ndarray) -> np.ndarray:
    """FLU points (..., 3) → top-down page coordinates (..., 2) = (right, forward) = (−y, x)."""
    points_flu = np.asarray(points_flu, np.float64)
    return np.stack([-points_flu[..., 1], points_flu[..., 0]], axis=-1)


def _entity_label(scene: Scene, entity) -> str:
    """Normalise an entity given as "camera", an id or an id string to "camera" / "ID"."""
    text = str(entity).strip()
    if text.lower() == CAMERA:
        return CAMERA
    try:
        object_id = int(text)
    except ValueError:
        raise PlotError(f"{entity!r} is neither 'camera' nor an object id; ids are {scene.ids.tolist()}.") from None
    if object_id not in scene.ids:
        raise PlotError(f"no object with id {object_id}; ids are {scene.ids.tolist()}.")
    return str(object_id)


def entity_positions(scene: Scene, entity: str) -> np.ndarray:
    """(T, 3) world positions of "camera" or an object id string (NaN when not visible)."""
    if entity == CAMERA:
        return scene.cam_to_world[:, :3, 3]
    return scene.center_world[scene.object_index(int(entity))]


def observer_pose(scene: Scene, observer: str = CAMERA, frame: int = 0) -> np.ndarray:
    """(4, 4) observer_to_world of the camera or an agent at scene frame ``frame``.

    Raises PlotError for a frame outside the scene, an unknown id, a non-agent observer or an
    agent that is not visible (no centre or orientation) at that frame.
    """
    if not -scene.n_frames <= frame < scene.n_frames or scene.n_frames == 0:
        raise PlotError(f"frame {frame} is outside the scene's {scene.n_frames} frames (0..{scene.n_frames - 1}).")
    observer = _entity_label(scene, observer)
    if observer == CAMERA:
        return camera_observer_pose(scene.cam_to_world[frame])
    row = scene.object_index(int(observer))
    if not scene.is_agent[row]:
        raise PlotError(f"object {observer} ({scene.categories[row]}) is not an agent, so it has no "
                        "orientation to look from; pick an agent or 'camera'.")
    pose = agent_observer_pose(scene.cam_to_world[frame], scene.center_world[row, frame], scene.orientation[row, frame])
    if not np.isfinite(pose).all():
        visible = np.flatnonzero(scene.visible[row] & np.isfinite(scene.orientation[row]).all(-1))
        raise PlotError(f"object {observer} has no centre or orientation at frame {frame}; frames where it "
                        f"has both: {visible.tolist()[:20]}{' ...' if len(visible) > 20 else ''}.")
    return pose


def step_speeds(positions: np.ndarray, timestamps_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed between consecutive frames in metres per second.

    positions: (..., T, 3); timestamps_s: (T,). Returns the step mid-times (T−1,) and speeds
    (..., T−1), NaN where either end is NaN.
    """
    steps = np.linalg.norm(np.diff(np.asarray(positions, np.float64), axis=-2), axis=-1)
    dt = np.diff(timestamps_s)
    return (timestamps_s[1:] + timestamps_s[:-1]) / 2.0, steps / dt


def scene_layout(scene: Scene, observer: str = CAMERA, frame: int = 0, pair=None) -> SceneLayout:
    """Compute what :func:`plot_scene` draws without drawing it.

    pair: two entities ("camera" or object ids) for the distance panel; default the first
    two objects (or the camera and the only object); None-equivalent when there are none.
    """
    pose = observer_pose(scene, observer, frame)
    objects = to_observer_frame(scene.center_world, pose)
    camera = to_observer_frame(scene.cam_to_world[None, :, :3, 3], pose)[0]
    if pair is None:
        entities = [str(int(i)) for i in scene.ids[:2]]
        pair = tuple(([CAMERA] + entities)[-2:]) if entities else None
    elif len(pair) != 2:
        raise PlotError(f"pair must name two entities, got {pair!r}.")
    distance = None
    if pair is not None:
        pair = (_entity_label(scene, pair[0]), _entity_label(scene, pair[1]))
        if pair[0] == pair[1]:
            raise PlotError(f"pair must name two different entities, got {pair[0]} twice.")
        distance = np.linalg.norm(entity_positions(scene, pair[0]) - entity_positions(scene, pair[1]), axis=-1)
    return SceneLayout(
        ids=scene.ids.copy(),
        labels=tuple(f"{int(i)} {c}" for i, c in zip(scene.ids, scene.categories)),
        objects_flu=objects,
        camera_flu=camera,
        topdown_xy=topdown_xy(objects),
        camera_topdown=topdown_xy(camera),
        observer=_entity_label(scene, observer),
        frame=int(frame) % max(scene.n_frames, 1),
        pair=pair,
        distance=distance,
    )


def _endpoints(values: np.ndarray) -> tuple[int, int] | None:
    finite = np.flatnonzero(np.isfinite(values).all(axis=-1))
    return (int(finite[0]), int(finite[-1])) if finite.size else None


def _draw_path(axes, xy: np.ndarray, colour, label: str) -> None:
    """A trajectory with a circle at its first and a square at its last finite point."""
    axes.plot(xy[:, 0], xy[:, 1], "-", color=colour, lw=1.6, label=label)
    ends = _endpoints(xy)
    if ends is None:
        return
    first, last = ends
    axes.plot(*xy[first], "o", color=colour, ms=6)
    axes.plot(*xy[last], "s", color=colour, ms=6)
    axes.annotate(label, xy[first], textcoords="offset points", xytext=(4, 4), fontsize=8, color=colour)


def _observer_title(layout: SceneLayout, scene: Scene) -> str:
    who = "the camera" if layout.observer == CAMERA else f"object {layout.observer}"
    return f"{who} at frame {layout.frame} (t = {scene.timestamps_s[layout.frame]:.2f} s)"


def _draw_topdown(axes, scene: Scene, layout: SceneLayout, colours) -> None:
    _draw_path(axes, layout.camera_topdown, "black", "camera")
    for k, label in enumerate(layout.labels):
        _draw_path(axes, layout.topdown_xy[k], colours[k], label)
    # The observer itself: origin, looking up the page.
    axes.plot(0.0, 0.0, "^", color="crimson", ms=11, zorder=5, label="observer (faces up)")
    axes.axhline(0.0, color="0.85", lw=0.8, zorder=0)
    axes.axvline(0.0, color="0.85", lw=0.8, zorder=0)
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel("← left    right →   (−y, m)")
    axes.set_ylabel("forward (x, m)")
    axes.set_title(f"top-down, FLU frame of {_observer_title(layout, scene)}", fontsize=9)
    axes.legend(fontsize=7, loc="best")


def _draw_side(axes, layout: SceneLayout, colours) -> None:
    axes.plot(layout.camera_flu[:, 0], layout.camera_flu[:, 2], "-", color="black", lw=1.6, label="camera")
    for k, label in enumerate(layout.labels):
        axes.plot(layout.objects_flu[k, :, 0], layout.objects_flu[k, :, 2], "-", color=colours[k], lw=1.6, label=label)
        ends = _endpoints(layout.objects_flu[k])
        if ends:
            axes.plot(*layout.objects_flu[k, ends[0], [0, 2]], "o", color=colours[k], ms=5)
            axes.plot(*layout.objects_flu[k, ends[1], [0, 2]], "s", color=colours[k], ms=5)
    axes.plot(0.0, 0.0, ">", color="crimson", ms=10, zorder=5)
    axes.set_xlabel("forward (x, m)")
    axes.set_ylabel("up (z, m)")
    axes.set_title("side view (x forward → right, z up)", fontsize=9)


def _draw_speeds(axes, scene: Scene, layout: SceneLayout, colours) -> None:
    if scene.n_frames < 2:
        axes.text(0.5, 0.5, "one frame: no speeds", ha="center", transform=axes.transAxes)
        return
    mid_s, camera_speed = step_speeds(scene.cam_to_world[:, :3, 3], scene.timestamps_s)
    axes.plot(mid_s, camera_speed, color="black", lw=1.2, label="camera")
    _, speeds = step_speeds(scene.center_world, scene.timestamps_s)
    for k, label in enumerate(layout.labels):
        axes.plot(mid_s, speeds[k], color=colours[k], lw=1.4, label=label)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("speed (m/s)")
    axes.set_title("speed between frames", fontsize=9)
    axes.legend(fontsize=7, loc="best")


def _draw_distance(axes, scene: Scene, layout: SceneLayout) -> None:
    if layout.pair is None:
        axes.text(0.5, 0.5, "no objects: no distance", ha="center", transform=axes.transAxes)
        axes.set_axis_off()
        return
    times, distance = scene.timestamps_s, layout.distance
    axes.plot(times, distance, color="tab:blue", lw=1.6, label=f"|{layout.pair[0]} − {layout.pair[1]}|")
    finite = np.flatnonzero(np.isfinite(distance))
    if finite.size:
        first = distance[finite[0]]
        low, high = RATIO_BAND
        axes.axhspan(low * first, high * first, color="tab:green", alpha=0.15,
                     label=f"{low:g}–{high:g} × first value (nearly constant)")
        axes.axhline(first, color="tab:green", lw=0.8, ls="--")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("distance (m)")
    axes.set_title(f"distance {layout.pair[0]} ↔ {layout.pair[1]}", fontsize=9)
    axes.legend(fontsize=7, loc="best")


def scene_figure(scene: Scene, observer: str = CAMERA, frame: int = 0, pair=None):
    """The 2×2 scene figure (top-down, side, speeds, pair distance) and its :class:`SceneLayout`."""
    layout = scene_layout(scene, observer, frame, pair)
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(12, 9))
    from recon4d.viz.viewer import object_palette

    colours = [tuple(c) for c in object_palette(scene.n_objects)]  # the viewer's colours, object for object
    _draw_topdown(axes[0, 0], scene, layout, colours)
    _draw_side(axes[0, 1], layout, colours)
    _draw_speeds(axes[1, 0], scene, layout, colours)
    _draw_distance(axes[1, 1], scene, layout)
    source = scene.source.path if scene.source else "scene"
    figure.suptitle(f"{Path(source).name}: {scene.n_objects} objects, {scene.n_frames} frames, "
                    f"{scene.duration_s:.2f} s", fontsize=11)
    figure.tight_layout()
    return figure, layout


def plot_scene(scene: Scene, out_png: str | Path, observer: str = CAMERA, frame: int = 0, pair=None,
               dpi: int = 100) -> SceneLayout:
    """Draw the scene figure and write it to ``out_png`` (1200×900 px at the default dpi).

    observer: "camera" or an agent's id; the observer frame is frozen at scene frame ``frame``.
    pair: two entities ("camera" or ids) for the distance panel, default the first two objects.
    Returns the :class:`SceneLayout` that was drawn.
    """
    check_output(out_png, "file", what="plot")
    figure, layout = scene_figure(scene, observer, frame, pair)
    write_bytes(out_png, figure_png(figure, dpi=dpi), what="plot")
    return layout
