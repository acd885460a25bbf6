"""Run every bad-input case (each in its own interpreter, with a timeout) and print the outcomes:
one line per case, then the count line ``tried / clean / traceback / hang / silent / wrong``.

    .venv/bin/python -m tests.reliability.report [--timeout 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from tests.reliability.cases import CASES
from tests.reliability.harness import VERDICTS, run_case
from tests.reliability.lab import build_originals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        originals = build_originals(Path(tmp) / "originals")
        outcomes = [run_case(case, originals, Path(tmp) / case.id, args.timeout, isolated=True) for case in CASES]
    counts = Counter(o.verdict for o in outcomes)
    rows = [{"id": o.case.id, "class": o.case.klass, "expected": o.case.code, "exit": o.code,
             "verdict": o.verdict, "seconds": round(o.seconds, 1),
             "message": (o.errors[0][len("error: "):] if o.errors else "")[:140]} for o in outcomes]
    line = " / ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    if args.json:
        print(json.dumps({"tried": len(outcomes), **{v: counts.get(v, 0) for v in VERDICTS}, "cases": rows}, indent=2))
        return
    for row in rows:
        print(f"{row['verdict']:<9} {row['id']:<38} {row['class']:<11} exit {row['exit']} (rule {row['expected']})  "
              f"{row['message']}")
    print(f"tried {len(outcomes)}: {line}")


if __name__ == "__main__":
    main()
