"""podman and docker: cgroup limits, stats, pause/unpause, top, update.

The host is cgroup v1 (hybrid): limits are read from /sys/fs/cgroup/<controller>/ at
the container's cgroup, which must sit below the test's cgroup parent.
"""

from __future__ import annotations

import json

import ehelpers as eh
import pytest
from edrivers import Engine
from eimage import IMAGE

SLEEPER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def start(eng: Engine, name: str, *flags: str) -> int:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", name, *flags, IMAGE,
           "sh", "-c", SLEEPER)
    eng.wait_status(name, "running")
    return eng.pid(name)


def test_limits_reach_the_cgroup(eng: Engine) -> None:
    pid = start(eng, "lim", "--memory", "64m", "--pids-limit", "33", "--cpus", "0.5")
    cgs = eh.proc_cgroups(pid)
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices"):
        assert cgs[ctrl].startswith(eng.cgroup_parent + "/"), cgs
    assert eh.cg_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert eh.cg_file(pid, "pids", "pids.max") == "33"
    quota = int(eh.cg_file(pid, "cpu", "cpu.cfs_quota_us"))
    period = int(eh.cg_file(pid, "cpu", "cpu.cfs_period_us"))
    assert quota * 2 == period, (quota, period)
    # the pids limit holds: 33 tasks at most
    res = eng("exec", "lim", "sh", "-c",
              "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo spawned")
    assert "can't fork" in res.stderr, eh.describe(res)
    assert int(eh.cg_file(pid, "pids", "pids.current")) <= 33


def test_stats(eng: Engine) -> None:
    start(eng, "st", "--memory", "64m")
    if eng.kind == "podman":
        out = eng.ok("stats", "--no-stream", "--format", "json", "st")
        rows = json.loads(out)
        assert len(rows) == 1 and rows[0]["name"] == "st", out
        usage = rows[0]["mem_usage"]  # "1.2MB / 67.11MB"
    else:
        out = eng.ok("stats", "--no-stream", "--format", "{{json .}}", "st")
        row = json.loads(out)
        assert row["Name"] == "st", out
        usage = row["MemUsage"]  # "1.2MiB / 64MiB"
    used, limit = (x.strip() for x in usage.split("/"))
    assert limit in ("67.11MB", "64MiB"), usage
    assert used[0].isdigit() and not used.startswith("0B"), usage


def test_pause_unpause(eng: Engine) -> None:
    pid = start(eng, "pz")
    eng.ok("pause", "pz")
    assert eng.status("pz") == "paused"
    assert eh.cg_file(pid, "freezer", "freezer.state") == "FROZEN"
    assert eh.h.proc_stat(pid)[0] == "D" or eh.h.proc_stat(pid)[0] == "S"
    eng.ok("unpause", "pz")
    assert eng.status("pz") == "running"
    assert eh.cg_file(pid, "freezer", "freezer.state") == "THAWED"
    assert eng.ok("exec", "pz", "echo", "alive") == "alive\n"


def test_top_lists_the_processes(eng: Engine) -> None:
    start(eng, "tp")
    eng.ok("exec", "--detach", "tp", "sleep", "4321")
    eh.wait_for(lambda: "4321" in eng.ok("top", "tp"), 20, "sleep 4321 in top")
    out = eng.ok("top", "tp")
    assert "sleep 4321" in out, out
    assert "sh -c" in out, out


def test_update_memory(eng: Engine) -> None:
    if eng.kind != "docker":
        pytest.skip("podman 4.3 has no `update` command")
    pid = start(eng, "up", "--memory", "64m")
    eng.ok("update", "--memory", "96m", "--memory-swap", "-1", "--pids-limit", "50", "up")
    assert eh.cg_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert eh.cg_file(pid, "pids", "pids.max") == "50"
