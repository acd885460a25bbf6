"""Run one bad-input case and judge its outcome: clean, traceback, hang, silent or wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.cases import Case
from tests.reliability.lab import Lab, Originals, temporaries

RUN_CASE = str(Path(__file__).with_name("run_case.py"))
VERDICTS = ("clean", "traceback", "hang", "silent", "wrong")


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    hung: bool
    crashed: bool
    before: dict
    after: dict

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def problems(self) -> list[str]:
        """What is wrong with the outcome (empty: clean)."""
        case, found = self.case, []
        if self.code != case.code:
            found.append(f"exit code {self.code}, expected {case.code}")
        if case.code != 0:
            if len(self.errors) != 1:
                found.append(f"{len(self.errors)} 'error:' lines on stderr, expected one paragraph")
            message = self.errors[0] if self.errors else ""
            for word in case.words:
                if not any(alternative in message for alternative in word.split("|")):
                    found.append(f"the message does not mention {word!r}")
        left = temporaries(self.after)
        if left:
            found.append(f"temporaries left: {left}")
        def kept(snapshot):  # a lock another process held during the case is its own business
            return {p: d for p, d in snapshot.items() if not p.endswith(".lock")}

        if not case.changes and kept(self.after) != kept(self.before):
            changed = sorted(set(kept(self.after).items()) ^ set(kept(self.before).items()))
            found.append(f"the folder changed: {[p for p, _ in changed][:6]}")
        return found

    @property
    def verdict(self) -> str:
        if self.hung:
            return "hang"
        if self.crashed or "Traceback (most recent call last)" in self.stdout + self.stderr:
            return "traceback"
        if not self.problems():
            return "clean"
        if self.code == 0 and self.case.code != 0:
            return "silent"
        return "wrong"

    def explain(self) -> str:
        return (f"{self.case.id}: {self.verdict}; " + "; ".join(self.problems())
                + f"\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}")


def _in_process(args: list[str], env: dict) -> tuple[int | None, str, str, bool]:
    from click.testing import CliRunner

    from recon4d.cli.main import main

    result = CliRunner().invoke(main, args, env=env or None, catch_exceptions=True)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    stderr = result.stderr
    if crashed:
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, result.stdout, stderr, crashed


def _in_subprocess(args: list[str], env: dict, cwd: Path, timeout_s: float) -> tuple[int | None, str, str, bool]:
    try:
        done = subprocess.run([sys.executable, RUN_CASE, *args], capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, **env}, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        return None, str(exc.stdout or ""), str(exc.stderr or ""), False
    return done.returncode, done.stdout, done.stderr, False


def run_case(case: Case, originals: Originals, folder: Path, timeout_s: float = 180.0,
             isolated: bool = False) -> Outcome:
    """Set the case up in ``folder``, run it (in a subprocess when the case or ``isolated`` asks)."""
    lab = Lab(folder, originals)
    try:
        if case.setup is not None:
            case.setup(lab)
        args = case.args(lab)
        before = lab.snapshot()
        started = time.monotonic()
        env = {**case.env, **lab.env}
        if isolated or case.run_in == "subprocess":
            code, stdout, stderr, crashed = _in_subprocess(args, env, folder, timeout_s)
            hung = code is None
        else:
            code, stdout, stderr, crashed = _in_process(args, env)
            hung = False
        seconds = time.monotonic() - started
    finally:
        lab.close()
    return Outcome(case, code, stdout, stderr, seconds, hung, crashed, before, lab.snapshot())
