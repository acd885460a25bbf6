"""Entry point of the ``recon4d`` command. Must stay light: no torch, no open3d at import."""

from __future__ import annotations

import sys

import click

from recon4d import __version__
from recon4d.cli.curate import curate_command
from recon4d.cli.inspect import inspect_command
from recon4d.cli.plot import plot_command
from recon4d.cli.process import process_command
from recon4d.cli.qa import qa_group
from recon4d.cli.qa_explain import explain_command
from recon4d.cli.report import report_command
from recon4d.cli.synth import synth_command
from recon4d.cli.view import view_command
from recon4d.cli.weights import weights_group
from recon4d.errors import Recon4dError


class _Group(click.Group):
    """Turns recon4d's own errors into a one-paragraph message and exit code 1, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Recon4dError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recon4d")
def main() -> None:
    """recon4d: turn videos into 4D scenes, compile DSR questions, train geometry-aware VLMs.

    \b
    recon4d synth -o demo --seed 0        # a synthetic video + its ground-truth scene
    recon4d inspect demo/scene.zarr       # what a scene store holds
    """


main.add_command(process_command)
main.add_command(curate_command)
main.add_command(synth_command)
main.add_command(inspect_command)
qa_group.add_command(explain_command)
main.add_command(qa_group)
main.add_command(plot_command)
main.add_command(report_command)
main.add_command(view_command)
main.add_command(weights_group)


if __name__ == "__main__":
    main()
