"""Tests of recon4d/options.py: command-line strings parsed against config field types."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from recon4d.errors import Recon4dError
from recon4d.options import OptionError, build_config, parse_options


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclass(frozen=True)
class Example:
    """A config with one field of every supported kind."""

    flag: bool = True
    """a bool"""
    count: int = 3
    """an int"""
    ratio: float = 0.5
    """a float"""
    name: str = "x"
    """a string"""
    kind: Literal["a", "b"] = "a"
    """a literal"""
    mode: Mode = Mode.FAST
    """an enum"""
    limit: int | None = None
    """optional int"""
    pair: tuple[float, float] | None = (0.1, 0.9)
    """optional pair"""
    names: tuple[str, ...] | str = ()
    """strings or one string"""
    where: Path = Path(".")
    """a path"""
    anything: Any = None
    """JSON"""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("False", False), ("yes", True), ("no", False), ("ON", True), ("off", False),
    ("1", True), ("0", False), (True, True), (False, False),
])
def test_bool_spellings(raw, expected):
    assert parse_options(Example, {"flag": raw}, "example")["flag"] is expected


@pytest.mark.parametrize("field, raw, expected", [
    ("count", "8", 8), ("count", " 12 ", 12), ("count", 5, 5), ("count", 4.0, 4),
    ("ratio", "2", 2.0), ("ratio", "1e-3", 1e-3), ("ratio", 3, 3.0),
    ("name", "hello world", "hello world"),
    ("kind", "b", "b"), ("mode", "SLOW", Mode.SLOW), ("mode", "slow", Mode.SLOW), ("mode", Mode.FAST, Mode.FAST),
    ("limit", "none", None), ("limit", "null", None), ("limit", "7", 7), ("limit", None, None),
    ("pair", "0.2,0.8", (0.2, 0.8)), ("pair", "[0.2, 0.8]", (0.2, 0.8)), ("pair", "(1, 2)", (1.0, 2.0)),
    ("pair", [0.3, 0.7], (0.3, 0.7)), ("pair", "None", None),
    ("names", "person. dog.", "person. dog."), ("names", ["a", "b"], ("a", "b")),
    ("where", "a/b", Path("a/b")),
    ("anything", '{"k": [1, 2]}', {"k": [1, 2]}), ("anything", "plain", "plain"),
])
def test_values_parse_as_their_field_type(field, raw, expected):
    value = parse_options(Example, {field: raw}, "example")[field]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("field, raw, expected", [
    ("flag", "maybe", "true or false"), ("flag", 2, "true or false"),
    ("count", "'8'", "an integer"), ("count", "2.5", "an integer"), ("count", 2.5, "an integer"),
    ("count", True, "an integer"), ("ratio", "fast", "a number"), ("ratio", "nan", "a number"),
    ("kind", "c", "one of 'a', 'b'"), ("mode", "medium", "one of 'FAST', 'SLOW'"),
    ("limit", "lots", "an integer or none"), ("pair", "1,2,3", "2 comma-separated values"),
    ("name", 3, "a string"),
])
def test_wrong_values_name_the_option_the_type_and_the_value(field, raw, expected):
    with pytest.raises(OptionError) as info:
        parse_options(Example, {field: raw}, "the example backend", prefix="recon.")
    message = str(info.value)
    assert f"recon.{field}" in message and expected in message and repr(raw) in message
    assert "\n" not in message and isinstance(info.value, Recon4dError)


def test_unknown_names_list_the_valid_ones_and_extras_pass_through():
    with pytest.raises(OptionError, match=r"unknown option\(s\) \['lift.nope'\] for lifting; valid options are .*'lift.count'"):
        parse_options(Example, {"nope": 1}, "lifting", prefix="lift.")
    parsed = parse_options(Example, {"boxes": "file.json", "count": "2"}, "x", extra=("boxes",))
    assert parsed == {"boxes": "file.json", "count": 2}


def test_build_config_checks_values_and_turns_the_configs_own_errors_into_option_errors():
    config = build_config(Example, {"count": "4", "flag": "no", "pair": "0,1"}, "example")
    assert config == Example(count=4, flag=False, pair=(0.0, 1.0))
    with pytest.raises(OptionError, match="bad option for example: count must be >= 0"):
        build_config(Example, {"count": "-1"}, "example")
    assert build_config(Example, {"boxes": [1]}, "example", extra=("boxes",)) == Example()


def test_lift_config_and_every_registered_backend_config_parse_strings():
    from recon4d.backends import STAGES, backend_names, get_backend
    from recon4d.lift.lifting import LiftConfig

    lift = build_config(LiftConfig, {"estimator": "median", "extent_quantiles": "none", "erode_px": "2",
                                     "depth_edge_rtol": "null", "conf_weighted": "yes"}, "lifting")
    assert (lift.estimator, lift.extent_quantiles, lift.erode_px, lift.depth_edge_rtol, lift.conf_weighted) == (
        "median", None, 2, None, True)
    with pytest.raises(OptionError, match="lift.estimator"):
        build_config(LiftConfig, {"estimator": "mode"}, "lifting", prefix="lift.")
    for stage in STAGES:
        for name in backend_names(stage):
            spec = get_backend(stage, name)
            assert spec.build_config({}) == spec.load_config_class()()
