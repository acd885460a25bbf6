"""Option parsers shared by several commands."""

from __future__ import annotations

import click


def parse_size(_ctx, _param, value: str) -> tuple[int, int]:
    """click callback: "WIDTHxHEIGHT" → (width, height)."""
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x360, got {value!r}") from None
    return width, height
