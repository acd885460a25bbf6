"""Backend contract and registry: each pipeline stage picks a named backend (DESIGN §2, §4).

The contract is written once, here, as :class:`typing.Protocol` classes (all data types from
:mod:`recon4d.types`):

    track   Tracker.track(clip, progress=None) -> Tracks2D
    recon   Reconstructor.reconstruct(clip, tracks, progress=None) -> Reconstruction
    orient  Orienter.orient(clip, tracks, recon, lifted, progress=None) -> Orientations

``tracks`` is given to the reconstructor so a weights-free backend can exclude moving
objects from camera-motion estimation (a learned one may ignore it); ``lifted`` is the
:class:`recon4d.types.LiftResult` of the objects, which the motion orienter needs.

Streaming (STYLE §9): a reconstructor should return its dense geometry as
:class:`recon4d.types.FrameSequence` point maps and confidences, computed one frame at a time
when read, so that memory does not grow with the clip's length; poses and intrinsics are
small and come whole. Consumers (lifting, the store) read ``local_points[t]`` frame by frame
and never materialise the sequence. A tracker may return masks as a lazy array too
(e.g. bit-packed); readers index them as ``masks[k, t]`` or ``masks[:, t]``.

Each backend class has ``name`` and ``version`` attributes and a ``from_config(options: dict,
device: str)`` classmethod; learned ones list the weight components they need
(``recon4d.weights``, directories under ``$RECON4D_HOME/weights``), take a third argument
``weights_dir`` and set ``weights_sha256``. A registry entry (:class:`BackendSpec`) names the
backend's class and its typed config dataclass; ``-O STAGE.KEY=VALUE`` options are parsed
against that config's field types (:mod:`recon4d.options`) before any stage runs. Classes are
imported only when the backend is used, so the registry costs nothing at start-up. ``auto``
picks the first learned backend whose weights are present, else the weights-free one, and
says which and why.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from recon4d.errors import OptionError, Recon4dError
from recon4d.options import build_config
from recon4d.types import Clip, LiftResult, Orientations, ProgressFn, Reconstruction, Tracks2D

STAGES = ("track", "recon", "orient")


@runtime_checkable
class Tracker(Protocol):
    """Finds objects in a clip and follows them: boxes (source pixels), visibility, masks."""

    name: str
    version: str

    def track(self, clip: Clip, progress: ProgressFn | None = None) -> Tracks2D:
        """Tracks2D over the clip's T frames; masks (K, T, H, W) at the clip's frame size or None."""


@runtime_checkable
class Reconstructor(Protocol):
    """Camera poses and dense geometry of a clip (world = the backend's own frame)."""

    name: str
    version: str

    def reconstruct(self, clip: Clip, tracks: Tracks2D | None = None,
                    progress: ProgressFn | None = None) -> Reconstruction:
        """Reconstruction with cam_to_world (T, 4, 4), local_points (T, H, W, 3) and conf (T, H, W)
        (preferably :class:`~recon4d.types.FrameSequence`), intrinsics and the geometry's unit."""


@runtime_checkable
class Orienter(Protocol):
    """Per-agent orientation relative to the camera of each frame (DESIGN §2)."""

    name: str
    version: str

    def orient(self, clip: Clip, tracks: Tracks2D, recon: Reconstruction, lifted: LiftResult,
               progress: ProgressFn | None = None) -> Orientations:
        """Orientations (K, T, 3) deg and conf (K, T); NaN for non-agents and unknown frames."""


PROTOCOLS = {"track": Tracker, "recon": Reconstructor, "orient": Orienter}
"""The protocol a backend of each stage implements."""


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend lives and what it needs."""

    stage: str
    name: str
    target: str
    """``module:Class`` imported on first use."""
    config: str
    """``module:Class`` of the backend's typed config dataclass (``-O`` options are its fields)."""
    extra_options: tuple[str, ...] = ()
    """Option names ``from_config`` takes besides the config's fields (e.g. ``boxes``)."""
    weights: tuple[str, ...] = ()
    """Names of the weight components (``recon4d.weights.COMPONENTS``, directories under the
    weights root) the backend loads; empty = weights-free."""
    description: str = ""

    @property
    def needs_weights(self) -> bool:
        return bool(self.weights)

    def missing_weights(self, weights_dir: Path) -> list[str]:
        """One line per missing component: its directory and the files it lacks."""
        from recon4d.weights import COMPONENTS

        missing = []
        for component in (COMPONENTS[name] for name in self.weights):
            lacking = component.missing(weights_dir)
            if lacking:
                missing.append(f"{component.path(weights_dir)}/ (needs {', '.join(lacking)}; {component.source})")
        return missing

    def load_class(self):
        return _load(self.target)

    def load_config_class(self):
        return _load(self.config)

    def build_config(self, options: dict | None):
        """The backend's config from ``options`` (strings parsed against the field types);
        raises :class:`recon4d.options.OptionError` naming a wrong key or value."""
        return build_config(self.load_config_class(), options, f"the {self.name} {_ROLE[self.stage]}",
                            extra=self.extra_options, prefix=f"{self.stage}.")


def _load(target: str):
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


_ROLE = {"track": "tracker", "recon": "reconstructor", "orient": "orienter"}


_REGISTRY: dict[str, dict[str, BackendSpec]] = {stage: {} for stage in STAGES}


def config_from_options(config_cls, options: dict | None, backend: str, extra: tuple[str, ...] = (),
                        error: type[Recon4dError] = Recon4dError):
    """``config_cls(**options)`` for a backend's ``from_config``, each value parsed against its
    field's type (:mod:`recon4d.options`); names that are not fields of the config dataclass
    (nor in ``extra``, names the caller handles itself) and values that do not parse raise
    ``error`` naming them."""
    return build_config(config_cls, options, f"the {backend}", extra=extra, error=error)


def register_backend(stage: str, name: str, target: str, config: str, weights: tuple[str, ...] = (),
                     description: str = "", extra_options: tuple[str, ...] = ()) -> BackendSpec:
    """Add a backend to the registry (later registrations of the same name replace earlier)."""
    if stage not in _REGISTRY:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    spec = BackendSpec(stage, name, target, config, tuple(extra_options), tuple(weights), description)
    _REGISTRY[stage][name] = spec
    return spec


def backend_names(stage: str) -> list[str]:
    return list(_REGISTRY[stage])


def get_backend(stage: str, name: str) -> BackendSpec:
    try:
        return _REGISTRY[stage][name]
    except KeyError:
        choices = ", ".join(["auto", *_REGISTRY.get(stage, {})])
        raise OptionError(f"there is no {stage} backend called {name!r}; choose one of: {choices}.") from None


@dataclass(frozen=True)
class Resolved:
    spec: BackendSpec
    reason: str


def resolve_backend(stage: str, name: str, weights_dir: Path) -> Resolved:
    """Turn ``auto`` (or an explicit name) into a backend whose requirements are met.

    An explicit learned backend with missing weights raises a one-paragraph error naming the
    file, where it goes, and the weights-free alternative.
    """
    if name != "auto":
        spec = get_backend(stage, name)
        missing = spec.missing_weights(weights_dir)
        if missing:
            free = [s.name for s in _REGISTRY[stage].values() if not s.needs_weights]
            raise Recon4dError(
                f"the {stage} backend {name!r} needs weights that are not installed: "
                f"{'; '.join(missing)}. Nothing is downloaded at run time: fetch the files yourself and "
                f"put them there (or run `recon4d weights import NAME PATH`), or choose the weights-free backend with "
                f"--{_FLAG[stage]} {free[0] if free else 'classic'}."
            )
        return Resolved(spec, "chosen explicitly")
    learned = [s for s in _REGISTRY[stage].values() if s.needs_weights]
    for spec in learned:
        if not spec.missing_weights(weights_dir):
            return Resolved(spec, f"weights found under {weights_dir}")
    free = [s for s in _REGISTRY[stage].values() if not s.needs_weights]
    if not free:
        raise Recon4dError(f"no {stage} backend is usable: none is weights-free and no weights are installed.")
    why = (f"no weights for {', '.join(s.name for s in learned)} under {weights_dir}"
           if learned else "the only kind available")
    return Resolved(free[0], f"weights-free ({why})")


_FLAG = {"track": "tracker", "recon": "recon", "orient": "orient"}


register_backend("track", "classic", "recon4d.tracking.classic.tracker:ClassicTracker",
                 "recon4d.tracking.classic.config:ClassicTrackerConfig", extra_options=("boxes",),
                 description="weights-free: motion segmentation after camera-motion compensation, HOG person "
                             "detector for agents; or user boxes (--boxes)")
register_backend("recon", "classic", "recon4d.recon.classic.reconstructor:ClassicReconstructor",
                 "recon4d.recon.classic.config:ClassicConfig",
                 description="weights-free: KLT tracks, essential matrix/PnP/bundle adjustment, ground-plane scale")
register_backend("orient", "motion", "recon4d.orient.motion:MotionOrienter",
                 "recon4d.orient.motion:MotionOrienterConfig",
                 description="weights-free: agents face their smoothed direction of travel")
register_backend("recon", "pi3", "recon4d.recon.pi3:Pi3Reconstructor", "recon4d.recon.pi3:Pi3BackendConfig",
                 weights=("pi3",),
                 description="π³ feed-forward point maps and poses (in-repo network, public checkpoint)")
register_backend("track", "sam2", "recon4d.tracking.sam2.tracker:Sam2Tracker",
                 "recon4d.tracking.sam2.tracker:Sam2TrackerConfig", weights=("grounding-dino", "sam2"),
                 description="GroundingDINO boxes from a category prompt (--objects), SAM2 video masks")
register_backend("orient", "orient-anything", "recon4d.orient.orient_anything.orienter:OrientAnythingOrienter",
                 "recon4d.orient.orient_anything.orienter:OrientAnythingConfig", weights=("orient-anything",),
                 description="Orient Anything (DINOv2-L + MLP head) on each agent's background-free crop")
