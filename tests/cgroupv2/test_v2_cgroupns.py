"""A cgroup namespace and a cgroup mount inside the container show its own subtree."""

from __future__ import annotations

import rthelpers as h
from v2helpers import MiB

SCRIPT = (
    "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max;"
    " grep ' /sys/fs/cgroup ' /proc/self/mountinfo"
)


def test_own_subtree(rt, bundle_with):
    b = bundle_with({"memory": {"limit": 64 * MiB}, "pids": {"limit": 50}}, ("sh", "-c", SCRIPT))
    b.add_mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "ro"])
    res = h.assert_ok(rt.run(b, timeout=60))
    lines = res.stdout.splitlines()
    assert lines[:3] == ["0::/", str(64 * MiB), "50"], h.describe(res)
    mount = lines[3].split()
    assert mount[3] == "/" and mount[mount.index("-") + 1] == "cgroup2", h.describe(res)
