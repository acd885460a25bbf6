"""Every bad input of tests/reliability/cases.py ends cleanly: the exit code of the rule, one
paragraph naming the file or option and what is wrong, no traceback, no hang, nothing partial
left and nothing already there lost (the case folder is byte-identical afterwards)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.reliability.cases import CASES
from tests.reliability.harness import run_case
from tests.reliability.lab import build_originals

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def originals(tmp_path_factory):
    return build_originals(tmp_path_factory.mktemp("reliability"))


def test_the_suite_covers_every_class_with_at_least_60_cases():
    classes = {case.klass for case in CASES}
    assert len(CASES) >= 60 and len({case.id for case in CASES}) == len(CASES)
    assert {"usage", "store", "output", "llm", "qa-file", "weights", "boxes", "video", "view", "limits", "backend",
            "batch", "concurrency"} <= classes


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_ends_cleanly(case, originals, tmp_path):
    missing = [name for name in case.needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs {missing}")
    outcome = run_case(case, originals, tmp_path / "case")
    assert outcome.verdict == "clean", outcome.explain()
