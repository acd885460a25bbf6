"""Local weight files of the learned backends (DESIGN §4).

Everything lives under ``$RECON4D_HOME/weights`` (``recon4d.settings.weights_dir()``), one
directory ("component") per downloadable artefact; a backend needs one or more of them:

    pi3/               recon  pi3              model.safetensors (public π³ checkpoint), optional config.json
    grounding-dino/    track  sam2             a transformers GroundingDINO model directory
    sam2/              track  sam2             a SAM2 checkpoint (*.pt), optional config.yaml
    orient-anything/   orient orient-anything  dino_weight.pt (whole model) + dinov2/config.json

Nothing downloads at run time. Users fetch the files themselves and copy them into place, by
hand or with ``recon4d weights import NAME PATH``, or ask for them explicitly with ``recon4d
weights download NAME`` (:mod:`recon4d.weights_download`), which fetches each component's
:class:`HubFile` list from the Hugging Face Hub; both check that the files load before placing
them.

Pinning: each Hub file names its repository, revision and, where known, its sha256. The
sha256 of the public checkpoints could not be looked up when the table was written (no
network), so they are ``None`` ("not pinned") and the revision is the repository's ``main``;
a download then checks the file against the sha256 the Hub itself states for large (LFS)
files and prints the digest it got, so it can be pinned here. A pinned sha256 that differs
from the downloaded file's always refuses the file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from recon4d.errors import OptionError, Recon4dError
from recon4d.outputs import atomic_output, write_text

@dataclass(frozen=True)
class HubFile:
    """One file of a component on the Hugging Face Hub."""

    repo: str
    """Repository id, e.g. ``yyfz233/Pi3``."""
    filename: str
    """Path of the file in the repository."""
    target: str
    """Path of the file inside the component's folder."""
    sha256: str | None = None
    """The file's pinned sha256 (None: not pinned; the Hub's own LFS sha256 is checked)."""
    revision: str = "main"
    """Branch, tag or commit of the repository."""


@dataclass(frozen=True)
class Component:
    """One downloadable artefact a learned backend loads: a directory under the weights root."""

    name: str
    """Its directory relative to the weights root (also its name on the command line)."""
    required: tuple[str, ...]
    """Glob patterns that must each match a file in the directory for it to count as present."""
    backends: tuple[str, ...]
    """``stage:backend`` names that need it."""
    checker: str
    """``module:function`` taking the component's directory; loads it on the CPU and raises
    :class:`recon4d.errors.Recon4dError` saying what is wrong, else returns a short summary."""
    source: str
    """Where users get it (a description; nothing is ever fetched)."""
    file_name: str | None = None
    """Name a single imported file is stored under (None: keep the file's own name)."""
    hub: tuple[HubFile, ...] = ()
    """The files ``recon4d weights download`` fetches (empty: not downloadable)."""

    def path(self, weights_dir: Path) -> Path:
        return Path(weights_dir) / self.name

    def missing(self, weights_dir: Path) -> list[str]:
        """The required patterns with no match (all of them when the directory is absent)."""
        return self.missing_in(self.path(weights_dir))

    def missing_in(self, path: Path) -> list[str]:
        """The required patterns with no match in the folder ``path``."""
        path = Path(path)
        if not path.is_dir():
            return list(self.required)
        return [pattern for pattern in self.required if not any(p.is_file() for p in path.glob(pattern))]

    def is_present(self, weights_dir: Path) -> bool:
        return not self.missing(weights_dir)

    def check(self, path: Path) -> str:
        """Load the files at ``path`` on the CPU; a file that cannot be loaded at all (truncated,
        not a checkpoint, wrong format) is a Recon4dError naming it, never a loader traceback."""
        module_name, _, function_name = self.checker.partition(":")
        checker = getattr(importlib.import_module(module_name), function_name)
        try:
            return checker(Path(path))
        except Recon4dError:
            raise
        except Exception as exc:  # loaders (safetensors, torch.load, transformers) raise many types
            message = " ".join(str(exc).split())[:300]
            raise Recon4dError(f"the {self.name} weights at {path} cannot be loaded ({type(exc).__name__}: "
                               f"{message}); the file is damaged, truncated or not a {self.name} checkpoint. "
                               f"Get it again ({self.source}).") from None


COMPONENTS: dict[str, Component] = {}


def register_component(name: str, required: tuple[str, ...], backends: tuple[str, ...], checker: str,
                       source: str, file_name: str | None = None, hub: tuple[HubFile, ...] = ()) -> Component:
    component = Component(name, tuple(required), tuple(backends), checker, source, file_name, tuple(hub))
    COMPONENTS[name] = component
    return component


def get_component(name: str) -> Component:
    try:
        return COMPONENTS[name]
    except KeyError:
        raise OptionError(f"there are no weights called {name!r}; known names: "
                           f"{', '.join(sorted(COMPONENTS))} (see `recon4d weights list`).") from None


