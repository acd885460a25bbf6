"""`recon4d weights download`: fetch a component's files from the Hugging Face Hub, on request only.

    for each HubFile of the component:
        hf_hub_download(repo, filename, revision) into $RECON4D_HOME/downloads/<repo>/   (resumable)
        sha256 of the file == pinned sha256 (or, unpinned, the Hub's own LFS sha256)      else: refused
    install_component: files linked into a temporary folder, the component's load check,
                       the folder swapped into $RECON4D_HOME/weights/<name>                else: nothing placed

Downloads go through ``huggingface_hub`` (the Hub's file API at ``settings.hub_endpoint()``,
``HF_ENDPOINT``): an interrupted download keeps its partial file and continues from where it
stopped on the next call (an HTTP Range request). A file whose sha256 does not match is deleted
from the download folder and nothing is placed; the check after it is the one ``weights
import`` runs. Nothing in recon4d calls this implicitly.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recon4d.errors import Recon4dError
from recon4d.optional import require
from recon4d.weights import Component, HubFile, get_component, install_component

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

ProgressFactory = Callable[[str, int | None], Callable[[int, int | None], None] | None]
"""``progress(label, total_bytes)`` → a callback ``(bytes_done, total)`` for one file, or None."""


class DownloadError(Recon4dError):
    """A weights download failed: the Hub cannot be reached, a file is missing there, or its
    sha256 is not the expected one."""


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded file and how it was checked."""

    hub: HubFile
    """Where it came from."""
    path: Path
    """The file in the download folder."""
    sha256: str
    """Its sha256."""
    checked_against: str
    """"pinned", "hub" (the Hub's LFS sha256) or "none" (a small file the Hub states no sha256 for)."""


def download_folder(home: Path, hub: HubFile, revision: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "__", f"{hub.repo}@{revision}")
    return Path(home) / "downloads" / safe


