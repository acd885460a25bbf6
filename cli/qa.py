"""`recon4d qa`: compile scene stores into DSR questions; `recon4d qa audit`: blind-solver audit."""

from __future__ import annotations

import json
from pathlib import Path

import click

_SUFFIX_FORMATS = {".jsonl": "jsonl", ".parquet": "parquet", ".json": "dsr-json"}
MAX_PER_SCENE = 10_000
"""Cap of -n and --llm-n: a scene of a few dozen frames holds far fewer distinct questions."""
_FORMATS = ("dsr-json", "parquet", "qwen", "jsonl")


class _QAGroup(click.Group):
    """``recon4d qa SCENES...`` is short for ``recon4d qa compile SCENES...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["compile", *args]
        return super().parse_args(ctx, args)


@click.group("qa", cls=_QAGroup, context_settings={"help_option_names": ["-h", "--help"]})
def qa_group() -> None:
    """Compile scene stores into DSR multiple-choice questions.

    \b
    recon4d qa scenes/*.zarr -o qa.jsonl            # same as `recon4d qa compile ...`
    recon4d qa audit qa.jsonl                       # text-only heuristics should score ~25%
    """


def _split_types(_ctx, _param, value: str | None):
    if not value:
        return None
    return tuple(t.strip() for t in value.split(",") if t.strip())


@qa_group.command("compile")
@click.argument("scenes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path),
              help="Output file (.jsonl, .json or .parquet).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
              help="Export format; default from the suffix of OUT (.jsonl→jsonl, .parquet→parquet, .json→dsr-json).")
@click.option("-n", "--per-scene", "n_per_scene", default=10, show_default=True, type=click.IntRange(0, MAX_PER_SCENE),
              help=f"Questions per scene (at most {MAX_PER_SCENE}).")
@click.option("--types", callback=_split_types, default=None,
              help="Comma-separated question types (default: all 12, e.g. abs_dis,rel_dir,...).")
@click.option("--profile", type=click.Choice(["dsr", "paper"]), default="dsr", show_default=True,
              help="Answer rules: dsr (the public DSR generator) or paper (Table 8 as written).")
@click.option("--distractors", type=click.Choice(["random", "hard", "mixed"]), default="mixed", show_default=True,
              help="Wrong options: random sequences (reference), perturbed answers (hard) or both.")
@click.option("--min-margin", default=0.0, show_default=True, type=click.FloatRange(0, 1e6),
              help="Drop questions whose answer lies closer than this (relative) to a rule threshold.")
@click.option("--min-quality", default=0.5, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Quality gate: use only objects whose quality score (recon4d inspect) is at least this, and only "
                   "the frames their quality record and the camera trust; what is skipped is counted in the report.")
@click.option("--no-quality-gate", is_flag=True,
              help="Compile from every object and frame, trusted or not (scenes without a quality record, such as "
                   "ground truth, are never gated).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
              help="Seed; the same seed gives byte-identical files.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes compiling stores side by side (default: one per CPU core, at most one per "
                   "store, one for small jobs); the output is the same for any number.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Also write the attempt/failure report as JSON here.")
@click.option("--llm-url", default=None, help="OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) for "
              "non-template questions.")
@click.option("--llm-model", default="gpt-4o", show_default=True, help="Model name sent to --llm-url.")
@click.option("--llm-n", default=1, show_default=True, type=click.IntRange(0, MAX_PER_SCENE),
              help="Non-template questions per scene (with --llm-url).")
@click.option("--llm-timeout", default=60.0, show_default=True, type=click.FloatRange(0, 3600, min_open=True),
              help="Seconds one LLM request may take in total.")
@click.option("--llm-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the API key.")
def compile_command(scenes, out, fmt, n_per_scene, types, profile, distractors, min_margin, min_quality,
                    no_quality_gate, seed, workers, report_path, llm_url, llm_model, llm_n, llm_timeout, llm_key_env):
    """Compile SCENES (scene stores) into questions with procedural answers, written to OUT.

    With --llm-url, non-template questions are asked afterwards; a failing or slow server is
    reported with its reasons and never costs the templated questions.
    """
    from recon4d.outputs import check_output, companions, json_text
    from recon4d.qa_compiler.compiler import CompileConfig, compile_scenes
    from recon4d.qa_compiler.export import export

    fmt = fmt or _SUFFIX_FORMATS.get(out.suffix)
    if fmt is None:
        raise click.BadParameter(f"cannot tell the format from {out.name!r}; pass --format", param_hint="--format")
    kwargs = dict(n_per_scene=n_per_scene, profile=profile, distractors=distractors, min_margin=min_margin, seed=seed,
                  min_quality=None if no_quality_gate else min_quality)
    if types:
        kwargs["types"] = types
    try:
        config = CompileConfig(**kwargs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    llm_config = _llm_config(llm_url, llm_model, llm_key_env, llm_timeout) if llm_url else None
    config_path = out.with_name(out.name + ".config.json")
    for path, what in ((out, "question file"), (config_path, "QA config"), (report_path, "QA report")):
        if path is not None:
            check_output(path, "file", what=what)
    with _scene_progress(len(scenes)) as progress:
        records, report = compile_scenes(scenes, config, progress=progress, workers=workers)
    summary = {"config": config.to_json(), "report": report.to_json()}
    if llm_config is not None:
        llm_records, llm_report = _llm_questions(scenes, llm_config, llm_n, seed)
        records.extend(llm_records)
        summary["llm"] = llm_report
    resolved = {**config.to_json(), "format": fmt, "scenes": [str(s) for s in scenes], "llm_url": llm_url,
                "llm_model": llm_model if llm_url else None}
    with companions((config_path, json_text(resolved), "QA config"),
                    (report_path, json_text(summary) if report_path else None, "QA report")):
        export(records, out, fmt)
    click.echo(report.summary())
    if llm_config is not None:
        llm = summary["llm"]
        click.echo(f"llm: {llm['generated']} questions, {llm['rejected_replies']} rejected replies, failures "
                   f"{llm['failures'] or 'none'}")
        for failure in llm["failure_reasons"]:
            click.secho(f"warning: llm ({failure['count']}x): {failure['reason']}", fg="yellow", err=True)
    click.echo(f"wrote {len(records)} questions to {out} ({fmt}); config in {config_path.name}")


def _llm_config(url, model, key_env, timeout_s):
    """The LLM settings, checked before anything is compiled (a bad URL is a usage error)."""
    from recon4d.errors import OptionError
    from recon4d.qa_compiler.llm import LLMConfig
    from recon4d.settings import environ

    try:
        return LLMConfig(url=url, model=model, api_key_env=key_env, timeout_s=timeout_s).with_key_from(environ())
    except ValueError as exc:
        raise OptionError(f"--llm-url: {exc}") from None


def _llm_questions(scenes, config, n, seed):
    """Non-template questions for every scene; the LLM stage never raises, so the templated
    questions compiled before it are always written."""
    from recon4d.errors import Recon4dError
    from recon4d.qa_compiler.compiler import default_video_id
    from recon4d.qa_compiler.nontemplate import LLMReport, compile_llm_questions
    from recon4d.store import open_scene

    records, total = [], LLMReport()
    for path in scenes:
        try:
            scene = open_scene(path)
            video_id = default_video_id(scene, fallback=Path(path).name.removesuffix(".zarr"))
            made, report = compile_llm_questions(scene, config, n, seed=seed, video_id=video_id)
        except Recon4dError as exc:
            total.fail("error", f"{path}: {exc}")
            continue
        except Exception as exc:  # a bug in the optional LLM stage must not cost the templated questions
            total.fail("internal_error", f"{path}: internal error in the LLM stage ({type(exc).__name__}: {exc})")
            continue
        records.extend(made)
        total.merge(report)
    return records, total.to_json()


def _scene_progress(total: int):
    from recon4d.cli.progress import progress_callback

    class _Adapter:
        def __init__(self):
            self._context = progress_callback("compiling")
            self._done = 0

        def __enter__(self):
            self._callback = self._context.__enter__()
            self._callback(0, total)
            return self

        def __call__(self, _video_id, _report):
            self._done += 1
            self._callback(self._done, total)

        def __exit__(self, *exc):
            return self._context.__exit__(*exc)

    return _Adapter()


@qa_group.command("audit")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--tolerance", default=0.05, show_default=True, type=click.FloatRange(0, 1),
              help="Flag heuristics whose accuracy is farther than this (plus 3 standard errors) from 25%.")
@click.option("--strict", is_flag=True, help="Exit with code 1 when any heuristic is flagged.")
def audit_command(file, tolerance, strict):
    """Score text-only heuristics (longest option, most phases, ...) on a compiled FILE.

    A set whose answers cannot be guessed without the video keeps every heuristic near 25%.
    """
    from recon4d.errors import Recon4dError
    from recon4d.qa_compiler.audit import audit_file

    if not file.is_file():
        raise Recon4dError(f"{file} {'is a folder' if file.is_dir() else 'does not exist'}; pass a question file "
                           "written by `recon4d qa` (.jsonl, .json or .parquet).")
    try:
        result = audit_file(file, tolerance=tolerance)
    except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:  # pyarrow's errors derive from these
        detail = " ".join(str(exc).split())[:300]
        raise Recon4dError(f"{file} cannot be audited: {detail}. Pass a question file written by `recon4d qa` "
                           "(.jsonl, .json or .parquet) that holds at least one question.") from None
    click.echo(json.dumps(result, indent=2))
    if strict and result.get("flagged"):
        from recon4d.errors import Recon4dError

        raise Recon4dError(f"{file}: {len(result['flagged'])} text-only heuristic(s) are flagged "
                           f"({', '.join(map(str, result['flagged']))}); the answers can be guessed without the video. "
                           "Recompile with --distractors mixed or hard.")

