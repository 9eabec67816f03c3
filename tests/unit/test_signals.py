"""pyrt.linux.signals.parse: signal names and numbers as `kill` takes them."""

from __future__ import annotations

import signal

import pytest

from pyrt.errors import PyrtError
from pyrt.linux import signals


@pytest.mark.parametrize("text,expected", [
    ("TERM", signal.SIGTERM), ("SIGTERM", signal.SIGTERM), ("term", signal.SIGTERM),
    ("SigTerm", signal.SIGTERM), ("15", 15), ("9", 9), ("1", 1), ("KILL", signal.SIGKILL),
    ("sigkill", signal.SIGKILL), ("HUP", signal.SIGHUP), ("USR1", signal.SIGUSR1),
    ("SIGCHLD", signal.SIGCHLD), ("WINCH", signal.SIGWINCH), ("STOP", signal.SIGSTOP),
    ("CONT", signal.SIGCONT), ("SIGRTMIN", signal.SIGRTMIN), ("RTMAX", signal.SIGRTMAX),
    ("SIGRTMIN+1", signal.SIGRTMIN + 1), ("rtmin+3", signal.SIGRTMIN + 3),
    ("RTMAX-2", signal.SIGRTMAX - 2), ("SIGRTMAX-0", signal.SIGRTMAX),
    (str(signal.NSIG - 1), signal.NSIG - 1),
])
def test_parse(text: str, expected: int) -> None:
    assert signals.parse(text) == int(expected)


def test_every_stdlib_signal_name() -> None:
    for sig in signal.Signals:
        if sig.name in ("SIGRTMIN", "SIGRTMAX"):
            continue
        assert signals.parse(sig.name) == sig.value, sig.name
        assert signals.parse(sig.name[3:].lower()) == sig.value, sig.name


@pytest.mark.parametrize("text", [
    "NOPE", "0", "99999", str(signal.NSIG), "SIGKILLX", "", "SIG", "-9", "+9", " 9", "9 ",
    "0x9", "9.0", "SIG_DFL", "SIG_IGN", "RTMIN+", "RTMIN-1", "RTMAX+1", "RTMIN+x",
    "RTMAX--1",
])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(PyrtError) as info:
        signals.parse(text)
    assert info.value.what == f"signal {text}"


@pytest.mark.parametrize("text", ["SIGRTMIN+99", "RTMAX-40"])
def test_realtime_offset_out_of_range(text: str) -> None:
    with pytest.raises(PyrtError):
        signals.parse(text)


@pytest.mark.parametrize("text", ["²", "RTMIN+²"])
def test_non_ascii_digits(text: str) -> None:
    with pytest.raises(PyrtError):
        signals.parse(text)
