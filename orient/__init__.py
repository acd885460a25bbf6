"""Per-agent orientation backends (motion heading, Orient Anything)."""
