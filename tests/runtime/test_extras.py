"""Commands the engines use beyond the basic lifecycle (CALLERS.md 2.4, 2.6):
`ps --format json`, `pause`/`resume`, `exec`, `features`."""

from __future__ import annotations

import json

import rthelpers as h
from rthelpers import assert_ok, describe


def test_ps_json(rt, bundle):
    pid = rt.create_started(bundle)["pid"]
    res = assert_ok(rt("ps", "--format", "json", bundle.id))
    pids = json.loads(res.stdout)
    assert isinstance(pids, list) and all(isinstance(p, int) for p in pids), describe(res)
    assert pid in pids, describe(res)


def test_pause_resume(rt, bundle):
    rt.create_started(bundle)
    assert_ok(rt("pause", bundle.id))
    assert rt.status(bundle.id) == "paused"
    assert_ok(rt("resume", bundle.id))
    assert rt.status(bundle.id) == "running"


def test_delete_force_paused(rt, bundle):
    pid = rt.create_started(bundle)["pid"]
    assert_ok(rt("pause", bundle.id))
    assert_ok(rt.delete(bundle.id, force=True))
    assert not h.pid_alive(pid)
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, rt.root, bundle.cgroup_path, bundle.path, [pid])


def test_exec_output_and_exit_code(rt, bundle):
    rt.create_started(bundle)
    res = rt("exec", bundle.id, "sh", "-c", "echo in-exec $$; hostname; exit 4")
    assert res.returncode == 4, describe(res)
    words = res.stdout.split()
    assert words[0] == "in-exec" and words[1] != "1", "exec must be a new process" + describe(res)
    assert words[2] == h.DEFAULT_HOSTNAME, describe(res)


def test_exec_process_json_detached_pid_file(rt, bundle, tmp_path):
    """The containerd shim's form: exec --process F --detach --pid-file P ID."""
    init = rt.create_started(bundle)["pid"]
    proc = dict(bundle.config["process"])
    proc["args"] = ["sh", "-c", "echo exec-ran > /tmp/exec-out; sleep 100"]
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    pidfile = tmp_path / "exec.pid"
    assert_ok(rt("exec", "--process", str(pf), "--detach", "--pid-file", str(pidfile), bundle.id))
    text = pidfile.read_text()
    assert text.isdigit(), f"pid file {text!r}"
    epid = int(text)
    assert h.pid_alive(epid) and epid != init
    assert h.ns_inode(epid, "pid") == h.ns_inode(init, "pid")
    assert h.ns_inode(epid, "mnt") == h.ns_inode(init, "mnt")
    h.wait_for(lambda: h.read(f"/proc/{init}/root/tmp/exec-out") == "exec-ran\n",
               10, "exec output")


def test_exec_in_stopped_container_fails(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    res = rt("exec", b.id, "true")
    assert res.returncode != 0 and res.stderr.strip(), describe(res)


def test_exec_unknown_container(rt):
    res = rt("exec", "no-such-container", "true")
    assert res.returncode != 0, describe(res)
    assert "does not exist" in res.stderr, describe(res)


def test_features(rt):
    res = assert_ok(rt("features", global_args=[]))
    f = json.loads(res.stdout)
    assert f["ociVersionMin"].startswith("1.") and f["ociVersionMax"].startswith("1."), f
    assert "createRuntime" in f.get("hooks", []), f
    assert set(f["linux"]["namespaces"]) >= {"pid", "network", "ipc", "uts", "mount"}, f


def test_kill_paused_container(rt, bundle):
    """SIGKILL reaches a paused container's init (runc thaws it so the signal lands)."""
    pid = rt.create_started(bundle)["pid"]
    assert_ok(rt("pause", bundle.id))
    assert_ok(rt.kill(bundle.id, "KILL"))
    rt.wait_status(bundle.id, "stopped")
    assert not h.pid_alive(pid)
