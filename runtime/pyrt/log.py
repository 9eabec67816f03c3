"""runc's log format: logrus text or JSON lines in --log FILE (stderr by default)."""

from __future__ import annotations

import os
import time

from pyrt import jsonio

_target = {"path": "", "format": "text", "debug": False}


def configure(path: str, fmt: str, debug: bool) -> None:
    _target.update(path=path, format=fmt, debug=debug)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _line(level: str, msg: str) -> str:
    if _target["format"] == "json":
        return jsonio.dumps({"level": level, "msg": msg, "time": _now()}, compact=True) + "\n"
    return f"time={jsonio.dumps(_now())} level={level} msg={jsonio.dumps(msg)}\n"


def _write(text: str) -> None:
    path = str(_target["path"])
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _stderr(text: str) -> None:
    """Best effort, as runc: the containerd shim may give us a read-only /dev/null."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


def error(msg: str) -> None:
    """An error: one line in the log file when there is one, and on stderr (always)."""
    _write(_line("error", msg))
    _stderr(f"pyrt: {msg}\n")


def warning(msg: str) -> None:
    """A warning: in the log file when there is one, else one line on stderr."""
    if _target["path"]:
        _write(_line("warning", msg))
    else:
        _stderr(f"pyrt: warning: {msg}\n")


def debug(msg: str) -> None:
    if _target["debug"]:
        if _target["path"]:
            _write(_line("debug", msg))
        else:
            _stderr(_line("debug", msg))
