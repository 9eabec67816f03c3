"""`run`: foreground exit status, stdio, --keep, -d (CALLERS.md 2.3 exit codes, 3.5)."""

from __future__ import annotations

import subprocess
import tempfile
import time

import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe


def test_run_exit_code_propagates(rt, make_bundle):
    b = make_bundle(("sh", "-c", "exit 3"))
    res = rt.run(b)
    assert res.returncode == 3, describe(res)


def test_run_exit_zero(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.run(b))


def test_run_stdout_and_stderr_reach_caller(rt, make_bundle):
    b = make_bundle(("sh", "-c", "echo hello-from-container; echo oops-on-stderr >&2"))
    res = assert_ok(rt.run(b))
    assert "hello-from-container" in res.stdout, describe(res)
    assert "oops-on-stderr" in res.stderr, describe(res)
    assert "oops-on-stderr" not in res.stdout


def test_run_stdin_reaches_container(rt, make_bundle, tmp_path):
    b = make_bundle(("cat",))
    inp = tmp_path / "input.txt"
    inp.write_text("line one\nline two\n")
    with open(inp) as f:
        res = assert_ok(rt.run(b, stdin=f))
    assert res.stdout == "line one\nline two\n", describe(res)


def test_run_killed_by_signal_is_128_plus_sig(rt, make_bundle):
    b = make_bundle(("sleep", "100"))
    with tempfile.TemporaryFile() as out:
        p = rt.popen("run", "--bundle", str(b.path), b.id, stdout=out, stderr=out)
        h.wait_for(lambda: rt("state", b.id).returncode == 0
                   and rt.state(b.id)["status"] == "running", 10, "container running")
        assert_ok(rt.kill(b.id, "KILL"))
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("run did not exit after its container was killed") from None
        out.seek(0)
        assert rc == 128 + 9, f"run exited {rc}; output: {out.read()!r}"


def test_run_forwards_signals(rt, make_bundle):
    b = make_bundle(("sh", "-c", 'trap "exit 42" TERM; while true; do sleep 0.1; done'))
    with tempfile.TemporaryFile() as out:
        p = rt.popen("run", "--bundle", str(b.path), b.id, stdout=out, stderr=out)
        h.wait_for(lambda: rt("state", b.id).returncode == 0
                   and rt.state(b.id)["status"] == "running", 10, "container running")
        time.sleep(0.2)  # let sh install its trap
        p.terminate()
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("run did not forward SIGTERM to the container") from None
        out.seek(0)
        assert rc == 42, f"run exited {rc}; output: {out.read()!r}"


def test_run_deletes_container_afterwards(rt, make_bundle):
    b = make_bundle(("sh", "-c", "echo done"))
    assert_ok(rt.run(b))
    assert_fails(rt("state", b.id), 1, "does not exist")
    assert b.id not in rt.list_ids()
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_run_failure_leaves_nothing(rt, make_bundle):
    b = make_bundle(("sh", "-c", "exit 7"))
    res = rt.run(b)
    assert res.returncode == 7, describe(res)
    assert_fails(rt("state", b.id), 1, "does not exist")
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_run_keep_leaves_stopped_container(rt, make_bundle):
    b = make_bundle(("sh", "-c", "exit 5"))
    res = rt.run(b, "--keep")
    assert res.returncode == 5, describe(res)
    st = rt.state(b.id)
    assert st["status"] == "stopped", st
    assert b.id in rt.list_ids()
    assert_ok(rt.delete(b.id))
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_run_detached(rt, make_bundle, tmp_path):
    b = make_bundle(("sleep", "100"))
    pidfile = tmp_path / "run.pid"
    t0 = time.monotonic()
    res = assert_ok(rt.run(b, "-d", "--pid-file", str(pidfile)))
    assert time.monotonic() - t0 < 10
    st = rt.state(b.id)
    assert st["status"] == "running", st
    assert h.pid_alive(st["pid"])
    assert int(pidfile.read_text()) == st["pid"], describe(res)
    assert_ok(rt.delete(b.id, force=True))
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path, [st["pid"]])


def test_run_detached_long_flag(rt, make_bundle):
    b = make_bundle(("sleep", "100"))
    assert_ok(rt("run", "--detach", "--bundle", str(b.path), b.id))
    assert rt.status(b.id) == "running"
