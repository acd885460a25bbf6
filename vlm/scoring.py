"""Scoring multiple-choice answers: the reference letter extraction, a robust one, accuracy per type.

The reference (VLMEvalKit ``extract_characters_regex``, VLM_FACTS §1.8) removes a list of answer
prefixes verbatim (two pairs of them joined by missing commas in its source), returns nothing for
more than 10 words without A–D, and otherwise the first capital A–D anywhere, so "Based on the
video, C" scores as B (the B of "Based"). :func:`extract_letter` keeps its intent and fixes that:

1. a reply that is only a letter ("B", "b", "(B)", "B.") is that letter;
2. after an answer prefix (the reference's list, split where commas were missing, any case:
   "Answer: (B)", "the answer is b") the letter that follows;
3. otherwise stand-alone capitals A–D ("A" followed by a lower-case word is the article); one
   distinct letter is the answer, a reply that opens with "B." / "(B)" is B, and several distinct
   letters ("A and C") are no answer;
4. no letter: a reply that quotes exactly one option's text is that option;
5. anything else (refusals, empty replies) is no answer and scores wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from recon4d.qa_compiler.records import LETTERS, QUESTION_TYPES

NON_TEMPLATE = "non-template"
TYPE_ORDER = QUESTION_TYPES + (NON_TEMPLATE,)
"""Rows of the per-type table: the 12 templated types, then non-template questions."""

REFERENCE_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                      "The best option isThe correct option is", "Best answer:Best option:", "Answer:", "Option:")
"""The reference's prefix list as it behaves (the missing commas join two pairs)."""
ANSWER_PREFIXES = ("the best answer is", "the correct answer is", "the answer is", "the answer",
                   "the best option is", "the correct option is", "best answer:", "best option:", "answer:",
                   "option:", "answer is", "option is", "correct answer:", "final answer:")
"""Prefixes the robust extraction looks for (case-insensitive), longest first when matching."""

_PREFIX = re.compile(
    r"(?i:" + "|".join(re.escape(p) for p in sorted(ANSWER_PREFIXES, key=len, reverse=True)) + r")"
    r"\s*[:\-]?\s*[\(\[\"'*]*\s*(?:([A-D])(?![A-Za-z0-9])|([a-d])(?![A-Za-z0-9]|\s+[a-z]))")
_ALONE = re.compile(r"^[\(\[\"'*\s]*([A-Da-d])[\)\]\"'*.:,!\s]*$")
_OPENS = re.compile(r"^[\(\[\"'*\s]*([A-D])[\)\].:]")
_CAPITAL = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9'’])")
_ARTICLE = re.compile(r"\s+(?!is\b|and\b|or\b)[a-z]")


def reference_letter(text: str) -> str:
    """The reference's extraction: "" or the first capital A–D after removing its prefixes."""
    s = text.strip()
    for prefix in REFERENCE_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    match = re.search("[ABCD]", s)
    return "" if match is None else match[0]


@dataclass(frozen=True)
class Extraction:
    """The letter a reply gives, and how it was found."""

    letter: str
    """"A"–"D", or "" when the reply gives no single answer."""
    rule: str
    """"letter", "prefix", "capital", "opening", "option text", or why none: "empty",
    "several letters", "no letter"."""


def _normalise(text: str) -> str:
    return " ".join(text.replace("**", "").split())


def extract_letter(text: str, options: Iterable[str] | None = None) -> Extraction:
    """The robust extraction described in the module docstring."""
    s = _normalise(text or "")
    if not s:
        return Extraction("", "empty")
    alone = _ALONE.match(s)
    if alone:
        return Extraction(alone[1].upper(), "letter")
    prefixed = _PREFIX.search(s)
    if prefixed:
        return Extraction((prefixed[1] or prefixed[2]).upper(), "prefix")
    capitals = [m for m in _CAPITAL.finditer(s)
                if not (m[1] == "A" and _ARTICLE.match(s, m.end()))]
    letters = {m[1] for m in capitals}
    if len(letters) == 1:
        return Extraction(letters.pop(), "capital")
    opening = _OPENS.match(s)
    if opening:
        return Extraction(opening[1], "opening")
    if len(letters) > 1:
        return Extraction("", "several letters")
    if options is not None:
        reply = s.lower().strip(" .!")
        quoted = [letter for letter, option in zip(LETTERS, options)
                  if option and _normalise(option).lower().strip(" .!") in reply]
        if len(quoted) == 1:
            return Extraction(quoted[0], "option text")
    return Extraction("", "no letter")


