"""containerd through ctr, with the runc v2 shim running pyrt or runc (``--runc-binary``).

The shim calls the runtime as go-runc does: ``--root <runc-root>/<ns> --log
<bundle>/log.json --log-format json`` then create/start/exec --detach/kill/delete/
pause/resume/ps --format json; it reads pid files and error messages from log.json.
Containers get an absolute cgroup (``ctr run --cgroup``) below the test parent.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path

import ehelpers as eh
from eimage import TESTER_UID

from conftest import CtrRunner, Lab

SLEEPER = "trap 'exit 0' TERM; trap 'exit 12' USR1; while :; do sleep 0.1; done"
PROBE = "unshare -U -r -u sh -c 'hostname in-userns && hostname' 2>&1; echo rc=$?"
CAP_CHOWN, CAP_NET_ADMIN = 0, 12


def start(ctr: CtrRunner, cid: str, *flags: str, args: tuple[str, ...] = ("sh", "-c", SLEEPER)
          ) -> int:
    eh.ok(ctr.run("--detach", *flags, cid=cid, args=args))
    return task_pid(ctr, cid)


def tasks(ctr: CtrRunner) -> dict[str, tuple[int, str]]:
    """task id -> (pid, status) from ``ctr task ls``."""
    rows = ctr.ok("tasks", "ls").splitlines()[1:]
    return {f[0]: (int(f[1]), f[2]) for f in (r.split() for r in rows)}


def task_pid(ctr: CtrRunner, cid: str) -> int:
    return tasks(ctr)[cid][0]


def remove(ctr: CtrRunner, cid: str) -> int:
    """Delete the stopped task and the container; the task's exit status."""
    res = eh.ok(ctr("tasks", "delete", cid))
    ctr.ok("containers", "delete", cid)
    # ctr 1.6 only warns: `task X exit with non-zero exit code N`
    m = re.search(r"exit with non-zero exit code (\d+)", res.stderr)
    return int(m.group(1)) if m else 0


def test_run_rm_echo_and_exit_code(ctr: CtrRunner) -> None:
    res = ctr.run("--rm", cid="echo", args=("echo", "hello", ctr.runtime.name))
    eh.ok(res)
    assert res.stdout == f"hello {ctr.runtime.name}\n"
    res = ctr.run("--rm", cid="code", args=("sh", "-c", "echo err >&2; exit 42"))
    assert res.returncode == 42, eh.describe(res)
    assert "err" in res.stderr
    assert ctr.ok("containers", "ls", "--quiet") == ""


def test_the_runtime_under_test_runs_the_container(ctr: CtrRunner) -> None:
    pid = start(ctr, "which")
    root = ctr.c.state_root(ctr.runtime)
    res = eh.ok(eh.run([ctr.runtime.path, "--root", str(root), "state", "which"]))
    st = json.loads(res.stdout)
    assert (st["status"], st["pid"]) == ("running", pid)
    info = json.loads(ctr.ok("containers", "info", "which"))
    assert info["Runtime"]["Name"] == "io.containerd.runc.v2"
    opts = info["Runtime"]["Options"]  # runc.v1.Options, protobuf: BinaryName is field 6
    assert opts["type_url"] == "containerd.runc.v1.Options"
    assert ctr.runtime.path.encode() in base64.b64decode(opts["value"])


def test_detached_exec_kill_delete(ctr: CtrRunner) -> None:
    pid = start(ctr, "det", "--env", "FOO=bar", "--cwd", "/home/tester")
    assert tasks(ctr)["det"] == (pid, "RUNNING")
    res = ctr("tasks", "exec", "--exec-id", "e1", "det", "sh", "-c",
              'echo "$FOO $(pwd) $(cat /proc/1/comm)"; exit 7')
    assert res.returncode == 7, eh.describe(res)
    assert res.stdout == "bar /home/tester sh\n"
    res = ctr("tasks", "exec", "--exec-id", "e2", "--user", str(TESTER_UID), "det", "id", "-u")
    assert eh.ok(res).stdout == f"{TESTER_UID}\n"
    ctr.ok("tasks", "kill", "--signal", "SIGUSR1", "det")
    eh.wait_for(lambda: tasks(ctr)["det"][1] == "STOPPED", 30, "det stopped")
    assert not eh.h.pid_alive(pid)
    assert remove(ctr, "det") == 12  # ctr task delete exits with the task's status
    pid = start(ctr, "term")
    ctr.ok("tasks", "kill", "term")  # SIGTERM
    eh.wait_for(lambda: tasks(ctr)["term"][1] == "STOPPED", 30, "term stopped")
    assert remove(ctr, "term") == 0


