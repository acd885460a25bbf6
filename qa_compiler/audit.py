"""Blind-solver audit: how well do text-only heuristics answer a question set without the video?

Each heuristic scores the four options of an item from their text alone and picks the best;
ties share the credit (a tie of k options containing the answer scores 1/k), so no
heuristic gains from a tie-breaking rule. A question set whose answers can only be found
from the video keeps every heuristic near chance (25%); one far from it (above *or* below:
an anti-heuristic leaks as much) is flagged.

Heuristics: longest / shortest option (characters), most / fewest phases, most frequent
phrase (the option whose phase sentences recur most across the options), most / least
similar to the others (token-multiset Jaccard), and always-A ... always-D.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from recon4d.qa_compiler.records import LETTERS, QARecord

CHANCE = 0.25
_PHASE_MARK = re.compile(r"\(\d+\)")
_TOKEN = re.compile(r"[a-z]+")


def option_phases(text: str) -> list[str]:
    """The phase sentences of an option: "(1) Front. (2) Behind." → ["Front.", "Behind."]."""
    parts = [p.strip() for p in _PHASE_MARK.split(text)]
    return [p for p in parts if p] or [text.strip()]


def _tokens(text: str) -> Counter:
    return Counter(_TOKEN.findall(text.lower()))


def _jaccard(a: Counter, b: Counter) -> float:
    union = sum((a | b).values())
    return sum((a & b).values()) / union if union else 1.0


def _similarity(options: list[str]) -> np.ndarray:
    """(4,) mean Jaccard similarity of each option's tokens to the other three options'."""
    tokens = [_tokens(o) for o in options]
    sim = np.array([[_jaccard(a, b) for b in tokens] for a in tokens])
    return (sim.sum(axis=1) - np.diag(sim)) / (len(options) - 1)


def _phrase_frequency(options: list[str]) -> np.ndarray:
    """(4,) mean, over an option's phase sentences, of how many options contain that sentence."""
    phrases = [option_phases(o) for o in options]
    df = Counter(p for ps in phrases for p in set(ps))
    return np.array([np.mean([df[p] for p in ps]) for ps in phrases])


_Scorer = Callable[[list[str]], np.ndarray]
HEURISTICS: dict[str, _Scorer] = {
    "longest": lambda o: np.array([len(x) for x in o], float),
    "shortest": lambda o: -np.array([len(x) for x in o], float),
    "most_phases": lambda o: np.array([len(option_phases(x)) for x in o], float),
    "fewest_phases": lambda o: -np.array([len(option_phases(x)) for x in o], float),
    "most_frequent_phrase": _phrase_frequency,
    "most_similar": _similarity,
    "least_similar": lambda o: -_similarity(o),
    **{f"always_{letter}": (lambda o, i=i: np.eye(4)[i]) for i, letter in enumerate(LETTERS)},
}
"""Name → scorer of the four options (higher is picked)."""


def _credit(scores: np.ndarray, answer: int) -> float:
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return 1.0 / len(best) if answer in best else 0.0


def _as_item(record) -> tuple[str, list[str], int]:
    """(type, four options, answer index) from a QARecord, a record dict or a DSR item."""
    if isinstance(record, QARecord):
        return record.qtype, list(record.options), LETTERS.index(record.answer)
    if isinstance(record, Mapping):
        if "options" in record:
            return str(record.get("qtype", record.get("type", ""))), list(record["options"]), LETTERS.index(record["answer"])
        if "Correct" in record:
            return str(record.get("Type", "")), [record[k] for k in LETTERS], LETTERS.index(record["Correct"])
    raise ValueError(f"cannot audit {type(record).__name__}: need a QARecord, a record dict or a DSR item")


def _heuristic_accuracy(items: list[tuple[str, list[str], int]]) -> dict[str, float]:
    totals = {name: 0.0 for name in HEURISTICS}
    for _, options, answer in items:
        for name, scorer in HEURISTICS.items():
            totals[name] += _credit(scorer(options), answer)
    return {name: total / len(items) for name, total in totals.items()}


def audit(records: Iterable, tolerance: float = 0.05) -> dict:
    """Accuracy of every blind heuristic on ``records`` (QARecords, record dicts or DSR items).

    A heuristic is flagged when |accuracy − 0.25| exceeds ``tolerance`` plus three binomial
    standard errors (so small sets are not flagged for noise). Returns
    ``{"n_items", "chance", "letters": {letter: share}, "heuristics": {name: accuracy},
    "flagged": [names], "worst": name, "by_type": {type: {"n_items", "heuristics"}}}``.
    """
    items = [_as_item(r) for r in records]
    if not items:
        raise ValueError("audit needs at least one question")
    n = len(items)
    accuracy = _heuristic_accuracy(items)
    limit = tolerance + 3 * math.sqrt(CHANCE * (1 - CHANCE) / n)
    letters = Counter(LETTERS[answer] for _, _, answer in items)
    by_type: dict[str, list] = {}
    for item in items:
        by_type.setdefault(item[0], []).append(item)
    return {
        "n_items": n,
        "chance": CHANCE,
        "letters": {letter: letters[letter] / n for letter in LETTERS},
        "heuristics": accuracy,
        "flagged": sorted(name for name, acc in accuracy.items() if abs(acc - CHANCE) > limit),
        "worst": max(accuracy, key=lambda name: abs(accuracy[name] - CHANCE)),
        "by_type": {
            qtype: {"n_items": len(group), "heuristics": _heuristic_accuracy(group)}
            for qtype, group in sorted(by_type.items())
        },
    }


def audit_file(path: str | Path, tolerance: float = 0.05) -> dict:
    """:func:`audit` of the questions in any export (JSONL, DSR JSON, Qwen JSON, parquet)."""
    from recon4d.qa_compiler.export import read_records

    return audit(read_records(path), tolerance=tolerance)
