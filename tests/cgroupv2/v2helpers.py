"""Helpers for the cgroup v2 suite (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rthelpers as h

CGROUP_ROOT = Path("/sys/fs/cgroup")
MiB = 1024 * 1024


def cgdir(b: h.Bundle) -> Path:
    """The container's cgroup directory, as the host sees it."""
    return CGROUP_ROOT / b.cgroup_path.lstrip("/")


def cgread(b: h.Bundle, name: str) -> str:
    return (cgdir(b) / name).read_text().strip()


def keyed(b: h.Bundle, name: str) -> dict[str, str]:
    """A flat-keyed cgroup file (memory.events, cgroup.events...) as a dict."""
    return dict(line.split(None, 1) for line in cgread(b, name).splitlines())


def need_controller(name: str) -> None:
    """Skip unless the host's cgroup2 root has this controller (runtimes enable it below)."""
    if name not in (CGROUP_ROOT / "cgroup.controllers").read_text().split():
        pytest.skip(f"the {name} controller is not available on this host")


def start_and_wait_ready(rt: h.Runtime, b: h.Bundle) -> dict[str, Any]:
    """create + start a container whose script touches /ready; wait for it."""
    h.assert_ok(rt.create(b, timeout=60))
    h.assert_ok(rt.start(b.id))
    h.wait_for(lambda: (b.rootfs / "ready").exists(), timeout=60, what=f"{b.id}: /ready")
    return rt.state(b.id)
