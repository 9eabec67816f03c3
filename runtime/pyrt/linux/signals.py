"""Signal names and numbers without the `signal` module (its enums cost ~5 ms to import)."""

from __future__ import annotations

import _signal

from pyrt.errors import PyrtError

NAMES: dict[str, int] = {
    name: getattr(_signal, name)
    for name in dir(_signal)
    if name.startswith("SIG") and not name.startswith("SIG_") and name not in ("SIGRTMIN",
                                                                              "SIGRTMAX")
}


def parse(text: str) -> int:
    """A signal as runc takes it: a number, or a name with or without SIG, any case."""
    if text.isascii() and text.isdigit():
        num = int(text)
        if 0 < num < _signal.NSIG:
            return num
        raise PyrtError(f"signal {text}", "out of range")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in NAMES:
        return NAMES[name]
    for base, sign in (("SIGRTMIN", 1), ("SIGRTMAX", -1)):
        if name == base:
            return int(getattr(_signal, base))
        if name.startswith(base + ("+" if sign > 0 else "-")):
            offset = name[len(base) + 1 :]
            if offset.isascii() and offset.isdigit():
                num = int(getattr(_signal, base)) + sign * int(offset)
                if int(_signal.SIGRTMIN) <= num <= int(_signal.SIGRTMAX):
                    return num
                raise PyrtError(f"signal {text}", "out of range")
    raise PyrtError(f"signal {text}", "unknown signal name")
