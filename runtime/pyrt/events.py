"""`events`: a container's cgroup statistics and OOM kills, one JSON object per line, in
the shape runc prints (`{"type": "stats"|"oom", "id": ..., "data": ...}`)."""

from __future__ import annotations

import select
import sys
import time

from pyrt import cgroups, jsonio
from pyrt.errors import PyrtError
from pyrt.state import STOPPED, Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrt.cgroups.base import Cgroup

CHECK_EVERY = 0.5  # seconds: how soon a stream notices that the container has gone


def _emit(kind: str, container_id: str, data: dict[str, Any] | None = None) -> None:
    event: dict[str, Any] = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(jsonio.dumps(event, compact=True) + "\n")
    sys.stdout.flush()


def _open(root: str, container_id: str) -> Cgroup:
    """The container's cgroup; the lock is not kept, so a stream never blocks `delete`."""
    with Container.open(root, container_id, shared=True) as ctr:
        st = ctr.require_state()
        if ctr.status() == STOPPED:
            raise PyrtError(f"container {container_id}", "container not running")
        return cgroups.from_paths(st.cgroup_paths)


def stats_once(root: str, container_id: str) -> None:
    _emit("stats", container_id, _open(root, container_id).stats())


def stream(root: str, container_id: str, interval: float) -> None:
    """Stats every `interval` seconds and each OOM kill as it happens, until the container's
    cgroup is gone (v1) or empty (v2), as runc."""
    cgroup = _open(root, container_id)
    watch = cgroup.oom_events()
    poller = select.poll()
    poller.register(watch.fd, watch.poll_events)
    next_stats = time.monotonic() + interval
    try:
        while not watch.finished():
            wait = min(max(next_stats - time.monotonic(), 0.0), CHECK_EVERY)
            if poller.poll(int(wait * 1000)):
                for _ in range(watch.consume()):
                    _emit("oom", container_id)
            if time.monotonic() >= next_stats and cgroup.exists():
                _emit("stats", container_id, cgroup.stats())
                next_stats = time.monotonic() + interval
    finally:
        watch.close()
