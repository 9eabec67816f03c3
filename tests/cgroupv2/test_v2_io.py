"""linux.resources.blockIO on cgroup v2: io.weight (or io.bfq.weight) and io.max."""

from __future__ import annotations

import os

import pytest
from v2helpers import cgdir, cgread, need_controller


def block_device() -> tuple[int, int]:
    """major, minor of a block device: the guest's null_blk disk, else any."""
    names = sorted(os.listdir("/sys/block"), key=lambda n: (not n.startswith("nullb"), n))
    for name in names:
        try:
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().split(":")
            return int(major), int(minor)
        except OSError:
            continue
    pytest.skip("no block device")


def test_weight(created):
    need_controller("io")
    b = created({"blockIO": {"weight": 500}})
    if (cgdir(b) / "io.bfq.weight").exists():
        assert cgread(b, "io.bfq.weight").split("\n")[0] == "default 500"
    else:  # runc maps blkio's 10..1000 onto io.weight's 1..10000
        assert cgread(b, "io.weight") == f"default {1 + (500 - 10) * 9999 // 990}"


def test_throttle(created):
    need_controller("io")
    major, minor = block_device()
    dev = {"major": major, "minor": minor}
    b = created({"blockIO": {
        "throttleReadBpsDevice": [{**dev, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{**dev, "rate": 100}],
    }})
    assert f"{major}:{minor} rbps=1048576 wbps=max riops=max wiops=100" in cgread(b, "io.max")
