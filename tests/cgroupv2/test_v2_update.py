"""`update` (flags and --resources) and `events --stats` on cgroup v2."""

from __future__ import annotations

import json

import rthelpers as h
from v2helpers import MiB, cgread


def test_update_flags(rt, created):
    b = created({"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}})
    h.assert_ok(rt("update", "--memory", str(128 * MiB), "--pids-limit", "30",
                   "--cpu-quota", "20000", "--cpu-period", "100000", "--cpu-share", "512", b.id))
    assert cgread(b, "memory.max") == str(128 * MiB)
    assert cgread(b, "pids.max") == "30"
    assert cgread(b, "cpu.max") == "20000 100000"
    assert cgread(b, "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)


def test_update_resources_json(rt, created, tmp_path):
    b = created({"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}})
    resources = {"memory": {"limit": 96 * MiB}, "pids": {"limit": 40},
                 "cpu": {"quota": 30000, "period": 100000, "cpus": "0"}}
    src = tmp_path / "resources.json"
    src.write_text(json.dumps(resources))
    with open(src) as f:
        h.assert_ok(rt("update", "--resources", "-", b.id, stdin=f))
    assert cgread(b, "memory.max") == str(96 * MiB)
    assert cgread(b, "pids.max") == "40"
    assert cgread(b, "cpu.max") == "30000 100000"
    assert cgread(b, "cpuset.cpus") == "0"


def test_events_stats(rt, bundle_with):
    b = bundle_with({"memory": {"limit": 64 * MiB}})
    rt.create_started(b)
    res = h.assert_ok(rt("events", "--stats", b.id))
    ev = json.loads(res.stdout)
    assert ev["type"] == "stats" and ev["id"] == b.id, ev
    data = ev["data"]
    assert data["memory"]["usage"]["usage"] > 0, data
    assert data["memory"]["usage"]["limit"] == 64 * MiB, data
    assert data["pids"]["current"] >= 1, data
    assert data["cpu"]["usage"]["total"] > 0, data