@dataclass(frozen=True)
class Prediction:
    """One scored item."""

    id: str
    """Item id."""
    qtype: str
    """Question type (a templated type or "non-template")."""
    answer: str
    """Correct letter."""
    response: str
    """The model's reply."""
    letter: str
    """Letter extracted by :func:`extract_letter` ("" = none)."""
    rule: str
    """How it was extracted."""
    reference_letter: str
    """Letter the reference extraction gives."""

    @property
    def correct(self) -> bool:
        return self.letter == self.answer

    def to_json(self) -> dict:
        return {"id": self.id, "type": self.qtype, "answer": self.answer, "response": self.response,
                "letter": self.letter, "rule": self.rule, "reference_letter": self.reference_letter,
                "correct": self.correct}


def predict(item_id: str, qtype: str | None, answer: str, response: str, options=None) -> Prediction:
    """Score one reply."""
    extraction = extract_letter(response, options)
    return Prediction(item_id, qtype or NON_TEMPLATE, answer, response, extraction.letter, extraction.rule,
                      reference_letter(response))


def _accuracy(rows: list[Prediction]) -> dict:
    n = len(rows)
    correct = sum(p.correct for p in rows)
    reference = sum(p.reference_letter == p.answer for p in rows)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None,
            "reference_extraction_accuracy": reference / n if n else None,
            "no_answer": sum(p.letter == "" for p in rows)}


def score(predictions: list[Prediction]) -> dict:
    """Accuracy overall, per type (TYPE_ORDER first, then others), the mean over the types present, the
    accuracy under the reference extraction, and how answers were extracted."""
    by_type: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        by_type.setdefault(prediction.qtype, []).append(prediction)
    order = [t for t in TYPE_ORDER if t in by_type] + sorted(t for t in by_type if t not in TYPE_ORDER)
    per_type = {qtype: _accuracy(by_type[qtype]) for qtype in order}
    overall = _accuracy(predictions)
    rules: dict[str, int] = {}
    for prediction in predictions:
        rules[prediction.rule] = rules.get(prediction.rule, 0) + 1
    means = [row["accuracy"] for row in per_type.values()]
    return {"n_items": overall["n"], "accuracy": overall["accuracy"],
            "mean_type_accuracy": sum(means) / len(means) if means else None,
            "reference_extraction_accuracy": overall["reference_extraction_accuracy"],
            "no_answer": overall["no_answer"], "per_type": per_type, "extraction": rules}


def format_table(scores: dict, title: str = "") -> str:
    """The per-type table: type, n, accuracy, accuracy under the reference extraction; then the averages."""
    def pct(value) -> str:
        return "   -  " if value is None else f"{100 * value:5.1f}%"

    lines = ([title] if title else []) + [f"{'type':<16} {'n':>6} {'accuracy':>9} {'ref. extr.':>11}"]
    for qtype, row in scores["per_type"].items():
        lines.append(f"{qtype:<16} {row['n']:>6} {pct(row['accuracy']):>9} {pct(row['reference_extraction_accuracy']):>11}")
    lines.append(f"{'all (items)':<16} {scores['n_items']:>6} {pct(scores['accuracy']):>9} "
                 f"{pct(scores['reference_extraction_accuracy']):>11}")
    lines.append(f"{'mean of types':<16} {len(scores['per_type']):>6} {pct(scores['mean_type_accuracy']):>9}")
    return "\n".join(lines)
