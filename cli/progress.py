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


@contextmanager
def lazy_progress_callback(description: str):
    """Like :func:`progress_callback`, but the bar appears at the first call, so errors found
    while a command validates its input are printed without an empty bar above them."""
    state: dict = {}

    def callback(done: int, total: int) -> None:
        if "bar" not in state:
            state["context"] = progress_callback(description)
            state["bar"] = state["context"].__enter__()
        state["bar"](done, total)

    try:
        yield callback
    finally:
        if "context" in state:
            state["context"].__exit__(None, None, None)


@contextmanager
def byte_progress():
    """``progress(label, total_bytes)`` → a callback ``(done, total)``: one rich bar per file, in bytes."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        tasks: dict[str, object] = {}

        def factory(label: str, total: int | None):
            task = tasks.get(label)
            if task is None:
                task = tasks[label] = bar.add_task(label, total=total)

            def callback(done: int, total_now: int | None) -> None:
                bar.update(task, completed=done, total=total_now)

            return callback

        yield factory
