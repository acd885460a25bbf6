"""Non-template questions from an OpenAI-compatible chat model (DESIGN §6).

The model is shown the objects' trajectories in the observer frame (x forward, y left, z up)
and asked for ONE question about how their 3D relations change — answerable only with 3D
understanding, not quantitative — with four answers and the correct letter, as six lines:

    question
    A. ...
    B. ...
    C. ...
    D. ...
    letter

    build_prompt --> POST {url}/chat/completions --> parse_reply --> accepted question
                                 ^                        |
                                 +---- InvalidReply ------+   (reason recorded; up to max_retries more)

The prompt follows the structure of DSR Suite's non-template generator (one system and one
user message; the observer, the interval, the axis convention, the per-object coordinates at
each sampled time, the constraints, and the six-line answer format) in our own words. Unlike
the reference, which re-asks without limit until the reply has six lines, every rejected reply
is kept with its reason, retries are bounded, and transport failures raise ``LLMError``.

Only the standard library speaks HTTP (``urllib.request``); nothing here reads environment
variables — the settings module resolves the API key with :meth:`LLMConfig.with_key_from`.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from recon4d.checks import check_shape
from recon4d.errors import Recon4dError, ShapeError
from recon4d.qa_compiler.records import LETTERS, QARecord

SYSTEM_PROMPT = (
    "You write multiple-choice questions that test dynamic spatial reasoning: how objects move and "
    "how their positions relative to each other change in 3D over time. You reply with plain text "
    "in exactly the requested six-line format and nothing else."
)

_INSTRUCTIONS = "\n".join([
    "Write ONE question about how the 3D spatial relations between these objects change over the "
    "interval, with four answers of which exactly one is correct. Rules:",
    "1. The question must need 3D understanding: it must not be answerable from the flat 2D image alone "
    "(think of depth, approaching or receding, ending up in front of or behind, left or right in the "
    "observer's frame, direction of motion).",
    "2. The question and the answers must not be quantitative: no numbers, coordinates, distances, speeds, "
    "units or axis names.",
    "3. Refer to each object exactly by the name given above, bounding box included.",
    "4. Do not describe the observer or the perspective; that is added to the question later.",
    "5. The four answers must be different from each other.",
    "Reply with exactly six lines:",
    "line 1: the question",
    "line 2: A. <first answer>",
    "line 3: B. <second answer>",
    "line 4: C. <third answer>",
    "line 5: D. <fourth answer>",
    "line 6: the letter of the correct answer (A, B, C or D) and nothing else",
])


class LLMError(Recon4dError):
    """The chat model could not be reached, or gave no acceptable question.

    ``rejections`` holds every reply rejected before the failure (attempt, reason, text);
    ``kind`` names the failure for counting: timeout, unreachable, connection, http_<code>,
    bad_response or rejected.
    """

    def __init__(self, message: str, rejections: Sequence["Rejection"] = (), kind: str = "error"):
        super().__init__(message)
        self.rejections = tuple(rejections)
        self.kind = kind


class InvalidReply(Recon4dError, ValueError):
    """A reply that breaks the six-line format or the question rules; ``reason`` says how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask for non-template questions.

    url:          base URL of an OpenAI-compatible API, e.g. ``http://127.0.0.1:8000/v1``
                  (``/chat/completions`` is appended unless the URL already ends with it).
    model:        model name sent with each request.
    api_key:      sent as ``Authorization: Bearer <key>``; empty sends no header (local servers).
    api_key_env:  name of the environment variable the settings module reads the key from
                  (see ``with_key_from``); the library itself never reads the environment.
    timeout_s:    seconds one request may take in total (connect, headers and body) before
                  ``LLMError``; a server that trickles its reply cannot stretch it.
    max_retries:  further attempts after an invalid reply (at most 1 + max_retries requests).
    temperature:  sampling temperature (varied questions across calls).
    """

    url: str
    model: str
    api_key: str = field(default="", repr=False)
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    temperature: float = 0.7

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"LLMConfig.url must start with http:// or https://, got {self.url!r} "
                             "(e.g. http://127.0.0.1:8000/v1)")
        if not self.timeout_s > 0:
            raise ValueError(f"LLMConfig.timeout_s must be positive, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"LLMConfig.max_retries must be >= 0, got {self.max_retries}")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def with_key_from(self, environ: Mapping[str, str]) -> "LLMConfig":
        """This config with ``api_key`` taken from ``environ[api_key_env]`` when it has none.

        >>> config = LLMConfig(url, model).with_key_from(os.environ)   # in the settings module
        """
        if self.api_key or not environ.get(self.api_key_env):
            return self
        return replace(self, api_key=environ[self.api_key_env])


@dataclass(frozen=True)
class Rejection:
    """One reply that was not accepted: attempt number (1-based), why, and the reply text."""

    attempt: int
    reason: str
    reply: str


@dataclass(frozen=True)
class LLMQuestion:
    """An accepted non-template question and the history that led to it.

    question:    the model's question (without the perspective/interval preamble).
    options:     the four answers, A–D, prefixes stripped.
    answer:      the correct letter.
    model:       the model that wrote it.
    attempts:    requests made (1 + number of rejections).
    rejections:  replies rejected before this one, with reasons.
    reply:       the accepted reply text, verbatim.
    messages:    the chat messages sent.
    """

    question: str
    options: tuple[str, str, str, str]
    answer: str
    model: str
    attempts: int
    rejections: tuple[Rejection, ...]
    reply: str
    messages: tuple[dict, ...]

    def to_record(self, video_id: str, *, viewpoint: str, observer_desc: str,
                  interval_s: tuple[float, float], **fields) -> QARecord:
        """A QARecord of type "llm" whose question carries DSR's preamble.

        "From the perspective of {observer_desc}, between {t0:.1f}s and {t1:.1f}s, {question}"
        for absolute viewpoints, "Following the perspective of ..." for relative ones (the
        question's first letter lower-cased). ``fields`` fill the other record fields.
        """
        lead = {"absolute": "From", "relative": "Following"}.get(viewpoint)
        if lead is None:
            raise ValueError(f"viewpoint must be 'absolute' or 'relative', got {viewpoint!r}")
        body = self.question[:1].lower() + self.question[1:]
        text = (f"{lead} the perspective of {observer_desc}, between {interval_s[0]:.1f}s and "
                f"{interval_s[1]:.1f}s, {body}")
        return QARecord(video_id=video_id, qtype="llm", question=text, options=self.options, answer=self.answer,
                        viewpoint=viewpoint, interval_s=tuple(interval_s), **fields)


def time_labels(times_s) -> list[str]:
    """Sampled times as "1.5s", with the fewest decimals (at least one) that keeps them distinct."""
    times_s = [float(t) for t in times_s]
    for decimals in range(1, 4):
        labels = [f"{t:.{decimals}f}s" for t in times_s]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{t:.3f}s" for t in times_s]


def _coordinate(value: float) -> str:
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def build_prompt(trajectories, categories: Sequence[str], observer_desc: str, times_s) -> list[dict]:
    """Chat messages asking for one six-line question about these trajectories.

    trajectories:   (K, T, 3) float, object centres in the observer frame (x forward, y left,
                    z up), metres; every object visible at every sampled time.
    categories:     K names, each exactly as the question must refer to the object (e.g.
                    "person with initial bounding box coordinates [10, 20, 110, 220]").
    observer_desc:  who looks, e.g. "camera" or "dog with bounding box coordinates [...] at 2.0s".
    times_s:        (T,) increasing sample times in seconds of the source video.
    Returns ``[{"role": "system", ...}, {"role": "user", ...}]``; coordinates rounded to 2 decimals.
    """
    trajectories = np.asarray(trajectories, dtype=np.float64)
    times_s = np.asarray(times_s, dtype=np.float64)
    dims = check_shape("trajectories", trajectories, ("K", "T", 3))
    check_shape("times_s", times_s, ("T",), dims)
    categories = tuple(str(c) for c in categories)
    if len(categories) != dims["K"]:
        raise ShapeError(f"categories has {len(categories)} names but trajectories has {dims['K']} objects; "
                         "give one name per object")
    if dims["K"] == 0 or dims["T"] < 2:
        raise ValueError(f"need at least one object and two sampled times, got K={dims['K']}, T={dims['T']}")
    if len(set(categories)) != len(categories):
        raise ValueError(f"object names must be distinct so the question can tell them apart: {categories}")
    if not np.isfinite(trajectories).all() or not np.isfinite(times_s).all():
        raise ValueError("trajectories/times_s contain NaN or inf; every object must be visible at every "
                         "sampled time (DESIGN §5) — drop the object or shorten the interval")
    if np.any(np.diff(times_s) <= 0):
        raise ValueError(f"times_s must be strictly increasing, got {times_s.tolist()}")
    labels = time_labels(times_s)
    tracks = []
    for name, track in zip(categories, trajectories):
        points = "; ".join(f"{label} ({', '.join(_coordinate(v) for v in xyz)})" for label, xyz in zip(labels, track))
        tracks.append(f"- {name}: {points}")
    user = "\n".join([
        f"Observer: {observer_desc}.",
        f"Interval: from {labels[0]} to {labels[-1]}; positions sampled at {', '.join(labels)}.",
        "Coordinates are (x, y, z) in metres in the observer's frame: x points forward, y points left and "
        "z points up, so larger x is farther in front, larger y is more to the left, larger z is higher.",
        "Object positions at each sampled time:",
        *tracks,
        "",
        _INSTRUCTIONS,
    ])
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# Leak rule: after removing the allowed spans (the object names and time labels given in the
# prompt) and image boxes "[x1, y1, x2, y2]" (four integers in brackets, optionally after
# "bounding box coordinates", as DSR names objects),
# a question or answer may contain no digit, no axis name or assignment ("x=", "y:", "z-axis"),
# no "coordinate" and no metric unit or speed unit. Spelled-out counts ("two people") pass.
_IMAGE_BOX = re.compile(r"(?:bounding box coordinates\s*)?\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]",
                        re.IGNORECASE)
_LEAKS = (
    (re.compile(r"\(\s*[-+]?\d*\.?\d+\s*,"), "a coordinate tuple"),
    (re.compile(r"[-+]?\d*\.\d+"), "a decimal number"),
    (re.compile(r"\b[xyz]\s*[=:]", re.IGNORECASE), "an axis assignment"),
    (re.compile(r"\b[xyz][\s-]?(?:axis|axes|coordinates?|values?|components?)\b", re.IGNORECASE), "an axis name"),
    (re.compile(r"\bcoordinates?\b", re.IGNORECASE), "the word 'coordinate'"),
    (re.compile(r"\b(?:(?:centi|milli|kilo)?met(?:er|re)s?|m/s|km/h|mph)\b", re.IGNORECASE), "a unit"),
    (re.compile(r"\d"), "a number"),
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_HEADER = re.compile(r"^answer\s*[:：]\s*", re.IGNORECASE)
_QUESTION_PREFIX = re.compile(r"^(?:question|q)\s*[:：]\s*", re.IGNORECASE)
_LETTER_LINE = re.compile(r"^(?:(?:the\s+)?(?:correct\s+)?answer(?:\s+is)?\s*[:：]?\s*)?\(?([A-Z])\)?\.?$",
                          re.IGNORECASE)


def _find_leak(text: str, allowed: Iterable[str]) -> str | None:
    for span in sorted(allowed, key=len, reverse=True):
        if span:
            text = text.replace(span, " ")
    text = _IMAGE_BOX.sub(" ", text)
    for pattern, what in _LEAKS:
        match = pattern.search(text)
        if match:
            return f"{what} ({match.group(0).strip()!r})"
    return None


def parse_reply(text: str, *, allowed: Iterable[str] = ()) -> tuple[str, tuple[str, str, str, str], str]:
    """``(question, (A, B, C, D), letter)`` from a six-line reply, or ``InvalidReply(reason)``.

    Tolerated: surrounding whitespace and blank lines, a ``<think>...</think>`` block (reasoning
    models), a leading "Answer:" (alone on its own line or before the question) and "Question:"
    on line 1, and "Answer: B" / "(B)" / "B." on line 6.
    Required: options prefixed "A." (or "A)") … "D." in order, four distinct non-empty options,
    a letter A–D, and no quantitative leak (see the leak rule above) in the question or options;
    ``allowed`` are strings exempt from it (the object names and time labels of the prompt).
    """
    allowed = tuple(allowed)
    lines = [line.strip() for line in _THINK.sub("", text or "").splitlines() if line.strip()]
    if lines and _ANSWER_HEADER.match(lines[0]):
        rest = _ANSWER_HEADER.sub("", lines[0]).strip()
        lines = [rest, *lines[1:]] if rest else lines[1:]
    if len(lines) != 6:
        raise InvalidReply(f"expected exactly six non-empty lines (question, A.-D., letter), got {len(lines)}")
    question = _QUESTION_PREFIX.sub("", lines[0]).strip()
    if not question:
        raise InvalidReply("the question line is empty")
    options = []
    for letter, line in zip(LETTERS, lines[1:5]):
        match = re.match(rf"^{letter}\s*[.)]\s*(.*)$", line)
        if not match:
            raise InvalidReply(f"answer line should start with '{letter}.' but reads {line[:60]!r}")
        if not match.group(1).strip():
            raise InvalidReply(f"option {letter} is empty")
        options.append(match.group(1).strip())
    if len({" ".join(o.lower().split()) for o in options}) != 4:
        raise InvalidReply(f"the four options are not distinct: {options}")
    letter_match = _LETTER_LINE.match(lines[5])
    if not letter_match or letter_match.group(1) not in LETTERS:
        raise InvalidReply(f"the last line must be the correct letter A-D, got {lines[5][:60]!r}")
    if re.search(r"\bperspective\b", question, re.IGNORECASE):
        raise InvalidReply("the question describes the perspective, which the compiler adds itself")
    for where, value in (("question", question), *zip((f"option {letter}" for letter in LETTERS), options)):
        leak = _find_leak(value, allowed)
        if leak:
            raise InvalidReply(f"the {where} is quantitative: it contains {leak}")
    return question, tuple(options), letter_match.group(1)


_MAX_REPLY_BYTES = 8 * 1024 * 1024


class _Deadline:
    """Shuts down every socket it watches when ``seconds`` have passed, so a server that answers
    slowly, trickles a byte at a time or never finishes its headers cannot hold a request past
    its total deadline (a socket timeout alone only bounds each single read)."""

    def __init__(self, seconds: float):
        self.expired = threading.Event()
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired.is_set():
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _opener(deadline: _Deadline):
    """A urllib opener (proxies as urllib resolves them) whose connections report their socket
    to ``deadline``."""

    def watched(base):
        class _Connection(base):
            def connect(self):
                super().connect()
                deadline.watch(self.sock)

        return _Connection

    class _HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class _HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(_HTTP(), _HTTPS())


def _read_all(response, deadline: _Deadline) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > _MAX_REPLY_BYTES:
            raise LLMError(f"the reply is larger than {_MAX_REPLY_BYTES >> 20} MiB; check that the URL points at "
                           "an OpenAI-compatible chat API", kind="bad_response")
        chunks.append(chunk)
    if deadline.expired.is_set():
        raise TimeoutError
    return b"".join(chunks)


def _post_chat(config: LLMConfig, messages: Sequence[dict]) -> str | None:
    """POST one chat completion; the reply's ``choices[0].message.content`` (None if absent).

    The whole exchange (connect, headers, body) has ``config.timeout_s`` seconds in total.
    """
    url = config.endpoint
    body = json.dumps({"model": config.model, "messages": list(messages), "temperature": config.temperature})
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    deadline = _Deadline(config.timeout_s)
    try:
        with _opener(deadline).open(request, timeout=config.timeout_s) as response:
            payload = _read_all(response, deadline)
    except LLMError:
        raise
    except urllib.error.HTTPError as exc:
        if deadline.expired.is_set():
            raise _timeout(config) from exc
        try:
            detail = exc.read(300).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            detail = ""
        hint = {
            401: "check the API key (LLMConfig.api_key, read from the variable named by api_key_env)",
            403: "check the API key and that it may use this model",
            404: f"check the base URL (it usually ends in /v1) and that model {config.model!r} is served",
            429: "the server is rate limiting; wait or lower the request rate",
        }.get(exc.code, "check the server's log")
        raise LLMError(f"{url} answered HTTP {exc.code} {exc.reason}: {detail!r}; {hint}", kind=f"http_{exc.code}") from exc
    except TimeoutError as exc:
        raise _timeout(config) from exc
    except urllib.error.URLError as exc:
        if deadline.expired.is_set() or isinstance(exc.reason, TimeoutError):
            raise _timeout(config) from exc
        raise LLMError(f"could not reach {url}: {exc.reason}; check the URL (e.g. http://127.0.0.1:8000/v1) "
                       "and that the server is running", kind="unreachable") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.expired.is_set():
            raise _timeout(config) from exc
        raise LLMError(f"the connection to {url} failed: {exc!r}; check that the server is running",
                       kind="connection") from exc
    finally:
        deadline.cancel()
    try:
        return json.loads(payload)["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise LLMError(f"{url} did not return an OpenAI chat completion (no choices[0].message); got "
                       f"{payload[:200]!r}; check that the URL points at an OpenAI-compatible API",
                       kind="bad_response") from None


def _timeout(config: LLMConfig) -> LLMError:
    return LLMError(f"{config.endpoint} did not answer within {config.timeout_s} s (the deadline for the whole "
                    "request); check that the server is running and not overloaded, or raise LLMConfig.timeout_s",
                    kind="timeout")


def generate_llm_question(config: LLMConfig, trajectories, categories: Sequence[str], observer_desc: str,
                          times_s) -> LLMQuestion:
    """Ask ``config``'s model for one validated question about these trajectories.

    Arguments as in :func:`build_prompt`. Invalid replies are recorded with their reason and
    re-asked, at most ``config.max_retries`` times more; the result lists them. Raises
    ``LLMError`` (with ``.rejections``) when every attempt was rejected or on any HTTP error,
    timeout or malformed response — those are not retried.
    """
    messages = build_prompt(trajectories, categories, observer_desc, times_s)
    allowed = (*categories, *time_labels(times_s))
    rejections: list[Rejection] = []
    for attempt in range(1, config.max_retries + 2):
        try:
            reply = _post_chat(config, messages)
        except LLMError as exc:
            note = f" (after {len(rejections)} rejected replies)" if rejections else ""
            raise LLMError(f"{exc}{note}", rejections, kind=exc.kind) from exc
        try:
            if not isinstance(reply, str):
                raise InvalidReply(f"the reply has no text content (got {type(reply).__name__})")
            question, options, answer = parse_reply(reply, allowed=allowed)
        except InvalidReply as exc:
            rejections.append(Rejection(attempt, exc.reason, reply if isinstance(reply, str) else ""))
            continue
        return LLMQuestion(question=question, options=options, answer=answer, model=config.model,
                           attempts=attempt, rejections=tuple(rejections), reply=reply, messages=tuple(messages))
    reasons = "; ".join(f"attempt {r.attempt}: {r.reason}" for r in rejections)
    raise LLMError(f"{config.model} at {config.endpoint} gave no acceptable question in {len(rejections)} "
                   f"attempts ({reasons}); try another model, a higher max_retries or a lower temperature",
                   rejections, kind="rejected")