def test_limits_metrics_ps(ctr: CtrRunner) -> None:
    pid = start(ctr, "lim", "--memory-limit", str(64 << 20), "--cpus", "0.5",
                args=("sleep", "1000"))
    cgs = eh.proc_cgroups(pid)
    assert cgs["memory"] == f"{ctr.cgroup_parent}/lim", cgs
    assert eh.cg_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    quota = int(eh.cg_file(pid, "cpu", "cpu.cfs_quota_us"))
    assert quota * 2 == int(eh.cg_file(pid, "cpu", "cpu.cfs_period_us"))
    metrics = json.loads(ctr.ok("tasks", "metrics", "--format", "json", "lim"))
    assert metrics["memory"]["usage"]["limit"] == 64 << 20, metrics
    assert metrics["memory"]["usage"]["usage"] > 0, metrics
    assert metrics["pids"]["current"] >= 1, metrics
    # `ctr task ps` is the runtime's `ps --format json`
    ctr.ok("tasks", "exec", "--detach", "--exec-id", "bg", "lim", "sleep", "4321")
    eh.wait_for(lambda: len(ctr.ok("tasks", "ps", "lim").splitlines()) == 3, 20, "2 pids")
    pids = {int(r.split()[0]) for r in ctr.ok("tasks", "ps", "lim").splitlines()[1:]}
    assert pid in pids
    (other,) = pids - {pid}
    assert Path(f"/proc/{other}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"4321"]


def test_pause_resume(ctr: CtrRunner) -> None:
    pid = start(ctr, "pz")
    ctr.ok("tasks", "pause", "pz")
    assert tasks(ctr)["pz"][1] == "PAUSED"
    assert eh.cg_file(pid, "freezer", "freezer.state") == "FROZEN"
    ctr.ok("tasks", "resume", "pz")
    assert tasks(ctr)["pz"][1] == "RUNNING"
    assert eh.cg_file(pid, "freezer", "freezer.state") == "THAWED"
    res = ctr("tasks", "exec", "--exec-id", "after", "pz", "echo", "alive")
    assert eh.ok(res).stdout == "alive\n"


def test_caps_and_mounts(ctr: CtrRunner, tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given").write_text("from the host\n")
    res = ctr.run("--rm", "--read-only", "--cap-drop", "CAP_CHOWN", "--cap-add", "CAP_NET_ADMIN",
                  "--mount", f"type=bind,src={rw},dst=/rw,options=rbind:rw",
                  "--mount", f"type=bind,src={ro},dst=/ro,options=rbind:ro",
                  "--mount", "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m:mode=1770",
                  cid="cm", args=("sh", "-c",
                                  "grep ^CapEff /proc/self/status; "
                                  "touch /x 2>/dev/null || echo root-ro; "
                                  "echo w > /rw/out; cat /ro/given; "
                                  "touch /ro/y 2>/dev/null || echo ro-ro; "
                                  "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4; "
                                  "echo t > /scratch/t && cat /scratch/t"))
    eh.ok(res)
    lines = res.stdout.splitlines()
    caps = int(lines[0].split()[1], 16)
    assert not caps & (1 << CAP_CHOWN) and caps & (1 << CAP_NET_ADMIN), lines[0]
    assert lines[1:4] == ["root-ro", "from the host", "ro-ro"], res.stdout
    assert lines[4].startswith("tmpfs rw,") and "size=1024k" in lines[4], lines[4]
    assert "mode=1770" in lines[4], lines[4]
    assert lines[5] == "t"
    assert (rw / "out").read_text() == "w\n"


def test_seccomp_default_profile_and_none(ctr: CtrRunner) -> None:
    res = ctr.run("--rm", "--seccomp", cid="sc1",
                  args=("sh", "-c", "grep ^Seccomp: /proc/self/status; " + PROBE))
    eh.ok(res)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"] and lines[-1] != "rc=0", res.stdout
    assert "in-userns" not in lines
    res = ctr.run("--rm", cid="sc2",
                  args=("sh", "-c", "grep ^Seccomp: /proc/self/status; " + PROBE))
    assert eh.ok(res).stdout.splitlines() == ["Seccomp:\t0", "in-userns", "rc=0"]


def test_tty_run_and_exec(ctr: CtrRunner) -> None:
    cmd = shlex.join(ctr.c.argv("run", "--rm", "--tty", *ctr.run_flags("tty1"),
                                "localhost/pyrt-busybox:latest", "tty1", "sh"))
    s = eh.Session(cmd, env=ctr.c._env)
    try:
        s.send("echo $((6*7))x; tty\n")
        s.expect("42x")
        s.expect("/dev/pts/0")
        s.send("exit 3\n")
        assert s.wait() == 3, s.buf
    finally:
        s.close()
    start(ctr, "tty2")
    cmd = shlex.join(ctr.c.argv("tasks", "exec", "--tty", "--exec-id", "t", "tty2", "sh"))
    s = eh.Session(cmd, env=ctr.c._env)
    try:
        s.send("test -t 0 && echo in-$(cat /proc/1/comm)-$((5+6))\n")
        s.expect("in-sh-11")
        s.send("exit 5\n")
        assert s.wait() == 5, s.buf
    finally:
        s.close()


def test_runtime_error_reaches_ctr(ctr: CtrRunner) -> None:
    """The shim takes the message of a failed create from the runtime's log.json."""
    res = ctr.run("--rm", cid="bad", args=("/no/such/binary",))
    assert res.returncode != 0, eh.describe(res)
    assert "/no/such/binary" in res.stderr, eh.describe(res)
    assert "no such file or directory" in res.stderr.lower(), eh.describe(res)
    ctr("containers", "delete", "bad")


def test_deleted_behind_the_shims_back(ctr: CtrRunner) -> None:
    pid = start(ctr, "gone")
    root = ctr.c.state_root(ctr.runtime)
    eh.ok(eh.run([ctr.runtime.path, "--root", str(root), "delete", "--force", "gone"]))
    eh.wait_for(lambda: not eh.h.pid_alive(pid), 20, "the task's process to go")
    eh.wait_for(lambda: tasks(ctr)["gone"][1] == "STOPPED", 30, "the shim to notice")
    assert remove(ctr, "gone") == 137  # the shim's `delete` finds nothing: fine


def test_twenty_in_a_row_leave_nothing(ctr: CtrRunner) -> None:
    mounts = sorted(eh.mount_points(ctr.c.daemon.pid))
    for i in range(20):
        res = ctr.run("--rm", cid=f"row{i}", args=("sh", "-c", f"echo {i}"))
        assert eh.ok(res).stdout == f"{i}\n"
    assert ctr.ok("containers", "ls", "--quiet") == ""
    root = ctr.c.state_root(ctr.runtime)
    assert not (root.is_dir() and list(root.iterdir()))
    assert eh.cgroup_subdirs(ctr.cgroup_parent) == set()
    assert sorted(eh.mount_points(ctr.c.daemon.pid)) == mounts


def test_cri_runtime_classes_load(lab: Lab) -> None:
    """The Kubernetes runtime-class snippet (README) is accepted: the CRI plugin loads
    and containerd's merged config has a runtime per class with its BinaryName.
    No kubelet or CRI client drives a pod here (none is packaged in Debian 12)."""
    c = lab.containerd()
    cri = [r.split() for r in c.ok("plugins", "ls").splitlines() if " cri " in r]
    assert cri and cri[0][-1] == "ok", cri
    dump = eh.ok(eh.run(eh.private_mount_ns(
        ["containerd", "--config", str(c.config), "config", "dump"], ["/run"]))).stdout
    for rt in lab.runtimes.values():
        section = f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{rt.name}]'
        assert section in dump, dump
        assert f'BinaryName = "{rt.path}"' in dump, dump
    assert 'default_runtime_name = "pyrt"' in dump
