"""linux.resources.memory on cgroup v2: memory.max, memory.low, memory.swap.max, OOM."""

from __future__ import annotations

import rthelpers as h
from v2helpers import MiB, cgread, keyed


def test_limit_reservation_and_swap(created):
    b = created({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB}})
    assert cgread(b, "memory.max") == str(64 * MiB)
    assert cgread(b, "memory.low") == str(32 * MiB)
    # OCI swap is memory+swap (the v1 meaning); v2's memory.swap.max is swap alone.
    assert cgread(b, "memory.swap.max") == str(32 * MiB)


def test_allocation_beyond_the_limit_is_oom_killed(rt, bundle_with):
    b = bundle_with({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}},
                    ("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; echo $? >/rc"))
    h.assert_ok(rt.create(b, timeout=60))
    h.assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped", timeout=60)
    assert (b.rootfs / "rc").read_text().strip() == "137"  # 128 + SIGKILL
    assert cgread(b, "memory.swap.max") == "0"
    assert int(keyed(b, "memory.events")["oom_kill"]) >= 1
