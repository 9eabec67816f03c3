"""podman and docker: run, exit codes, detached containers, exec, stop, kill, rm.

Each test runs with pyrt and with runc as the engine's runtime (the ``eng`` fixture)
and asserts the same outcome for both.
"""

from __future__ import annotations

import json

import ehelpers as eh
from edrivers import Engine
from eimage import IMAGE

# A pid 1 that exits 0 on SIGTERM (busybox sleep as pid 1 would ignore it).
TERMINABLE = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def test_run_rm_echo(eng: Engine) -> None:
    res = eng.run("--rm", IMAGE, "echo", "hello from", eng.runtime.name)
    eh.ok(res)
    assert res.stdout == f"hello from {eng.runtime.name}\n"
    assert eng.ok("ps", "--all", "--quiet") == ""


def test_exit_code_propagates(eng: Engine) -> None:
    res = eng.run("--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 42")
    assert res.returncode == 42, eh.describe(res)
    assert res.stdout == "out\n"
    assert "err" in res.stderr


def test_foreground_run_killed_exits_137(eng: Engine) -> None:
    fg = eh.h.spawn(eng.argv("run", *eng.run_flags(), "--name", "fg", IMAGE, "sleep", "1000"),
                    env=eng.env(), stdin=eh.subprocess.DEVNULL,
                    stdout=eh.subprocess.DEVNULL, stderr=eh.subprocess.DEVNULL)
    try:
        eh.wait_for(lambda: eng("inspect", "--format", "{{.State.Status}}", "fg")
                    .stdout.strip() == "running", 30, "fg running")
        eng.ok("kill", "fg")
        assert fg.wait(timeout=30) == 137
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
        eh.h.spawned_done(fg)


def test_detached_exec_stop_rm(eng: Engine) -> None:
    cid = eng.ok("run", *eng.run_flags(), "--detach", "--name", "lc1", IMAGE,
                 "sh", "-c", TERMINABLE).strip()
    assert cid
    eng.wait_status("lc1", "running")
    pid = eng.pid("lc1")
    assert pid > 0 and eh.h.pid_alive(pid)
    assert eng.ok("exec", "lc1", "sh", "-c", "echo exec in $(hostname); cat /proc/1/comm") \
        .splitlines()[1] == "sh"
    res = eng("exec", "lc1", "sh", "-c", "exit 7")
    assert res.returncode == 7, eh.describe(res)
    eng.ok("stop", "--time", "10", "lc1")
    assert eng.status("lc1") == "exited"
    assert eng.inspect("lc1", "{{.State.ExitCode}}") == "0"
    assert not eh.h.pid_alive(pid)
    eng.ok("rm", "lc1")
    assert eng.ok("ps", "--all", "--quiet") == ""


def test_kill_with_a_signal(eng: Engine) -> None:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "k1", IMAGE, "sh", "-c",
           "trap 'exit 12' USR1; while :; do sleep 0.1; done")
    eng.wait_status("k1", "running")
    eng.ok("kill", "--signal", "USR1", "k1")
    eng.wait_status("k1", "exited")
    assert eng.inspect("k1", "{{.State.ExitCode}}") == "12"
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "k2", IMAGE, "sleep", "1000")
    eng.wait_status("k2", "running")
    eng.ok("kill", "k2")  # SIGKILL by default
    eng.wait_status("k2", "exited")
    assert eng.inspect("k2", "{{.State.ExitCode}}") == "137"
    eng.ok("rm", "k1", "k2")


def test_rm_force_running(eng: Engine) -> None:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "rf", IMAGE,
           "sh", "-c", TERMINABLE)
    eng.wait_status("rf", "running")
    pid = eng.pid("rf")
    eng.ok("rm", "--force", "rf")
    eh.wait_for(lambda: not eh.h.pid_alive(pid), 10, "the container's process to go")
    assert eng.ok("ps", "--all", "--quiet") == ""


def test_twenty_in_a_row_leave_nothing(eng: Engine) -> None:
    mounts = eh.mount_points(eng.mount_ns_pid)
    for i in range(20):
        res = eng.run("--rm", IMAGE, "sh", "-c", f"echo {i}")
        eh.ok(res)
        assert res.stdout == f"{i}\n"
    assert eng.ok("ps", "--all", "--quiet") == ""
    assert not (eng.state_root.is_dir() and list(eng.state_root.iterdir()))
    assert eh.cgroup_subdirs(eng.cgroup_parent) <= eng.allowed_cgroups
    assert sorted(eh.mount_points(eng.mount_ns_pid)) == sorted(mounts)


def test_the_runtime_under_test_runs_the_container(eng: Engine) -> None:
    """The engine really calls ``eng.runtime`` with ``eng.state_root`` as --root."""
    cid = eng.ok("run", *eng.run_flags(), "--detach", "--name", "which", IMAGE,
                 "sh", "-c", TERMINABLE).strip()
    eng.wait_status("which", "running")
    res = eh.ok(eh.run([eng.runtime.path, "--root", str(eng.state_root), "state", cid]))
    st = json.loads(res.stdout)
    assert (st["id"], st["status"], st["pid"]) == (cid, "running", eng.pid("which"))
    listed = eh.ok(eh.run([eng.runtime.path, "--root", str(eng.state_root), "list", "-q"]))
    assert listed.stdout.split() == [cid]
