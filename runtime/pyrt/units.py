"""The value syntaxes runc's command line takes: sizes as in docker's units.RAMInBytes and
durations as in Go's time.ParseDuration."""

from __future__ import annotations

import re

from pyrt.errors import PyrtError

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
            "m": 60.0, "h": 3600.0}


def ram_in_bytes(text: str, what: str) -> int:
    """`512`, `64k`, `64m`, `1.5g`, `2GiB`... in bytes (binary multiples, as runc)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise PyrtError(what, f"invalid size {text!r}")
    number, unit = match.groups()
    power = "kmgtp".index(unit.lower()) + 1 if unit else 0
    return int(float(number) * 1024**power)


def duration_seconds(text: str, what: str) -> float:
    """`5s`, `100ms`, `1m30s`, `1.5h`... in seconds; `0` alone is allowed, as in Go."""
    if text == "0":
        return 0.0
    if not text:
        raise PyrtError(what, "invalid duration ''")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            raise PyrtError(what, f"invalid duration {text!r}")
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        pos = match.end()
    return total
