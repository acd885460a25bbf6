"""The compiled question record: one multiple-choice item and all the evidence behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

LETTERS = ("A", "B", "C", "D")

QUESTION_TYPES = (
    "rel_dis", "rel_dir", "rel_ori", "abs_dis", "abs_dir", "abs_ori",
    "rel_spd", "abs_spd", "rel_spd_comp", "abs_spd_comp", "rel_dir_pred", "abs_dir_pred",
)


@dataclass(frozen=True)
class QARecord:
    """One DSR question with its procedural answer and evidence (DESIGN §6).

    video_id:         identifier of the clip in exports (``videoID``), by default the video stem.
    qtype:            one of QUESTION_TYPES, or "llm" for a non-template question.
    question:         the question text (template wording, or the LLM's).
    options:          the four answers, in letter order A–D.
    answer:           the correct letter.
    viewpoint:        "absolute" (observer frozen at ``observer_time_s``) or "relative".
    observer:         "camera" or the observer object's id as a string.
    observer_time_s:  time of the frozen observer for absolute questions, else None.
    interval_s:       (start, end) of the asked interval in seconds of the source video.
    frame_range:      (first, last) scene frame indices (into the store's T axis) of the interval.
    visible_range:    (first, last) scene frame indices a model is shown (dir_pred hides the
                      last second).
    targets:          object ids (strings; "camera" for the camera) the question is about.
    quantities:       name → per-step series behind the answer (lists of floats or 3-vectors).
    phases:           the answer's phases as labels (e.g. ("constant", "larger")).
    margin:           smallest relative distance of any decisive quantity to its threshold.
    profile:          rule profile name ("dsr" or "paper").
    distractors:      distractor mode ("random", "hard", "mixed").
    seed:             the seed the item was generated with.
    store_sha256:     digest of the scene store content the item was compiled from.
    video_path:       path of the source video.
    """

    video_id: str
    qtype: str
    question: str
    options: tuple[str, str, str, str]
    answer: str
    viewpoint: str = "relative"
    observer: str = "camera"
    observer_time_s: float | None = None
    interval_s: tuple[float, float] = (0.0, 0.0)
    frame_range: tuple[int, int] = (0, 0)
    visible_range: tuple[int, int] = (0, 0)
    targets: tuple[str, ...] = ()
    quantities: dict = field(default_factory=dict)
    phases: tuple = ()
    margin: float = math.inf
    profile: str = "dsr"
    distractors: str = "random"
    seed: int = 0
    store_sha256: str = ""
    video_path: str = ""

    def __post_init__(self) -> None:
        if len(self.options) != 4 or len(set(self.options)) != 4:
            raise ValueError(f"a record needs four distinct options, got {self.options!r}")
        if self.answer not in LETTERS:
            raise ValueError(f"answer must be one of {LETTERS}, got {self.answer!r}")

    @property
    def answer_text(self) -> str:
        return self.options[LETTERS.index(self.answer)]

    def to_json(self) -> dict:
        """Plain JSON types (tuples serialise as lists; an infinite margin becomes None).

        A shallow dict of the fields (``dataclasses.asdict`` deep-copies every float of the
        evidence, most of the cost of an export); ``quantities`` is copied one level deep.
        """
        data = {f.name: getattr(self, f.name) for f in _FIELDS}
        data["quantities"] = {k: list(v) if isinstance(v, list) else v for k, v in self.quantities.items()}
        data["margin"] = None if not math.isfinite(self.margin) else float(self.margin)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "QARecord":
        data = dict(data)
        for name in ("options", "interval_s", "frame_range", "visible_range", "targets"):
            data[name] = tuple(data[name])
        data["phases"] = tuple(tuple(p) if isinstance(p, list) else p for p in data.get("phases", ()))
        data["margin"] = math.inf if data.get("margin") is None else float(data["margin"])
        return cls(**data)


_FIELDS = fields(QARecord)
