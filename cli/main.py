"""Entry point of the ``recon4d`` command. Must stay light: no torch, no open3d at import."""

from __future__ import annotations

import sys

import click

from recon4d import __version__
from recon4d.cli.batch import batch_command
from recon4d.cli.curate import curate_command
from recon4d.cli.eval import eval_command
from recon4d.cli.inspect import inspect_command
from recon4d.cli.plot import plot_command
from recon4d.cli.process import process_command
from recon4d.cli.qa import qa_group
from recon4d.cli.qa_explain import explain_command
from recon4d.cli.report import report_command
from recon4d.cli.synth import synth_command
from recon4d.cli.train import train_command
from recon4d.cli.view import view_command
from recon4d.cli.weights import weights_group
from recon4d.errors import OptionError, Recon4dError


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit codes, one rule for every command (README "Exit codes"): 2 when the command line itself
is wrong (unknown command or option, a missing argument, an option value of the wrong type, out
of range or naming nothing that exists, options that conflict); 1 when the command line is fine
but the run fails (an input file missing, unreadable or damaged, an output that cannot be
written, missing weights, a stage or a batch video that fails); 130 when interrupted."""


def _fail(message: str, code: int) -> None:
    click.secho(f"error: {' '.join(str(message).split())}", fg="red", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Every error becomes one paragraph on stderr with the exit code of the rule above, never a
    traceback: recon4d's own errors, click's usage errors, OS errors and interruptions."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            _fail(f"{exc} (see `{ctx.command_path} {ctx.invoked_subcommand or ''} --help`)".replace("  ", " "),
                  EXIT_USAGE)
        except Recon4dError as exc:
            _fail(str(exc), EXIT_FAILED)
        except MemoryError:
            _fail("out of memory: the run needs more memory than this machine has; process fewer frames (--frames), "
                  "a shorter interval (--start/--end) or a smaller video.", EXIT_FAILED)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc} (an operating-system error; check the path, its permissions and "
                  "free space).", EXIT_FAILED)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            _fail("interrupted.", EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            _fail("interrupted.", EXIT_INTERRUPTED)
        except click.ClickException as exc:
            where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "recon4d"
            hint = f" (see `{where} --help`)" if isinstance(exc, click.UsageError) else ""
            _fail(f"{where}: {exc.format_message()}{hint}", exc.exit_code)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recon4d")
def main() -> None:
    """recon4d: turn videos into 4D scenes, compile DSR questions, train geometry-aware VLMs.

    \b
    recon4d synth -o demo --seed 0        # a synthetic video + its ground-truth scene
    recon4d inspect demo/scene.zarr       # what a scene store holds
    recon4d qa demo/scene.zarr -o qa.jsonl && recon4d train configs/tiny.yaml --data qa.jsonl -o runs/tiny
    recon4d eval runs/tiny/model qa.jsonl # accuracy per question type
    """


main.add_command(process_command)
main.add_command(batch_command)
main.add_command(curate_command)
main.add_command(synth_command)
main.add_command(inspect_command)
qa_group.add_command(explain_command)
main.add_command(qa_group)
main.add_command(plot_command)
main.add_command(report_command)
main.add_command(view_command)
main.add_command(weights_group)
main.add_command(train_command)
main.add_command(eval_command)


if __name__ == "__main__":
    main()
