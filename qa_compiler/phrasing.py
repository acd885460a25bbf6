"""The vocabulary of DSR answers: kinds, phase keys, rule profiles, wording and rendering.

An answer is a sequence of *phases*; each phase is a key (``"larger"``, ``"former_faster"``,
``("Front", "Left")``) that :func:`phrase` renders into the DSR generator's sentences,
numbered "(1) ... (2) ...". :class:`RuleProfile` holds the thresholds of paper Table 8 (and
one wording switch); :class:`Description` is an answer with its phases and margins. The
rules that find the phases of a series are in :mod:`recon4d.qa_compiler.rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence, Union

DISTANCE = "distance"
SPEED_COMPARISON = "speed_comparison"
DIRECTION = "direction"
KINDS = (DISTANCE, SPEED_COMPARISON, DIRECTION)

CONSTANT = "constant"
CONSTANT_THEN_SMALLER = "constant_then_smaller"
CONSTANT_THEN_LARGER = "constant_then_larger"
LARGER = "larger"
SMALLER = "smaller"
# Index = integer code used by the kernels below.
DISTANCE_PHASES = (CONSTANT, CONSTANT_THEN_SMALLER, CONSTANT_THEN_LARGER, LARGER, SMALLER)

LATTER_FASTER = "latter_faster"
SAME = "same"
FORMER_FASTER = "former_faster"
# Index = per-step sign + 1 (-1: the latter is faster, 0: same, +1: the former is faster).
SPEED_PHASES = (LATTER_FASTER, SAME, FORMER_FASTER)

# One (positive, negative) label pair per FLU axis, in the order they are joined with "|".
AXIS_LABELS = (("Front", "Behind"), ("Left", "Right"), ("Above", "Below"))

Phase = Union[str, tuple[str, ...]]

DISTANCE_WORDING = {
    CONSTANT: "Keep nearly constant.",
    CONSTANT_THEN_SMALLER: "Keep nearly constant and then become smaller.",
    CONSTANT_THEN_LARGER: "Keep nearly constant and then become larger.",
    LARGER: "Become larger.",
    SMALLER: "Become smaller.",
}
SPEED_WORDING = {
    FORMER_FASTER: "The former is faster.",
    SAME: "Nearly the same.",
    LATTER_FASTER: "The latter is faster.",
}
# Used instead of SPEED_WORDING when the whole interval is a single phase.
SPEED_WORDING_SINGLE = {
    FORMER_FASTER: "The former is always faster.",
    SAME: "Their speed is nearly the same.",
    LATTER_FASTER: "The latter is always faster.",
}


@dataclass(frozen=True)
class RuleProfile:
    """Thresholds and wording switches of the answer rules (paper Table 8)."""

    name: str
    """Profile name, as selected with ``--profile``."""
    ratio_epsilon: float = 0.2
    """Table 8: bands 1-eps/1+eps (0.8/1.2) for distance/speed, 1/(1+eps)/1+eps for comparison."""
    near_zero: float = 0.1
    """Values below this are 'nearly zero': two such distances/speeds count as unchanged/equal."""
    direction_threshold: float = 0.3
    """Table 8: an FLU axis is named when its unit-vector component exceeds +-this value."""
    number_single_latter: bool = False
    """Write '(1) ' before the one-phase 'The latter is always faster.' (the DSR generator omits it)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio_epsilon < 1.0:
            raise ValueError(f"ratio_epsilon must lie in (0, 1), got {self.ratio_epsilon}")
        if not self.near_zero > 0.0:
            raise ValueError(f"near_zero must be > 0, got {self.near_zero}")
        if not 0.0 < self.direction_threshold < 1.0:
            raise ValueError(f"direction_threshold must lie in (0, 1), got {self.direction_threshold}")


# Table 8 as the public generator implements it (threshold 0.3 on the unit vector).
DSR = RuleProfile(name="dsr")
# Table 8 as written: an axis is named within 70 deg of it (behind/opposite beyond 110 deg).
PAPER = RuleProfile(
    name="paper", direction_threshold=math.cos(math.radians(70.0)), number_single_latter=True
)
PROFILES = {"dsr": DSR, "paper": PAPER}


