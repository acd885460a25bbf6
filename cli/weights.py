"""`recon4d weights`: what the learned backends load, whether it is in place, and putting it there."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _root(weights_dir: Path | None) -> Path:
    from recon4d.settings import weights_dir as default_weights_dir

    return Path(weights_dir) if weights_dir is not None else default_weights_dir()


_DIR_OPTION = click.option("--weights-dir", type=click.Path(path_type=Path), default=None,
                           help="Weights root (default $RECON4D_HOME/weights, RECON4D_HOME defaults to "
                                "~/.cache/recon4d).")


@click.group("weights")
def weights_group() -> None:
    """List, verify and import the local weight files of the learned backends.

    \b
    Nothing is downloaded at run time; fetch the files on request, or yourself:
    recon4d weights download pi3    # from the Hugging Face Hub, checked, then placed
    recon4d weights import pi3 ~/Downloads/model.safetensors
    recon4d weights list            # what goes where, present or not, sha256
    recon4d weights verify          # load every present component on the CPU
    """


@weights_group.command("list")
@_DIR_OPTION
@click.option("--no-hash", is_flag=True, help="Skip the sha256 of each file (large files take seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def list_command(weights_dir, no_hash, as_json):
    """Each backend's expected files under the weights root, present or not, with sha256."""
    from recon4d.backends import STAGES, backend_names, get_backend
    from recon4d.weights import COMPONENTS, file_sha256_cached, files_of

    root = _root(weights_dir)
    report = {"weights_dir": str(root), "components": [], "backends": []}
    for component in COMPONENTS.values():
        path = component.path(root)
        files = [{"path": str(f.relative_to(root)), "bytes": f.stat().st_size,
                  "sha256": None if no_hash else file_sha256_cached(f)} for f in files_of(path)]
        report["components"].append({"name": component.name, "path": str(path), "present": component.is_present(root),
                                     "missing": component.missing(root), "required": list(component.required),
                                     "used_by": list(component.backends), "source": component.source,
                                     "files": files})
    for stage in STAGES:
        for name in backend_names(stage):
            spec = get_backend(stage, name)
            report["backends"].append({"stage": stage, "name": name, "weights": list(spec.weights),
                                       "usable": not spec.missing_weights(root)})
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"weights root: {root}")
    for entry in report["components"]:
        state = "present" if entry["present"] else f"MISSING ({', '.join(entry['missing'])})"
        click.echo(f"\n{entry['name']}/  {state}  — used by {', '.join(entry['used_by'])}")
        click.echo(f"  needs: {', '.join(entry['required'])}; get: {entry['source']}")
        for f in entry["files"]:
            digest = f" sha256 {f['sha256']}" if f["sha256"] else ""
            click.echo(f"  {f['path']}  {f['bytes'] / 1e6:.1f} MB{digest}")
    click.echo("\nbackends:")
    for b in report["backends"]:
        needs = ", ".join(b["weights"]) if b["weights"] else "no weights"
        click.echo(f"  {b['stage']:<7}{b['name']:<17}{'usable' if b['usable'] else 'weights missing':<17}({needs})")


@weights_group.command("verify")
@click.argument("names", nargs=-1)
@_DIR_OPTION
def verify_command(names, weights_dir):
    """Load each present component (or the NAMES given) on the CPU and say whether it works.

    Exits with status 1 when a named component is missing or any check fails.
    """
    from recon4d.errors import Recon4dError
    from recon4d.weights import COMPONENTS, get_component

    root = _root(weights_dir)
    components = [get_component(n) for n in names] if names else list(COMPONENTS.values())
    failed: list[str] = []
    checked = 0
    for component in components:
        missing = component.missing(root)
        if missing:
            if names:
                click.echo(f"{component.name}: MISSING under {component.path(root)} ({', '.join(missing)})")
                failed.append(component.name)
            else:
                click.echo(f"{component.name}: not installed (skipped)")
            continue
        try:
            summary = component.check(component.path(root))
        except Recon4dError as exc:
            click.echo(f"{component.name}: FAILED — {exc}")
            failed.append(component.name)
        else:
            click.echo(f"{component.name}: ok — {summary}")
        checked += 1
    if not names and checked == 0:
        click.echo(f"no weights are installed under {root}; the weights-free backends will be used.")
    if failed:
        raise Recon4dError(f"{', '.join(failed)}: missing or failing its load check under {root} (see above); "
                           "import or download it again (`recon4d weights import NAME PATH` or `recon4d weights "
                           "download NAME --overwrite`).")


@weights_group.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@_DIR_OPTION
@click.option("--overwrite", is_flag=True, help="Replace weights already in place.")
def import_command(name, path, weights_dir, overwrite):
    """Copy downloaded weights at PATH into place as NAME (see `recon4d weights list`), checking they load.

    PATH is the file or directory you downloaded; nothing is left in place if the check fails.
    """
    from recon4d.weights import import_component

    target, summary = import_component(name, path, _root(weights_dir), overwrite=overwrite)
    click.echo(f"installed {target}: {summary}")


@weights_group.command("download")
@click.argument("names", nargs=-1, required=True)
@_DIR_OPTION
@click.option("--revision", default=None, help="Branch, tag or commit of every repository instead of the pinned "
              "one (the pinned sha256 then no longer applies; the Hub's own sha256 is checked).")
@click.option("--overwrite", is_flag=True, help="Replace weights already in place.")
def download_command(names, weights_dir, revision, overwrite):
    """Fetch NAMES (see `recon4d weights list`) from the Hugging Face Hub and install them.

    Each file comes from the repository and revision in recon4d's table (HF_ENDPOINT selects
    another Hub); an interrupted download continues where it stopped on the next try. A file
    whose sha256 differs from the pinned one is refused, then the same load check as `weights
    import` runs; nothing is placed unless everything passes.
    """
    from recon4d.cli.progress import byte_progress
    from recon4d.settings import hub_endpoint, recon4d_home
    from recon4d.weights import get_component
    from recon4d.weights_download import download_component

    components = [get_component(name) for name in names]  # unknown names fail before any download
    root = _root(weights_dir)
    with byte_progress() as progress:
        for component in components:
            target, summary, fetched = download_component(component.name, root, recon4d_home(), hub_endpoint(),
                                                          revision=revision, overwrite=overwrite, progress=progress)
            for item in fetched:
                note = {"pinned": "matches the pinned sha256", "hub": "matches the Hub's sha256 (not pinned)",
                        "none": "not pinned; the Hub states no sha256 for it"}[item.checked_against]
                click.echo(f"  {item.hub.repo}/{item.hub.filename}@{revision or item.hub.revision}: sha256 "
                           f"{item.sha256} ({note})")
            click.echo(f"installed {target}: {summary}")
