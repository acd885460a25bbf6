"""Option parsers shared by several commands."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.ParamType):
    """A float that is finite and inside [low, high] (``low_open``: strictly above low); click's
    FloatRange lets "nan" through, since every comparison with NaN is false."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False):
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            self.fail(f"{value!r} must be {'above' if self.low_open else 'at least'} {self.low:g}", param, ctx)
        if self.high is not None and number > self.high:
            self.fail(f"{value!r} must be at most {self.high:g}", param, ctx)
        return number


def check_device(_ctx, _param, value: str) -> str:
    """click callback: cpu, cuda or cuda:N."""
    if value in ("cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise click.BadParameter(f"expected cpu, cuda or cuda:N, got {value!r}")


def parse_size(_ctx, _param, value: str) -> tuple[int, int]:
    """click callback: "WIDTHxHEIGHT" → (width, height)."""
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x360, got {value!r}") from None
    return width, height
