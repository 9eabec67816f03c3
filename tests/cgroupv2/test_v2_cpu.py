"""linux.resources.cpu on cgroup v2: cpu.weight, cpu.max, cpuset.*, cpu.max.burst."""

from __future__ import annotations

import pytest
import rthelpers as h
from v2helpers import cgdir, cgread


def test_shares_quota_period_cpus_mems(rt, created):
    b = created({"cpu": {"shares": 1024, "quota": 50000, "period": 100000,
                         "cpus": "0", "mems": "0"}})
    # shares (v1, 2..262144) map onto weight (1..10000) as runc does it:
    # 1 + ((shares - 2) * 9999) / 262142
    assert cgread(b, "cpu.weight") == str(1 + ((1024 - 2) * 9999) // 262142) == "39"
    assert cgread(b, "cpu.max") == "50000 100000"
    assert cgread(b, "cpuset.cpus") == "0"
    assert cgread(b, "cpuset.mems") == "0"
    status = h.read(f"/proc/{rt.state(b.id)['pid']}/status")
    assert "Cpus_allowed_list:\t0\n" in status, status


@pytest.mark.pyrt_only  # runtime-spec 1.1 cpu.burst; runc 1.1.5 ignores it
def test_burst(created):
    b = created({"cpu": {"quota": 50000, "period": 100000, "burst": 20000}})
    if not (cgdir(b) / "cpu.max.burst").exists():
        pytest.skip("this kernel has no cpu.max.burst")
    assert cgread(b, "cpu.max.burst") == "20000"
