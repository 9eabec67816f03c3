"""linux.resources.unified: cgroup v2 files written as named; bad keys rejected."""

from __future__ import annotations

import pytest
import rthelpers as h
from v2helpers import MiB, cgdir, cgread


def test_files_written_as_named(created):
    b = created({"unified": {"memory.high": str(48 * MiB), "pids.max": "20",
                             "cpu.weight": "77"}})
    assert cgread(b, "memory.high") == str(48 * MiB)
    assert cgread(b, "pids.max") == "20"
    assert cgread(b, "cpu.weight") == "77"


@pytest.mark.parametrize(("resources", "mentions"), [
    ({"unified": {"memory.no_such_file": "1"}}, "memory.no_such_file"),
    ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}}, "swap"),
], ids=["unknown-unified-file", "swap-below-limit"])
def test_rejected(rt, bundle_with, resources, mentions):
    b = bundle_with(resources)
    h.assert_fails(rt.create(b, timeout=60), code=1, stderr_has=mentions)
    assert not cgdir(b).exists()
    assert not (rt.root / b.id).exists()
