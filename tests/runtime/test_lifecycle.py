"""create / start / state / kill / delete, and operations on the wrong state.

Facts encoded here were checked against runc 1.1.5 (CALLERS.md 2.3, 3.1, 3.2).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

TRAP_TERM = 'trap "exit 0" TERM; while true; do sleep 0.1; done'


def test_create_state_created(rt, bundle):
    res = assert_ok(rt.create(bundle))
    st = rt.state(bundle.id)
    assert st["status"] == "created", st
    assert st["id"] == bundle.id
    assert isinstance(st["pid"], int) and st["pid"] > 0, st
    assert os.path.isabs(st["bundle"]), st
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path), st
    assert re.match(r"^\d+\.\d+\.\d+", str(st.get("ociVersion"))), st
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", st.get("created", "")), st
    pid = st["pid"]
    assert h.pid_alive(pid), f"init {pid} is not alive after create: {h.proc_stat(pid)}"
    assert h.ns_inode(pid, "pid") != h.ns_inode("self", "pid"), "init is not in a new pid namespace"
    assert res.stdout == "", "create printed to stdout:" + describe(res)


def test_state_output_is_indented_json_without_trailing_newline(rt, bundle):
    assert_ok(rt.create(bundle))
    res = assert_ok(rt("state", bundle.id))
    json.loads(res.stdout)
    assert res.stdout.startswith("{\n  \""), "state is not 2-space indented JSON:" + describe(res)
    assert not res.stdout.endswith("\n"), "runc prints state without a trailing newline"


@pytest.mark.pyrt_only
def test_state_oci_version_is_config_version(rt, bundle):
    # pyrt-only: CALLERS.md 2.3 says state.ociVersion echoes config.json's ociVersion;
    # runc 1.1.5 prints its own spec version ("1.0.2-dev") instead.
    assert_ok(rt.create(bundle))
    assert rt.state(bundle.id)["ociVersion"] == bundle.config["ociVersion"]


def test_create_leaves_init_child_of_caller_and_in_cgroup(rt, bundle):
    """CALLERS 2.6.2: no runtime process stays as init's parent (the subreaper caller
    adopts it) and the init is in its final cgroup when create returns."""
    assert_ok(rt.create(bundle))
    pid = rt.state(bundle.id)["pid"]
    st = h.proc_stat(pid)
    assert st is not None and st[1] == os.getpid(), (
        f"init {pid} has parent {st and st[1]}, expected the (subreaper) caller {os.getpid()}"
    )
    lines = h.read(f"/proc/{pid}/cgroup").splitlines()
    checked = 0
    for line in lines:
        _, controllers, path = line.split(":", 2)
        ctrls = set(controllers.split(","))
        if ctrls & {"memory", "pids", "cpu", "devices", "freezer", "blkio"}:
            assert path == bundle.cgroup_path, f"init not in {bundle.cgroup_path}: {line}"
            checked += 1
        if controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            assert path == bundle.cgroup_path, f"init not in {bundle.cgroup_path}: {line}"
            checked += 1
    assert checked, f"no cgroup line checked in {lines}"


def test_pid_file_absolute(rt, bundle, tmp_path):
    pidfile = tmp_path / "init.pid"
    assert_ok(rt.create(bundle, "--pid-file", str(pidfile)))
    assert pidfile.exists(), "pid file not written before create returned"
    text = pidfile.read_text()
    assert re.fullmatch(r"[0-9]+", text), f"pid file must be a bare decimal pid, got {text!r}"
    assert int(text) == rt.state(bundle.id)["pid"]


def test_pid_file_relative_to_caller_cwd(rt, bundle):
    assert_ok(rt("create", "--pid-file", "rel.pid", "--bundle", str(bundle.path), bundle.id,
                 cwd=rt.workdir))
    pidfile = rt.workdir / "rel.pid"
    assert pidfile.exists(), (
        f"relative pid file not in caller cwd; bundle has {os.listdir(bundle.path)}")
    assert int(pidfile.read_text()) == rt.state(bundle.id)["pid"]
    assert not (bundle.path / "rel.pid").exists()


def test_start_runs_process(rt, make_bundle):
    b = make_bundle(("sh", "-c", "echo hi > /tmp/out; sleep 100"))
    assert_ok(rt.create(b))
    pid = rt.state(b.id)["pid"]
    out = f"/proc/{pid}/root/tmp/out"
    time.sleep(0.1)
    assert not os.path.exists(out), "process ran before start"
    assert_ok(rt.start(b.id))
    h.wait_for(lambda: h.read(out) == "hi\n", 10, "/tmp/out")
    st = rt.state(b.id)
    assert st["status"] == "running" and st["pid"] == pid, st


@pytest.mark.parametrize(
    "sig,script",
    [
        ("TERM", TRAP_TERM),
        ("SIGTERM", TRAP_TERM),
        ("15", TRAP_TERM),
        ("term", TRAP_TERM),
        ("sigkill", "sleep 100"),
        ("KILL", "sleep 100"),
        ("9", "sleep 100"),
        ("SigKill", "sleep 100"),
    ],
)
def test_kill_then_delete(rt, make_bundle, sig, script):
    b = make_bundle(("sh", "-c", script))
    st = rt.create_started(b)
    pid = st["pid"]
    time.sleep(0.1)  # let sh install its trap
    assert_ok(rt.kill(b.id, sig))
    st = rt.wait_status(b.id, "stopped", timeout=10)
    assert st.get("pid", 0) == 0, f"runc reports pid 0 for a stopped container: {st}"
    assert_ok(rt.delete(b.id))
    res = rt("state", b.id)
    assert_fails(res, 1, "does not exist")
    assert b.id not in rt.list_ids()
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path, [pid])


def test_kill_default_signal_is_term(rt, make_bundle):
    b = make_bundle(("sh", "-c", TRAP_TERM))
    rt.create_started(b)
    time.sleep(0.1)
    assert_ok(rt("kill", b.id))
    rt.wait_status(b.id, "stopped")


def test_status_stopped_with_zombie_init_and_after_reaping(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    pid = rt.state(b.id)["pid"]
    assert_ok(rt.start(b.id))
    # We are the subreaper, nobody else reaps it: it stays a zombie until we do.
    h.wait_for(lambda: (h.proc_stat(pid) or ("?",))[0] == "Z", 10, f"init {pid} to exit")
    st = rt.state(b.id)
    assert st["status"] == "stopped", f"zombie init must read as stopped: {st}"
    os.waitpid(pid, 0)
    assert rt.state(b.id)["status"] == "stopped"
    assert_ok(rt.delete(b.id))


# ----------------------------------------------------------------- wrong state


def test_start_running_fails(rt, bundle):
    rt.create_started(bundle)
    res = assert_fails(rt.start(bundle.id), 1)
    assert rt.status(bundle.id) == "running", "failed start changed the container:" + describe(res)


def test_start_stopped_fails(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    assert_fails(rt.start(b.id), 1)
    assert rt.status(b.id) == "stopped"


def test_kill_stopped_fails_not_running(rt, bundle):
    rt.create_started(bundle)
    assert_ok(rt.kill(bundle.id, "KILL"))
    rt.wait_status(bundle.id, "stopped")
    res = assert_fails(rt.kill(bundle.id, "KILL"), 1)
    assert "not running" in res.stderr.lower(), (
        "containerd maps 'container not running' to 'process already finished':" + describe(res)
    )


@pytest.mark.pyrt_only
def test_kill_stopped_message_exact(rt, bundle):
    # pyrt-only: the one-line error format `pyrt: <what>: <why>` (DESIGN.md).
    rt.create_started(bundle)
    assert_ok(rt.kill(bundle.id, "KILL"))
    rt.wait_status(bundle.id, "stopped")
    res = assert_fails(rt.kill(bundle.id, "KILL"), 1, "container not running")
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"^pyrt: [^:]+: .+", lines[0]), describe(res)


def test_kill_all_stopped_succeeds(rt, bundle):
    rt.create_started(bundle)
    assert_ok(rt.kill(bundle.id, "KILL"))
    rt.wait_status(bundle.id, "stopped")
    res = assert_ok(rt.kill(bundle.id, "KILL", "--all"))
    assert res.stdout == ""
    assert_ok(rt.kill(bundle.id, "9", "-a"))
    assert rt.status(bundle.id) == "stopped"


def test_kill_all_running(rt, bundle):
    rt.create_started(bundle)
    assert_ok(rt.kill(bundle.id, "KILL", "--all"))
    rt.wait_status(bundle.id, "stopped")


def test_kill_created_container(rt, bundle):
    assert_ok(rt.create(bundle))
    pid = rt.state(bundle.id)["pid"]
    assert_ok(rt.kill(bundle.id, "KILL"))
    rt.wait_status(bundle.id, "stopped")
    assert not h.pid_alive(pid)
    assert_ok(rt.delete(bundle.id))
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, rt.root, bundle.cgroup_path, bundle.path, [pid])


def test_delete_running_without_force_fails(rt, bundle):
    st = rt.create_started(bundle)
    res = assert_fails(rt.delete(bundle.id), 1)
    assert "running" in res.stderr or "not stopped" in res.stderr, describe(res)
    assert h.pid_alive(st["pid"])
    assert rt.status(bundle.id) == "running"


def test_delete_force_running(rt, bundle):
    pid = rt.create_started(bundle)["pid"]
    assert_ok(rt.delete(bundle.id, force=True))
    assert not h.pid_alive(pid), "delete --force returned before the init died"
    assert_fails(rt("state", bundle.id), 1, "does not exist")
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, rt.root, bundle.cgroup_path, bundle.path, [pid])


def test_delete_force_created(rt, bundle):
    assert_ok(rt.create(bundle))
    pid = rt.state(bundle.id)["pid"]
    assert_ok(rt("delete", "-f", bundle.id))
    assert not h.pid_alive(pid)
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, rt.root, bundle.cgroup_path, bundle.path, [pid])


def test_delete_force_missing_is_ok(rt):
    res = rt("delete", "--force", "no-such-container")
    assert res.returncode == 0, "delete --force of a missing id must exit 0:" + describe(res)


def test_delete_created_without_force_removes_it(rt, bundle):
    """runc (and crun, youki) kill and remove a *created* container on plain delete,
    unlike the spec, which says error (CALLERS 3.2)."""
    assert_ok(rt.create(bundle))
    pid = rt.state(bundle.id)["pid"]
    assert_ok(rt.delete(bundle.id))
    assert not h.pid_alive(pid)
    assert_fails(rt("state", bundle.id), 1, "does not exist")
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, rt.root, bundle.cgroup_path, bundle.path, [pid])


def test_delete_stopped(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    assert_ok(rt.delete(b.id))
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


@pytest.mark.parametrize("cmd", ["state", "start", "kill", "delete"])
def test_unknown_id(rt, cmd):
    res = assert_fails(rt(cmd, "no-such-container"), 1, "does not exist")
    assert not (rt.root / "no-such-container").exists(), describe(res)


def test_kill_bad_signal(rt, bundle):
    rt.create_started(bundle)
    for bad in ("NOTASIGNAL", "SIGFOO", "99999", "SIGKILLX"):
        res = rt.kill(bundle.id, bad)
        assert res.returncode == 1, f"kill {bad!r} should fail:" + describe(res)
        assert res.stderr.strip(), describe(res)
    assert rt.status(bundle.id) == "running"


def _take_pid(target: int, tries: int = 20) -> subprocess.Popen | None:
    """Spawn `sleep` with exactly pid ``target`` via /proc/sys/kernel/ns_last_pid."""
    for _ in range(tries):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(target - 1))
        p = subprocess.Popen(["sleep", "30"])
        if p.pid == target:
            return p
        p.kill()
        p.wait()
    return None


def test_stopped_status_survives_pid_reuse(rt, make_bundle):
    """After the init died and was reaped, another process gets its pid: the container
    must still read as stopped and kill must not signal the stranger (runc saves the
    init's start time from /proc/PID/stat and compares it)."""
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    pid = rt.state(b.id)["pid"]
    assert_ok(rt.start(b.id))
    h.wait_for(lambda: (h.proc_stat(pid) or ("?",))[0] == "Z", 10, f"init {pid} to exit")
    os.waitpid(pid, 0)
    stranger = _take_pid(pid)
    if stranger is None:
        pytest.skip(f"could not get pid {pid} reused (busy system)")
    try:
        st = rt.state(b.id)
        assert st["status"] == "stopped", f"pid {pid} reused by an unrelated process: {st}"
        res = rt.kill(b.id, "KILL")
        assert res.returncode == 1, "kill of a stopped container must fail:" + describe(res)
        assert stranger.poll() is None, "kill signalled the process that reused the pid"
        assert_ok(rt.delete(b.id))
        assert stranger.poll() is None, "delete signalled the process that reused the pid"
    finally:
        stranger.kill()
        stranger.wait()