def get_profile(name: str) -> RuleProfile:
    """Return the rule profile called ``name`` ("dsr" or "paper")."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown rule profile {name!r}; valid names: {', '.join(sorted(PROFILES))}"
        ) from None


def resolve_profile(profile: RuleProfile | str) -> RuleProfile:
    """``profile`` itself, or the profile of that name."""
    return profile if isinstance(profile, RuleProfile) else get_profile(profile)


@dataclass(frozen=True)
class Description:
    """A procedural answer, the phases it was rendered from and how robust each phase is."""

    text: str
    """The answer exactly as the DSR generator writes it, e.g. "(1) Become larger."."""
    phases: tuple[Phase, ...]
    """Phase keys in time order: DISTANCE_PHASES / SPEED_PHASES keys, or tuples like ("Front", "Left")."""
    margins: tuple[float, ...]
    """Per phase: smallest relative distance of a decisive quantity to its threshold (see ``rules``)."""
    kind: str
    """DISTANCE, SPEED_COMPARISON or DIRECTION: how :func:`phrase` renders ``phases``."""

    @property
    def margin(self) -> float:
        """Smallest phase margin (inf when there are no phases)."""
        return min(self.margins, default=math.inf)


def _direction_key(code: int) -> tuple[str, ...]:
    """Labels of direction code ``9*d_front + 3*d_left + d_up`` (digit 2: positive, 0: negative)."""
    digits = (code // 9, code // 3 % 3, code % 3)
    return tuple(pair[0] if d == 2 else pair[1] for pair, d in zip(AXIS_LABELS, digits) if d != 1)


DIRECTION_KEYS = tuple(_direction_key(code) for code in range(27))
_DIRECTION_TEXT = {key: "|".join(key) + "." for key in DIRECTION_KEYS}


_PREFIXES = tuple(f"({k}) " for k in range(1, 65))


def _numbered(sentences: Sequence[str]) -> str:
    """Join sentences as "(1) first (2) second ..."."""
    if len(sentences) <= len(_PREFIXES):
        return " ".join([p + s for p, s in zip(_PREFIXES, sentences)])
    return " ".join([f"({k}) {s}" for k, s in enumerate(sentences, 1)])


def _render_distance(phases: Sequence[str], profile: RuleProfile) -> str:
    return _numbered([DISTANCE_WORDING[p] for p in phases])


def _render_speed(phases: Sequence[str], profile: RuleProfile) -> str:
    if len(phases) == 1:
        sentence = SPEED_WORDING_SINGLE[phases[0]]
        if phases[0] == LATTER_FASTER and not profile.number_single_latter:
            return sentence  # the DSR generator writes this one sentence without "(1)"
        return f"(1) {sentence}"
    return _numbered([SPEED_WORDING[p] for p in phases])


def _render_direction(phases: Sequence[tuple[str, ...]], profile: RuleProfile) -> str:
    return _numbered([_DIRECTION_TEXT[p] for p in phases])


_RENDERERS: dict[str, Callable] = {
    DISTANCE: _render_distance,
    SPEED_COMPARISON: _render_speed,
    DIRECTION: _render_direction,
}


_CANONICAL: dict = {}  # label tuple -> its canonical order (a handful of label sets recur)


def _canonical_direction(phase) -> tuple[str, ...]:
    """Validate one direction phase (iterable of labels) and order it Front/Left/Above."""
    try:
        cached = _CANONICAL.get(phase)
    except TypeError:  # unhashable (e.g. a list of labels): validated below
        phase, cached = tuple(phase), None
    if cached is not None:
        return cached
    labels = (phase,) if isinstance(phase, str) else tuple(phase)
    picked = []
    for pair in AXIS_LABELS:
        on_axis = [label for label in labels if label in pair]
        if len(on_axis) > 1:
            raise ValueError(f"direction phase {labels!r} names axis {pair} more than once")
        picked.extend(on_axis)
    unknown = set(labels) - {label for pair in AXIS_LABELS for label in pair}
    if unknown or len(picked) != len(labels):
        raise ValueError(
            f"direction phase {labels!r} has unknown labels {sorted(unknown)}; valid: "
            f"{[label for pair in AXIS_LABELS for label in pair]}"
        )
    if len(_CANONICAL) < 4096:
        _CANONICAL[phase] = tuple(picked)
    return tuple(picked)


def phrase(phases: Sequence[Phase], kind: str, profile: RuleProfile | str = DSR) -> str:
    """Render phase keys into the DSR answer text, numbering them "(1) ... (2) ...".

    ``kind`` is DISTANCE (keys from DISTANCE_PHASES; speed series too), SPEED_COMPARISON
    (keys from SPEED_PHASES; a single phase uses the "always" sentences) or DIRECTION (each
    phase an iterable of axis labels, at most one per axis, rendered Front/Left/Above order,
    e.g. ("Front", "Left") -> "Front|Left."). An empty sequence renders as "".
    """
    profile = resolve_profile(profile)
    if kind not in _RENDERERS:
        raise ValueError(f"unknown description kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == DIRECTION:
        phases = [_canonical_direction(p) for p in phases]
    else:
        valid = DISTANCE_PHASES if kind == DISTANCE else SPEED_PHASES
        bad = [p for p in phases if not isinstance(p, str) or p not in valid]
        if bad:
            raise ValueError(f"unknown {kind} phases {bad!r}; valid phases: {', '.join(valid)}")
    return _RENDERERS[kind](phases, profile)




PHASE_KEYS = {DISTANCE: DISTANCE_PHASES, SPEED_COMPARISON: SPEED_PHASES, DIRECTION: DIRECTION_KEYS}
"""Kind -> its phase keys; a phase *code* is an index into these (the scans write codes)."""


def render_phases(phases: Sequence[Phase], kind: str, profile: RuleProfile) -> str:
    """:func:`phrase` for phase keys known to be valid (no checks), e.g. from PHASE_KEYS."""
    return _RENDERERS[kind](phases, profile)
