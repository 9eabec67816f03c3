"""linux.resources.pids on cgroup v2: pids.max, and fork failing beyond it."""

from __future__ import annotations

from v2helpers import cgread, keyed, start_and_wait_ready

# The inner sh forks sleeps until fork fails; the outer one then uses builtins only.
FORK_BOMB = ("sh -c 'while :; do sleep 1000 & done' 2>/err;"
             " echo >/ready; exec sleep 1000")


def test_limit_and_fork_failure(rt, bundle_with):
    b = bundle_with({"pids": {"limit": 8}}, ("sh", "-c", FORK_BOMB))
    start_and_wait_ready(rt, b)
    assert cgread(b, "pids.max") == "8"
    assert int(cgread(b, "pids.current")) <= 8
    assert int(keyed(b, "pids.events")["max"]) >= 1
    assert "fork" in (b.rootfs / "err").read_text()
