"""Letter extraction (reference and robust) and accuracy per type, on hand-written replies."""

from __future__ import annotations

import json

import pytest

from recon4d.vlm.scoring import TYPE_ORDER, extract_letter, format_table, predict, reference_letter, score

OPTIONS = ("(1) Left.", "(1) Right.", "(1) Front.", "(1) Behind.")

# reply, robust letter, rule, reference letter
CASES = [
    ("B", "B", "letter", "B"),
    ("b", "B", "letter", ""),
    ("(C)", "C", "letter", "C"),
    ("D.", "D", "letter", "D"),
    ("  A \n", "A", "letter", "A"),
    ("**B**", "B", "letter", "B"),
    ("Answer: (B)", "B", "prefix", "B"),
    ("answer: b", "B", "prefix", ""),
    ("ANSWER: C", "C", "prefix", "A"),  # the reference's first capital is the A of ANSWER
    ("The answer is C.", "C", "prefix", "C"),
    ("The best answer is D", "D", "prefix", "D"),
    ("The correct option is A", "A", "prefix", "A"),
    ("The best option is B", "B", "prefix", "B"),  # the reference's joined prefix never matches
    ("Best option: C", "C", "prefix", "B"),  # joined prefix: the B of "Best" is taken
    ("Option: d", "D", "prefix", ""),
    ("Based on the video, the answer is C.", "C", "prefix", "B"),  # B of "Based"
    ("A man walks left, so the answer is B", "B", "prefix", "A"),
    ("Based on the video, C", "C", "capital", "B"),
    ("A is correct", "A", "capital", "A"),
    ("B. Keep nearly constant", "B", "capital", "B"),
    ("C) Right", "C", "capital", "C"),
    ("B. Because C moves away", "B", "opening", "B"),
    ("A and C", "", "several letters", "A"),  # multi-letter answers score wrong
    ("A, C", "", "several letters", "A"),
    ("I think it is B, not A", "", "several letters", "B"),
    ("The person moves (1) Left.", "A", "option text", ""),
    ("I cannot determine the answer from the video.", "", "no letter", ""),  # refusal
    ("Sorry, I can't help with that.", "", "no letter", ""),
    ("The answer is a person walking", "", "no letter", ""),
    ("Due to the low resolution I cannot tell which option is right.", "", "no letter", "D"),  # D of "Due"
    ("", "", "empty", ""),
]


@pytest.mark.parametrize("reply, letter, rule, reference", CASES)
def test_extraction(reply, letter, rule, reference):
    found = extract_letter(reply, OPTIONS)
    assert (found.letter, found.rule) == (letter, rule)
    assert reference_letter(reply) == reference


def test_reference_rule_for_long_replies_without_a_letter():
    long = "the object keeps moving towards the left side of the frame for the whole clip and then stops"
    assert len(long.split()) > 10 and reference_letter(long) == ""
    assert reference_letter("The answer B") == "B"


def test_scores_per_type_and_the_table():
    rows = [predict("q0", "abs_dis", "A", "A"), predict("q1", "abs_dis", "B", "The answer is C"),
            predict("q2", "rel_dir", "C", "Based on the video, C"), predict("q3", None, "D", "D and A"),
            predict("q4", "rel_dir", "B", "I can't tell")]
    scores = score(rows)
    assert scores["n_items"] == 5 and scores["accuracy"] == pytest.approx(2 / 5)
    assert list(scores["per_type"]) == ["rel_dir", "abs_dis", "non-template"]  # TYPE_ORDER
    assert scores["per_type"]["abs_dis"] == {"n": 2, "correct": 1, "accuracy": 0.5,
                                             "reference_extraction_accuracy": 0.5, "no_answer": 0}
    assert scores["per_type"]["rel_dir"]["reference_extraction_accuracy"] == 0.0  # "Based" → B
    assert scores["mean_type_accuracy"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert scores["reference_extraction_accuracy"] == pytest.approx(2 / 5)  # it credits "D and A"
    assert scores["extraction"] == {"letter": 1, "prefix": 1, "capital": 1, "several letters": 1, "no letter": 1}
    table = format_table(scores, title="model on data")
    assert table.splitlines()[0] == "model on data"
    assert "abs_dis" in table and "50.0%" in table and "all (items)" in table and "mean of types" in table
    assert len(TYPE_ORDER) == 13 and TYPE_ORDER[-1] == "non-template"
    json.dumps([r.to_json() for r in rows])


def test_scoring_given_replies_without_a_model(qa_set, tmp_path):
    from recon4d.vlm.data import load_items
    from recon4d.vlm.evaluate import score_replies

    items = load_items(qa_set / "qa.parquet", need_videos=False).items
    replies = tmp_path / "replies.jsonl"
    lines = [{"index": i.index, "response": f"The answer is {i.answer}."} for i in items[:20]]
    lines[0]["response"] = "I cannot tell."
    lines.append({"index": 999, "response": "A"})
    replies.write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = score_replies(replies, qa_set / "qa.parquet")
    assert results["n_items"] == 24 and results["accuracy"] == pytest.approx(19 / 24)
    assert results["missing_replies"] == 4 and results["unmatched_replies"] == 1
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"predictions": [{"id": "x", "answer": "B", "type": "abs_spd", "response": "(b)"}]}))
    alone = score_replies(own)
    assert alone["accuracy"] == 1.0 and list(alone["per_type"]) == ["abs_spd"]
    from recon4d.vlm.data import DataError

    with pytest.raises(DataError, match="no answer letter"):
        score_replies(replies)
