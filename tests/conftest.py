"""Shared pytest configuration for pyrt's test suites.

* Registers the markers used by the suites (pyproject.toml may not list them yet).
* Resolves the runtime binary under test (see ``runtime_path``): the suites are
  runtime-agnostic, ``PYRT_TEST_RUNTIME=/usr/sbin/runc`` runs them against runc.
* Skips ``@pytest.mark.pyrt_only`` tests unless the runtime's basename is ``pyrt``.
* Makes the pytest process a child subreaper (PR_SET_CHILD_SUBREAPER), like the
  engines (containerd shim, conmon) that call a runtime: container inits left behind
  by ``create``/``run -d`` reparent to pytest instead of this VM's pid 1, which does
  not reap orphans.  Reaping happens only at safe points (see tests/runtime).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys

import pytest

PR_SET_CHILD_SUBREAPER = 36


def runtime_path() -> str | None:
    """The runtime binary under test.

    ``$PYRT_TEST_RUNTIME`` if set, else the ``pyrt`` script next to ``sys.executable``
    (the venv's bin directory), else ``pyrt`` on PATH; None when nothing is found.
    """
    env = os.environ.get("PYRT_TEST_RUNTIME")
    if env:
        return env
    candidate = os.path.join(os.path.dirname(sys.executable), "pyrt")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("pyrt")


def runtime_name() -> str:
    path = runtime_path()
    return os.path.basename(path) if path else ""


def _set_subreaper() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:  # pragma: no cover
        err = ctypes.get_errno()
        raise OSError(err, "prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(err))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pyrt_only: checks behaviour that only pyrt promises (runc 1.1.5 differs); "
        "skipped unless the runtime under test is named 'pyrt'",
    )
    config.addinivalue_line(
        "markers", "runtime: drives a real OCI runtime binary (needs root)"
    )
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line(
        "markers",
        "pending(issue): a runc feature pyrt does not have yet; a strict xfail for pyrt, "
        "so the marker must go when the feature lands",
    )
    _set_subreaper()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = runtime_name()
    if name == "pyrt":
        for item in items:
            marker = item.get_closest_marker("pending")
            if marker is not None:
                item.add_marker(pytest.mark.xfail(reason=f"pyrt: {marker.args[0]}", strict=True))
        return
    skip = pytest.mark.skip(
        reason=f"pyrt-only behaviour; runtime under test is {name or 'not found'!r}"
    )
    for item in items:
        if item.get_closest_marker("pyrt_only") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def runtime_bin() -> str:
    """Absolute path of the runtime under test (skips when there is none)."""
    path = runtime_path()
    if not path:
        pytest.skip("no runtime: set PYRT_TEST_RUNTIME or install pyrt")
    resolved = shutil.which(path) if os.sep not in path else path
    if not resolved or not os.access(resolved, os.X_OK):
        pytest.skip(f"runtime {path!r} is not an executable")
    return os.path.abspath(resolved)
