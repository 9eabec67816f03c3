"""One exception family: the CLI turns each into one `pyrt: <what>: <why>` line and exit 1."""

from __future__ import annotations


class PyrtError(Exception):
    """A failure the user can act on: `what` names the object, `why` the problem."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why


class ConfigError(PyrtError):
    """config.json is unusable; `what` is the JSON pointer of the offending field."""


class NotExist(PyrtError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id}", "does not exist")


def oserror(what: str, err: OSError) -> PyrtError:
    """Wrap an OSError as a PyrtError with the strerror text (no traceback, no errno noise)."""
    why = err.strerror or str(err)
    if err.filename and str(err.filename) not in what:
        why = f"{err.filename}: {why}"
    return PyrtError(what, why)