def _progress_class(label: str, progress: ProgressFactory | None):
    """A tqdm class for huggingface_hub that reports bytes to our progress callback instead."""
    from tqdm.auto import tqdm

    class _Bytes(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._callback = progress(label, self.total) if progress else None
            if self._callback:
                self._callback(self._done, self.total)

        def update(self, n=1):
            self._done += int(n or 0)
            if self._callback:
                self._callback(self._done, self.total)

    return _Bytes


def _partial_name(hub: HubFile, etag: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", hub.filename)
    return f"{safe}.{re.sub(r'[^0-9a-zA-Z]', '', etag)[:16] or 'noetag'}.part"


def fetch_file(hub: HubFile, home: Path, endpoint: str, revision: str | None = None,
               progress: ProgressFactory | None = None) -> FetchedFile:
    """Download one Hub file, continuing a partial download, and check its sha256.

    The file's metadata (size, ETag, download location) comes from the Hub's HEAD answer; the
    bytes go to ``<download folder>/<name>.<etag>.part``, opened at its end and continued with an
    HTTP Range request by ``huggingface_hub.file_download.http_get`` (which also resumes after
    transient network errors within a call), then renamed. The part file is keyed by the ETag,
    so a file that changed upstream never continues a stale prefix. ``revision`` overrides the
    table's; the pinned sha256 then no longer applies and the Hub's LFS sha256 is checked. A
    mismatch deletes the file and raises DownloadError.
    """
    from recon4d.outputs import output_lock
    from recon4d.store import file_sha256

    hf = require("huggingface_hub", extra="pi3", purpose="recon4d weights download")
    file_download = require("huggingface_hub.file_download", extra="pi3", purpose="recon4d weights download")
    rev = revision or hub.revision
    folder = download_folder(home, hub, rev)
    label = f"{hub.repo}/{hub.filename}"
    final = folder / hub.filename
    try:
        metadata = hf.get_hf_file_metadata(hf.hf_hub_url(hub.repo, hub.filename, revision=rev, endpoint=endpoint),
                                           endpoint=endpoint, retry_on_errors=True)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # huggingface_hub and httpx raise many types (not found, HTTP, connection)
        raise DownloadError(_hub_failure(exc, hub, rev, endpoint)) from None
    etag = (metadata.etag or "").strip('"').lower()
    with output_lock(final):
        partial = folder / _partial_name(hub, etag)
        for stale in folder.glob(f"{re.sub(r'[^A-Za-z0-9._-]+', '_', hub.filename)}.*.part"):
            if stale != partial:  # the file changed upstream since this partial download began
                stale.unlink(missing_ok=True)
        if not (final.is_file() and metadata.size is not None and final.stat().st_size == metadata.size):
            try:
                with open(partial, "r+b" if partial.exists() else "wb") as handle:
                    handle.seek(0, os.SEEK_END)
                    file_download.http_get(metadata.location, handle, resume_size=handle.tell(),
                                           headers=hf.utils.build_hf_headers(), expected_size=metadata.size,
                                           tqdm_class=_progress_class(label, progress))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                raise DownloadError(_hub_failure(exc, hub, rev, endpoint)) from None
            os.replace(partial, final)
        digest = file_sha256(final)
        pinned = hub.sha256 if revision in (None, hub.revision) else None
        if pinned:
            expected, source = pinned, "pinned"
        else:
            expected, source = (etag, "hub") if _SHA256.match(etag) else (None, "none")
        if expected is not None and digest != expected:
            final.unlink(missing_ok=True)
            which = "pinned in recon4d/weights.py" if source == "pinned" else "the Hub states for it"
            raise DownloadError(f"{label} at revision {rev} has sha256 {digest}, not {expected} ({which}); the file is "
                                "corrupted or was changed upstream. It was deleted and nothing was placed; run the "
                                "download again, and if it repeats, check the repository.")
    return FetchedFile(hub=hub, path=final, sha256=digest, checked_against=source)


def _hub_failure(exc: Exception, hub: HubFile, revision: str, endpoint: str) -> str:
    kind = type(exc).__name__
    text = " ".join(str(exc).split())[:300]
    what = {
        "RepositoryNotFoundError": f"the repository {hub.repo} does not exist on {endpoint} (or needs a login)",
        "RevisionNotFoundError": f"the repository {hub.repo} has no revision {revision!r}",
        "EntryNotFoundError": f"the repository {hub.repo} has no file {hub.filename} at {revision}",
        "RemoteEntryNotFoundError": f"the repository {hub.repo} has no file {hub.filename} at {revision}",
    }.get(kind, f"{hub.repo}/{hub.filename} could not be downloaded from {endpoint}")
    return (f"{what} ({kind}: {text}). A partial download is kept and continues on the next try; check the "
            "network (or HF_ENDPOINT), the revision (--revision) and your Hub login (HF_TOKEN), or fetch the files "
            "yourself and use `recon4d weights import`.")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def download_component(name: str, weights_dir: Path, home: Path, endpoint: str, revision: str | None = None,
                       overwrite: bool = False, progress: ProgressFactory | None = None) -> tuple[Path, str, list]:
    """Fetch every Hub file of component ``name``, check it, and install it like ``weights import``.

    Returns (installed folder, load-check summary, [FetchedFile]). Raises DownloadError or the
    check's Recon4dError; on any error nothing is placed and an earlier install is untouched.
    The download folder is removed once the component is installed.
    """
    component: Component = get_component(name)
    if not component.hub:
        raise DownloadError(f"the {name} weights have no Hub source in recon4d's table; fetch them yourself "
                            f"({component.source}) and use `recon4d weights import {name} PATH`.")
    target = component.path(weights_dir)
    if target.exists() and not overwrite:
        raise DownloadError(f"{target} already exists; pass --overwrite to replace it.")
    fetched = [fetch_file(hub, home, endpoint, revision, progress) for hub in component.hub]

    def fill(staged: Path) -> str:
        for item in fetched:
            _link_or_copy(item.path, staged / item.hub.target)
        missing = component.missing_in(staged)
        if missing:
            raise DownloadError(f"the files downloaded for {name} do not hold what it needs: no file matching "
                                f"{', '.join(missing)}. The component table in recon4d/weights.py is wrong.")
        return component.check(staged)

    summary = install_component(component, weights_dir, fill, overwrite)
    for folder in {download_folder(home, item.hub, revision or item.hub.revision) for item in fetched}:
        shutil.rmtree(folder, ignore_errors=True)
    return target, summary, fetched
