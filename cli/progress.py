"""A rich progress bar usable as a ``progress(done, total)`` callback."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress_callback(description: str):
    """Yield ``callback(done, total)`` that drives one rich progress bar (on stderr)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=False, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)

        def callback(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield callback