def files_of(path: str | Path) -> list[Path]:
    """The files a path stands for: itself, or everything under a directory (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


def file_sha256_cached(path: str | Path) -> str:
    """sha256 of a file, remembered in ``$RECON4D_HOME/cache/sha256.json`` by absolute path,
    size and modification time, so checkpoints of several GB are read once, not on every
    ``recon4d process``. A cache that cannot be written (read-only home) is only skipped."""
    from recon4d.settings import recon4d_home
    from recon4d.store import file_sha256

    path = Path(path).resolve()
    stat = path.stat()
    cache_file = recon4d_home() / "cache" / "sha256.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(str(path))
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    digest = file_sha256(path)
    cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    try:
        write_text(cache_file, json.dumps(cache), what="hash cache")
    except Recon4dError:  # read-only home, or another process writing the cache right now
        pass
    return digest


def sha256_path(path: str | Path) -> str:
    """sha256 of a file's bytes; for a directory, of its files' relative paths and hashes in
    sorted order (so it changes when any file is renamed, added or edited). File hashes come
    from :func:`file_sha256_cached`."""
    path = Path(path)
    if path.is_file():
        return file_sha256_cached(path)
    if not path.is_dir():
        raise Recon4dError(f"{path} does not exist, so it has no checksum.")
    digest = hashlib.sha256()
    for file in files_of(path):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256_cached(file)}\n".encode())
    return digest.hexdigest()


def import_component(name: str, source: str | Path, weights_dir: Path, overwrite: bool = False) -> tuple[Path, str]:
    """Copy a user-downloaded file or directory into place and check that it loads.

    A directory is copied as the component's directory; a single file is copied into it
    (under ``file_name`` when the component names one). The copy is staged under a temporary
    name and renamed into place only after the check passes, so a bad file leaves nothing
    behind. Returns (installed directory, checker summary).
    """
    component = get_component(name)
    source = Path(source).expanduser()
    if not source.exists():
        raise Recon4dError(f"{source} does not exist; give the path of the downloaded {name} weights.")
    target = component.path(weights_dir)
    if target.exists() and not overwrite:
        raise Recon4dError(f"{target} already exists; pass --overwrite to replace it.")

    def fill(staged: Path) -> str:
        if source.is_dir():
            shutil.copytree(source, staged, dirs_exist_ok=True)
        else:
            shutil.copy2(source, staged / (component.file_name or source.name))
        missing = component.missing_in(staged)
        if missing:
            raise Recon4dError(f"{source} does not hold what {name} needs: no file matching "
                               f"{', '.join(missing)}. See `recon4d weights list` for the expected layout.")
        try:
            return component.check(staged)
        except Recon4dError as exc:  # name the user's file, not the temporary copy the check read
            copied = staged if source.is_dir() else staged / (component.file_name or source.name)
            raise Recon4dError(str(exc).replace(str(copied), str(source))) from None

    return target, install_component(component, weights_dir, fill, overwrite)


def install_component(component: Component, weights_dir: Path, fill, overwrite: bool = False) -> str:
    """Fill a temporary folder with ``fill(folder) -> summary`` (which checks it) and swap it into
    place as the component's folder; on any error nothing is placed and the old folder stays."""
    target = component.path(weights_dir)
    with atomic_output(target, "dir", overwrite=overwrite, replaceable=lambda _: True,
                       what=f"{component.name} weights folder") as staging:
        return fill(staging)


register_component(
    "pi3", ("model.safetensors",), ("recon:pi3",), "recon4d.recon.pi3:check_weights",
    "the public π³ checkpoint model.safetensors (Hugging Face yyfz233/Pi3)", file_name="model.safetensors",
    hub=(HubFile("yyfz233/Pi3", "model.safetensors", "model.safetensors"),))
register_component(
    "grounding-dino", ("config.json", "*.safetensors"), ("track:sam2",),
    "recon4d.tracking.sam2.grounding:check_grounding_dino_weights",
    "a transformers GroundingDINO directory such as IDEA-Research/grounding-dino-base (config, weights, "
    "tokenizer and preprocessor files)",
    hub=tuple(HubFile("IDEA-Research/grounding-dino-base", name, name) for name in (
        "config.json", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json", "vocab.txt")))
register_component(
    "sam2", ("*.pt",), ("track:sam2",), "recon4d.tracking.sam2.video:check_sam2_weights",
    "a SAM2/SAM2.1 checkpoint such as sam2.1_hiera_large.pt from facebookresearch/sam2; its config is "
    "the one bundled with the sam2 package, or config.yaml beside it",
    hub=(HubFile("facebook/sam2.1-hiera-large", "sam2.1_hiera_large.pt", "sam2.1_hiera_large.pt"),))
register_component(
    "orient-anything", ("*.pt", "dinov2/config.json"), ("orient:orient-anything",),
    "recon4d.orient.orient_anything.orienter:check_weights",
    "a directory with the Orient Anything checkpoint dino_weight.pt (croplargeEX2/ or ronormsigma1/ of "
    "Viglong/Orient-Anything) and facebook/dinov2-large's config.json as dinov2/config.json",
    hub=(HubFile("Viglong/Orient-Anything", "croplargeEX2/dino_weight.pt", "dino_weight.pt"),
         HubFile("facebook/dinov2-large", "config.json", "dinov2/config.json")))
