"""`recon4d qa explain`: a picture of the evidence behind one compiled question."""

from __future__ import annotations

from pathlib import Path

import click


def _record_video(record, qa_file: Path) -> Path | None:
    """The record's video path; a relative one that does not exist is tried beside QA_FILE."""
    if not record.video_path:
        return None
    video = Path(record.video_path)
    if not video.exists() and not video.is_absolute() and (qa_file.parent / video).exists():
        return qa_file.parent / video
    return video


def _find_store(record, video: Path | None) -> Path:
    """The store beside the record's video whose content digest matches the record's."""
    from recon4d.errors import Recon4dError
    from recon4d.viz.explain import ExplainError
    from recon4d.qa_compiler.compiler import scene_digest
    from recon4d.store import open_scene

    if video is None:
        raise ExplainError("the record has no video path to look for its scene store next to; pass --scene.")
    folder, stem = video.parent, video.stem
    preferred = [folder / "scene.zarr", folder / f"{stem}.zarr"]
    candidates = [p for p in preferred if p.is_dir()]
    candidates += sorted(p for p in folder.glob("*.zarr") if p.is_dir() and p not in candidates)
    for path in candidates:
        try:
            scene = open_scene(path)
        except Recon4dError:
            continue
        if not record.store_sha256 or scene_digest(scene) == record.store_sha256:
            return path
    raise ExplainError(f"no scene store matching the record was found next to its video {record.video_path} "
                       f"(looked at {[str(p) for p in candidates] or 'no *.zarr folders'}); pass --scene.")


@click.command("explain")
@click.argument("qa_file", type=click.Path(path_type=Path))
@click.option("--id", "index", required=True, type=int, help="Index of the record in QA_FILE (0 = first line).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output PNG.")
@click.option("--scene", "scene_path", default=None, type=click.Path(path_type=Path),
              help="Scene store the record was compiled from (default: found next to its video).")
@click.option("--video", "video_path", default=None, type=click.Path(path_type=Path),
              help="Source video (default: the record's video path).")
def explain_command(qa_file: Path, index: int, out: Path, scene_path: Path | None, video_path: Path | None) -> None:
    """Draw why record --id of QA_FILE (a JSONL export) has its answer: frames, quantities, thresholds."""
    from recon4d.viz.explain import ExplainError, explain_record
    from recon4d.qa_compiler.compiler import scene_digest
    from recon4d.qa_compiler.export import read_jsonl
    from recon4d.store import open_scene

    if not qa_file.is_file():
        raise ExplainError(f"{qa_file} {'is a folder' if qa_file.is_dir() else 'does not exist'}; pass a .jsonl written "
                           "by `recon4d qa SCENE -o qa.jsonl`.")
    try:
        records = read_jsonl(qa_file)
    except ValueError as exc:
        raise ExplainError(f"{exc}. Pass a .jsonl written by `recon4d qa SCENE -o qa.jsonl`.") from None
    if not 0 <= index < len(records):
        raise ExplainError(f"--id {index} is out of range: {qa_file} holds {len(records)} records (0..{len(records) - 1}).")
    record = records[index]
    record_video = _record_video(record, qa_file)
    scene_path = scene_path or _find_store(record, record_video)
    scene = open_scene(scene_path)
    if record.store_sha256 and scene_digest(scene) != record.store_sha256:
        raise ExplainError(f"{scene_path} is not the scene record {index} was compiled from (content digest "
                           "differs); pass the matching --scene.")
    explain_record(record, scene, video_path or record_video, out)
    click.echo(f"wrote {out} (record {index}: {record.qtype}, answer {record.answer}, margin {record.margin:.3g})")
