"""Commands that work on a live container's cgroup: pause/resume (v1 freezer), update,
events, ps and kill --all.

Facts checked against runc 1.1.5 here:
* pause writes FROZEN to freezer.state (resume: THAWED); state and list say "paused".
  A created container can be paused too, and resume brings it back to "created".
  Pausing a paused container fails ("container not running"), resuming a running one
  fails ("container not paused").
* update: flags --memory --memory-reservation --memory-swap (sizes as docker's
  RAMInBytes: "64m", "100MB", "64MiB", "1.5g" are binary multiples; "-1" unlimited),
  --cpu-share (singular: `--cpu-shares` is "flag provided but not defined"),
  --cpu-quota --cpu-period --cpuset-cpus --cpuset-mems --pids-limit (-1: max)
  --blkio-weight; 0 / absent means unchanged, and `update ID` alone succeeds and changes
  nothing.  `--resources FILE|-` takes LinuxResources JSON and ignores the other flags.
  Memory and memsw are written in the order that keeps memsw >= limit.  A limit below
  what the container uses fails (the kernel's EBUSY on v1) and changes nothing.  A
  missing container: "container does not exist"; a stopped one: "container not running".
* events --stats prints one line {"type":"stats","id":ID,"data":{...}}; `events` (default
  interval 5s) streams stats lines and {"type":"oom","id":ID} lines (memory.oom_control
  eventfd) and exits 0 once the cgroup is removed (after `delete`; it keeps running when
  the container merely stops).  --interval 0: "duration interval must be greater than 0".
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time

import cghelpers as cg
import rthelpers as h
from cghelpers import set_resources
from rthelpers import assert_ok, describe

MiB = 1 << 20

# ----------------------------------------------------------------- pause / resume


def _signal_pending(pid: int, sig: int) -> bool:
    """The signal is pending (not yet handled) for the process."""
    status = h.read(f"/proc/{pid}/status")
    bit = 1 << (sig - 1)
    return any(int(line.split()[1], 16) & bit for line in status.splitlines()
               if line.startswith(("ShdPnd:", "SigPnd:")))


def test_pause_freezes_every_process(rt, make_bundle):
    """While paused, a signal sent to the init stays pending (its handler cannot run);
    after resume the handler runs."""
    script = "trap 'echo usr1 > /tmp/got' USR1; while :; do sleep 0.05; done"
    b = make_bundle(("sh", "-c", script))
    pid = rt.create_started(b)["pid"]
    assert_ok(rt("pause", b.id))
    assert cg.cgread(b, "freezer", "freezer.state") == "FROZEN"
    assert rt.status(b.id) == "paused"
    listed = json.loads(assert_ok(rt("list", "--format", "json")).stdout)
    assert [c["status"] for c in listed if c["id"] == b.id] == ["paused"], listed
    table = assert_ok(rt("list")).stdout.splitlines()
    assert [ln.split()[2] for ln in table[1:] if ln.split()[0] == b.id] == ["paused"], table

    os.kill(pid, signal.SIGUSR1)
    h.wait_for(lambda: _signal_pending(pid, signal.SIGUSR1), 5, "SIGUSR1 pending")
    assert not h.read(f"/proc/{pid}/root/tmp/got"), "a paused process ran its handler"
    assert _signal_pending(pid, signal.SIGUSR1)

    assert_ok(rt("resume", b.id))
    assert cg.cgread(b, "freezer", "freezer.state") == "THAWED"
    assert rt.status(b.id) == "running"
    h.wait_for(lambda: h.read(f"/proc/{pid}/root/tmp/got") == "usr1\n", 10, "the handler")


def test_pause_created_container(rt, make_bundle):
    b = make_bundle()
    assert_ok(rt.create(b))
    assert_ok(rt("pause", b.id))
    assert cg.cgread(b, "freezer", "freezer.state") == "FROZEN"
    assert rt.status(b.id) == "paused"
    assert_ok(rt("resume", b.id))
    assert rt.status(b.id) == "created"
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "running")


def test_pause_paused_and_resume_running_fail(rt, make_bundle):
    b = make_bundle()
    rt.create_started(b)
    cg.assert_failed(rt, rt("resume", b.id))
    assert_ok(rt("pause", b.id))
    cg.assert_failed(rt, rt("pause", b.id))
    assert rt.status(b.id) == "paused"
    assert cg.cgread(b, "freezer", "freezer.state") == "FROZEN"


# ----------------------------------------------------------------- update


def _weight(b: h.Bundle) -> str:
    """blockIO weight of the container ("default 200" in blkio.bfq.weight -> "200")."""
    name = cg.blkio_weight_file()
    assert name, "no blkio weight file on this host"
    return cg.cgread(b, "blkio", name).splitlines()[0].split()[-1]


def _files(b: h.Bundle) -> dict[str, str]:
    names = {"memory": ("memory.limit_in_bytes", "memory.soft_limit_in_bytes",
                        "memory.memsw.limit_in_bytes"),
             "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"),
             "cpuset": ("cpuset.cpus", "cpuset.mems"), "pids": ("pids.max",)}
    return {n: cg.cgread(b, c, n) for c, ns in names.items() for n in ns}


def test_update_flags(rt, make_bundle):
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB},
                      pids={"limit": 50})
    rt.create_started(b)
    before = _files(b)
    assert_ok(rt("update", b.id))  # nothing asked, nothing changed
    assert _files(b) == before
    cpu = cg.some_cpu()
    args = ["--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "128m",
            "--cpu-share", "512", "--cpu-quota", "30000", "--cpu-period", "150000",
            "--cpuset-cpus", cpu, "--cpuset-mems", "0", "--pids-limit", "20"]
    if cg.blkio_weight_file():
        args += ["--blkio-weight", "200"]
    assert_ok(rt("update", *args, b.id))
    assert _files(b) == {
        "memory.limit_in_bytes": str(64 * MiB), "memory.soft_limit_in_bytes": str(32 * MiB),
        "memory.memsw.limit_in_bytes": str(128 * MiB), "cpu.shares": "512",
        "cpu.cfs_quota_us": "30000", "cpu.cfs_period_us": "150000", "cpuset.cpus": cpu,
        "cpuset.mems": "0", "pids.max": "20"}
    if cg.blkio_weight_file():
        assert _weight(b) == "200"
    assert_ok(rt("update", "--pids-limit", "-1", "--memory-swap", "-1", b.id))
    assert cg.cgread(b, "pids", "pids.max") == "max"
    assert int(cg.cgread(b, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60
    assert rt.status(b.id) == "running"


def test_update_memory_units(rt, make_bundle):
    b = make_bundle()
    rt.create_started(b)
    for value, want in (("64m", 64 * MiB), ("100MB", 100 * MiB), ("64MiB", 64 * MiB),
                        ("65536k", 64 * MiB), ("1g", 1024 * MiB), ("1.5g", 1536 * MiB),
                        ("96M", 96 * MiB), (str(80 * MiB), 80 * MiB)):
        assert_ok(rt("update", "--memory", value, b.id))
        assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(want), value


def test_update_bad_values_change_nothing(rt, make_bundle):
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB},
                      cpu={"shares": 700})
    rt.create_started(b)
    before = _files(b)
    for args in (["--memory", "bogus"], ["--memory", "12q"], ["--cpu-quota", "abc"],
                 ["--cpu-share", "-5"], ["--pids-limit", "many"],
                 ["--cpu-share", "512", "--memory", "x"]):
        cg.assert_failed(rt, rt("update", *args, b.id))
        assert _files(b) == before, args
    assert_ok(rt("update", "--cpu-share", "512", b.id))
    assert cg.cgread(b, "cpu", "cpu.shares") == "512"


def test_update_resources_file_and_stdin(rt, make_bundle, tmp_path):
    """Values absent from the JSON are left alone; with --resources the flags are ignored."""
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB},
                      pids={"limit": 50}, cpu={"shares": 700})
    rt.create_started(b)
    f = tmp_path / "resources.json"
    f.write_text(json.dumps({"memory": {"limit": 80 * MiB}, "cpu": {"shares": 300}}))
    assert_ok(rt("update", "--resources", str(f), "--pids-limit", "7", b.id))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(80 * MiB)
    assert cg.cgread(b, "cpu", "cpu.shares") == "300"
    assert cg.cgread(b, "pids", "pids.max") == "50", "--pids-limit must be ignored with -r"
    f.write_text(json.dumps({"pids": {"limit": 33}, "memory": {"reservation": 40 * MiB}}))
    with open(f) as stdin:
        assert_ok(rt("update", "-r", "-", b.id, stdin=stdin))
    assert cg.cgread(b, "pids", "pids.max") == "33"
    assert cg.cgread(b, "memory", "memory.soft_limit_in_bytes") == str(40 * MiB)
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(80 * MiB)
    assert cg.cgread(b, "cpu", "cpu.shares") == "300"


def test_update_resources_refused(rt, make_bundle, tmp_path):
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB})
    rt.create_started(b)
    before = _files(b)
    f = tmp_path / "resources.json"
    for text in ('{"unified": {"memory.max": "1000000"}}', "{bad json", "[1, 2]"):
        f.write_text(text)
        cg.assert_failed(rt, rt("update", "--resources", str(f), b.id))
        assert _files(b) == before, text
    cg.assert_failed(rt, rt("update", "--resources", str(tmp_path / "missing.json"), b.id))
    f.write_text('{"memory": {"limit": 100000000}}')
    assert_ok(rt("update", "--resources", str(f), b.id))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(100000000 // 4096 * 4096)


def test_update_memory_and_swap_both_directions(rt, make_bundle):
    """memsw may never go below the limit: lowering writes the limit first, raising
    writes memsw first."""
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB, "swap": 512 * MiB})
    rt.create_started(b)
    for limit, swap in ((64, 96), (512, 1024), (128, 128)):
        assert_ok(rt("update", "--memory", f"{limit}m", "--memory-swap", f"{swap}m", b.id))
        assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(limit * MiB)
        assert cg.cgread(b, "memory", "memory.memsw.limit_in_bytes") == str(swap * MiB)


def test_update_below_usage_fails(rt, make_bundle):
    """checkBeforeUpdate (runc 1.1.5 ignores the field): on v1 the kernel itself refuses
    a limit below what cannot be reclaimed (tmpfs pages, no swap here)."""
    script = "head -c 24m /dev/zero > /dev/shm/fill && echo ready > /tmp/ready; sleep 100"
    b = set_resources(make_bundle(("sh", "-c", script), write=False),
                      memory={"limit": 256 * MiB, "checkBeforeUpdate": True})
    pid = rt.create_started(b)["pid"]
    h.wait_for(lambda: h.read(f"/proc/{pid}/root/tmp/ready"), 10, "the tmpfs fill")
    assert int(cg.cgread(b, "memory", "memory.usage_in_bytes")) > 24 * MiB
    cg.assert_failed(rt, rt("update", "--memory", "8m", b.id))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(256 * MiB)
    assert rt.status(b.id) == "running"
    assert_ok(rt("update", "--memory", "128m", b.id))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(128 * MiB)


def test_update_missing_or_stopped_container(rt, make_bundle):
    b = make_bundle(("sh", "-c", "read x"))  # stdin is /dev/null: exits at once
    cg.assert_failed(rt, rt("update", "--memory", "64m", "no-such-container"),
                     "does not exist")
    assert_ok(rt.create(b))
    assert_ok(rt("update", "--memory", "64m", b.id))  # created is fine
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    cg.assert_failed(rt, rt("update", "--memory", "32m", b.id), "not running")


def test_update_is_kept_and_seen_by_events(rt, make_bundle):
    """A later update with other flags keeps the earlier values, and `events --stats`
    reports the updated limits."""
    b = set_resources(make_bundle(write=False), memory={"limit": 256 * MiB})
    pid = rt.create_started(b)["pid"]
    assert_ok(rt("update", "--memory", "64m", b.id))
    assert_ok(rt("update", "--pids-limit", "20", b.id))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert cg.cgread(b, "pids", "pids.max") == "20"
    st = rt.state(b.id)
    assert st["status"] == "running" and st["pid"] == pid
    data = _stats(rt, b.id)["data"]
    assert data["memory"]["usage"]["limit"] == 64 * MiB
    assert data["pids"]["limit"] == 20


# ----------------------------------------------------------------- events


def _stats(rt, cid):
    res = assert_ok(rt("events", "--stats", cid))
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and res.stdout.endswith("\n"), "want one JSON line:" + describe(res)
    return json.loads(lines[0])


def test_events_stats(rt, make_bundle):
    b = set_resources(make_bundle(("sh", "-c", "sleep 100 & exec sleep 100"), write=False),
                      memory={"limit": 64 * MiB}, pids={"limit": 20})
    rt.create_started(b)
    h.wait_for(lambda: len(h.cgroup_procs(b.cgroup_path)) == 2, 10, "two processes")
    ev = _stats(rt, b.id)
    assert ev["type"] == "stats" and ev["id"] == b.id, ev
    data = ev["data"]
    assert {"cpu", "memory", "pids", "blkio", "hugetlb"} <= set(data), sorted(data)
    if cg.has_controller("cpuacct"):
        assert data["cpu"]["usage"]["total"] > 0, data["cpu"]
    usage = data["memory"]["usage"]
    assert usage["limit"] == 64 * MiB, usage
    assert 0 < usage["usage"] <= 64 * MiB, usage
    assert data["pids"] == {"current": 2, "limit": 20}, data["pids"]
    assert isinstance(data["blkio"], dict) and isinstance(data["hugetlb"], dict), data


def _events_proc(rt, cid, tmp_path, *flags):
    out = open(tmp_path / f"events-{cid}.out", "w+")  # noqa: SIM115 (closed by the caller)
    err = open(tmp_path / f"events-{cid}.err", "w+")  # noqa: SIM115
    return rt.popen("events", *flags, cid, stdout=out, stderr=err), out, err


def _lines(f) -> list[dict]:
    """The complete JSON lines written so far."""
    f.seek(0)
    complete = f.read().rpartition("\n")[0]
    return [json.loads(ln) for ln in complete.splitlines()]


def _wait_lines(proc, out, err, pred, what):
    """Wait until pred(lines) holds, failing at once if `events` exits meanwhile."""
    def check():
        lines = _lines(out)
        if pred(lines):
            return lines
        assert proc.poll() is None, f"events exited ({proc.returncode}): {h.read(err.name)}"
        return None

    return h.wait_for(check, 20, what)


def test_events_interval_streams_until_the_container_is_gone(rt, make_bundle, tmp_path):
    b = set_resources(make_bundle(write=False), pids={"limit": 20})
    rt.create_started(b)
    proc, out, err = _events_proc(rt, b.id, tmp_path, "--interval", "100ms")
    with out, err:
        _wait_lines(proc, out, err, lambda lines: len(lines) >= 3, "three stats lines")
        for ev in _lines(out):
            assert ev["type"] == "stats" and ev["id"] == b.id, ev
            assert ev["data"]["pids"]["limit"] == 20, ev
        assert proc.poll() is None, "events exited while the container runs"
        assert_ok(rt.kill(b.id, "KILL"))
        rt.wait_status(b.id, "stopped")
        assert_ok(rt.delete(b.id))
        assert proc.wait(timeout=15) == 0, h.read(err.name)
        h.spawned_done(proc)


def test_events_reports_oom(rt, make_bundle, tmp_path):
    """Filling tmpfs past the memory limit (no swap) makes the kernel OOM-kill in the
    container: `events` prints {"type":"oom","id":ID}."""
    script = ("while [ ! -e /tmp/go ]; do sleep 0.05; done; "
              "head -c 48m /dev/zero > /dev/shm/fill; sleep 100")
    b = set_resources(make_bundle(("sh", "-c", script), write=False),
                      memory={"limit": 16 * MiB, "swap": 16 * MiB})
    pid = rt.create_started(b)["pid"]
    proc, out, err = _events_proc(rt, b.id, tmp_path, "--interval", "100ms")
    with out, err:
        # A stats line means events is past its OOM registration (runc prints only
        # from the loop that starts after it).
        _wait_lines(proc, out, err, bool, "a first stats line")
        with open(f"/proc/{pid}/root/tmp/go", "w"):
            pass
        _wait_lines(proc, out, err, lambda lines: [e for e in lines if e["type"] == "oom"],
                    "an oom event")
        assert {"type": "oom", "id": b.id} in _lines(out), _lines(out)
        # the event fires when the OOM starts; the kill is counted just after
        h.wait_for(lambda: int(cg.cgread(b, "memory", "memory.oom_control")
                               .split("oom_kill ")[-1]) >= 1, what="the OOM kill's count")
        assert_ok(rt.delete(b.id, force=True))
        assert proc.wait(timeout=15) == 0, h.read(err.name)
        h.spawned_done(proc)


def test_events_refused(rt, make_bundle):
    b = make_bundle()
    rt.create_started(b)
    assert _stats(rt, b.id)["type"] == "stats"
    cg.assert_failed(rt, rt("events", "--interval", "0", b.id))
    cg.assert_failed(rt, rt("events", "--stats", "no-such-container"), "does not exist")
    assert_ok(rt.kill(b.id, "KILL"))
    rt.wait_status(b.id, "stopped")
    cg.assert_failed(rt, rt("events", "--stats", b.id), "not running")


# ----------------------------------------------------------------- ps, kill --all

# each subshell says it is ready once its trap is set (a TERM before that would kill it
# without a word)
THREE_TRAPPERS = (
    "trap 'echo init >> /tmp/log' TERM; "
    "(trap 'echo c1 >> /tmp/log; exit' TERM; echo c1 >> /tmp/ready; "
    "while :; do sleep 0.1; done) & "
    "(trap 'echo c2 >> /tmp/log; exit' TERM; echo c2 >> /tmp/ready; "
    "while :; do sleep 0.1; done) & "
    "while :; do sleep 0.1; done")


def test_ps_lists_every_process_in_the_cgroup(rt, make_bundle):
    b = make_bundle(("sh", "-c", "sleep 100 & sleep 100 & exec sleep 100"))
    rt.create_started(b)
    assert_ok(rt("exec", "--detach", b.id, "sleep", "100"))
    pids = h.wait_for(lambda: (len(p := h.cgroup_procs(b.cgroup_path)) == 4) and p, 10,
                      "four processes")
    listed = json.loads(assert_ok(rt("ps", "--format", "json", b.id)).stdout)
    assert sorted(listed) == sorted(pids), (listed, pids)
    table = assert_ok(rt("ps", b.id)).stdout.splitlines()
    col = table[0].split().index("PID")
    assert sorted(int(ln.split()[col]) for ln in table[1:]) == sorted(pids), table


def test_kill_all_signals_every_process(rt, make_bundle):
    b = make_bundle(("sh", "-c", THREE_TRAPPERS))
    pid = rt.create_started(b)["pid"]
    h.wait_for(lambda: sorted(h.read(f"/proc/{pid}/root/tmp/ready").split()) == ["c1", "c2"],
               10, "both subshells' traps")
    assert_ok(rt.kill(b.id, "TERM", "--all"))
    # a set: a child the init has forked but not yet exec'd (its next `sleep`) is also in
    # the cgroup, gets TERM too, and runs the init's trap, so "init" may come twice
    h.wait_for(lambda: set(h.read(f"/proc/{pid}/root/tmp/log").split())
               == {"c1", "c2", "init"}, 10, "TERM in the init and both subshells")


# ----------------------------------------------------------------- the runtime's own tasks


def _tasks_by_process(cgroup_path: str) -> dict[int, set[str]]:
    """Thread-group id -> the cgroup directories (any hierarchy) one of its threads is in."""
    found: dict[int, set[str]] = {}
    for d in h.cgroup_dirs(cgroup_path):
        name = "tasks" if os.path.exists(f"{d}/tasks") else "cgroup.threads"
        for tid in h.read(f"{d}/{name}").split():
            status = h.read(f"/proc/{tid}/status") if os.path.exists(f"/proc/{tid}") else ""
            tgid = next((int(line.split()[1]) for line in status.splitlines()
                         if line.startswith("Tgid:")), int(tid))
            found.setdefault(tgid, set()).add(d)
    return found


def test_runtime_tasks_do_not_stay_in_the_container_cgroup(rt, make_bundle):
    """Only the container's processes are in its cgroup: not a foreground `run` or
    `exec` that waits for them (pyrt's init and exec child move themselves in through
    files the runtime opened: cgroups/base.py, SelfJoin)."""
    b = make_bundle(("sleep", "100"))
    with tempfile.TemporaryFile() as out:
        runner = rt.popen("run", "--bundle", str(b.path), b.id, stdout=out, stderr=out)
        h.wait_for(lambda: rt("state", b.id).returncode == 0
                   and rt.state(b.id)["status"] == "running", 10, "container running")
        execer = rt.popen("exec", b.id, "sleep", "100", stdout=out, stderr=out)
        h.wait_for(lambda: len(h.cgroup_procs(b.cgroup_path)) == 2, 10, "the exec'd sleep")
        time.sleep(0.2)  # a runtime task that lingered would still be there
        found = _tasks_by_process(b.cgroup_path)
        assert len(found) == 2, found
        assert not found.keys() & {runner.pid, execer.pid}, (found, runner.pid, execer.pid)
        assert_ok(rt.kill(b.id, "KILL"))
        runner.wait(timeout=10)
        execer.wait(timeout=10)
