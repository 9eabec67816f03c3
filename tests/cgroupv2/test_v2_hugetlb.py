"""linux.resources.hugepageLimits on cgroup v2: hugetlb.<size>.max."""

from __future__ import annotations

import os

import pytest
from v2helpers import MiB, cgread, need_controller


def test_limit(created):
    need_controller("hugetlb")
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages")
    b = created({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert cgread(b, "hugetlb.2MB.max") == str(4 * MiB)
