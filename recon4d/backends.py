"""Backend registry: each pipeline stage picks a named backend (DESIGN §2, §4).

Stages and the protocol a backend class implements (all take/return ``recon4d.types``):

    track        Tracker.track(clip, progress=None) -> Tracks2D
    recon        Reconstructor.reconstruct(clip, tracks, progress=None) -> Reconstruction
    orient       Orienter.orient(clip, tracks, recon, lifted, progress=None) -> Orientations

``tracks`` is given to the reconstructor so a weights-free backend can exclude moving
objects from camera-motion estimation (a learned one may ignore it); ``lifted`` is the
:class:`recon4d.lift.lifting.LiftResult` of the objects, which the motion orienter needs.
Each backend class has ``name`` and ``version`` attributes and a ``from_config(options:
dict, device: str)`` classmethod; learned ones list the weight components they need
(``recon4d.weights``, directories under ``$RECON4D_HOME/weights``), take a third argument
``weights_dir`` and set ``weights_sha256``. Classes are imported only when the backend is used, so the
registry costs nothing at start-up. ``auto`` picks the first learned backend whose weights
are present, else the weights-free one, and says which and why.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

from recon4d.errors import Recon4dError

STAGES = ("track", "recon", "orient")


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend lives and what it needs."""

    stage: str
    name: str
    target: str
    """``module:Class`` imported on first use."""
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
        module_name, _, class_name = self.target.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


_REGISTRY: dict[str, dict[str, BackendSpec]] = {stage: {} for stage in STAGES}


def config_from_options(config_cls, options: dict | None, backend: str, extra: tuple[str, ...] = (),
                        error: type[Recon4dError] = Recon4dError):
    """``config_cls(**options)`` for a backend's ``from_config``; option names that are not
    fields of the config dataclass (nor in ``extra``, names the caller handles itself) raise
    ``error`` naming them and listing the valid ones."""
    options = {k: v for k, v in dict(options or {}).items() if k not in extra}
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise error(f"unknown option(s) {unknown} for the {backend}; valid options are {sorted(names | set(extra))}.")
    return config_cls(**options)


def register_backend(stage: str, name: str, target: str, weights: tuple[str, ...] = (),
                     description: str = "") -> BackendSpec:
    """Add a backend to the registry (later registrations of the same name replace earlier)."""
    if stage not in _REGISTRY:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    spec = BackendSpec(stage, name, target, tuple(weights), description)
    _REGISTRY[stage][name] = spec
    return spec


def backend_names(stage: str) -> list[str]:
    return list(_REGISTRY[stage])


def get_backend(stage: str, name: str) -> BackendSpec:
    try:
        return _REGISTRY[stage][name]
    except KeyError:
        choices = ", ".join(["auto", *_REGISTRY.get(stage, {})])
        raise Recon4dError(f"there is no {stage} backend called {name!r}; choose one of: {choices}.") from None


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
                 description="weights-free: motion segmentation after camera-motion compensation, HOG person "
                             "detector for agents; or user boxes (--boxes)")
register_backend("recon", "classic", "recon4d.recon.classic.reconstructor:ClassicReconstructor",
                 description="weights-free: KLT tracks, essential matrix/PnP/bundle adjustment, ground-plane scale")
register_backend("orient", "motion", "recon4d.orient.motion:MotionOrienter",
                 description="weights-free: agents face their smoothed direction of travel")
register_backend("recon", "pi3", "recon4d.recon.pi3:Pi3Reconstructor", weights=("pi3",),
                 description="π³ feed-forward point maps and poses (in-repo network, public checkpoint)")
register_backend("track", "sam2", "recon4d.tracking.sam2.tracker:Sam2Tracker", weights=("grounding-dino", "sam2"),
                 description="GroundingDINO boxes from a category prompt (--objects), SAM2 video masks")
register_backend("orient", "orient-anything", "recon4d.orient.orient_anything.orienter:OrientAnythingOrienter",
                 weights=("orient-anything",),
                 description="Orient Anything (DINOv2-L + MLP head) on each agent's background-free crop")
