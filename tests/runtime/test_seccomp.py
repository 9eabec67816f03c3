"""linux.seccomp: real filters on real containers, observed through busybox's syscalls.

busybox (static) on x86_64 makes the plain syscalls: `mkdir` -> mkdir(2), `chmod` ->
chmod(2), the shell's `kill -N PID` -> kill(PID, N), `unshare -U` -> unshare(2),
`hostname NAME` -> sethostname(2). Signals 0, 17 (SIGCHLD), 18 (SIGCONT), 23 (SIGURG)
and 28 (SIGWINCH) sent to the shell itself change nothing, so kill's second argument is
the one the argument-comparison tests control.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import select
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

HERE = Path(__file__).resolve().parent
DOCKER_PROFILE = HERE / "fixtures" / "docker-default-seccomp.json"
PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")  # golang-github-containers-common

SIGSYS_EXIT = 128 + 31
ENOSPC, EXDEV, ENOSYS = 28, 18, 38
HARMLESS_SIGNALS = (0, 17, 18, 23, 28)


def with_seccomp(b: h.Bundle, seccomp: dict[str, Any] | None, **process: Any) -> h.Bundle:
    """Set linux.seccomp (None: none) and process fields."""
    if seccomp is not None:
        b.config["linux"]["seccomp"] = seccomp
    b.config["process"].update(process)
    # a SIGSYS death must not leave a core file behind
    b.config["process"]["rlimits"].append({"type": "RLIMIT_CORE", "hard": 0, "soft": 0})
    return b.write()


def deny(*names: str, action: str = "SCMP_ACT_ERRNO", **rule: Any) -> dict[str, Any]:
    """A profile that allows everything but `names`."""
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": list(names), "action": action, **rule}]}


def run(rt, make_bundle, script: str, seccomp: dict[str, Any] | None, **process: Any):
    b = make_bundle(("sh", "-c", script), write=False)
    return rt.run(with_seccomp(b, seccomp, **process))


def lines(res) -> list[str]:
    assert_ok(res)
    return res.stdout.split()


# ---------------------------------------------------------------- actions

def test_errno_action_with_and_without_errno_ret(rt, make_bundle):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSPC},
        {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"},  # EPERM, as runc
    ]}
    res = run(rt, make_bundle, "mkdir /tmp/d; echo mkdir=$?; chmod 700 /tmp; echo chmod=$?;"
              "touch /tmp/f; echo touch=$?", profile)
    assert lines(res) == ["mkdir=1", "chmod=1", "touch=0"], describe(res)
    assert "No space left on device" in res.stderr, describe(res)
    assert "Operation not permitted" in res.stderr, describe(res)


def test_filter_is_on_the_container_process(rt, make_bundle):
    res = run(rt, make_bundle, "grep -E '^Seccomp(_filters)?:' /proc/self/status",
              deny("mkdir"))
    fields = dict(line.split(":\t") for line in assert_ok(res).stdout.splitlines())
    assert fields["Seccomp"] == "2", describe(res)  # SECCOMP_MODE_FILTER
    assert fields["Seccomp_filters"] == "1", describe(res)


def test_no_seccomp_no_filter(rt, make_bundle):
    res = run(rt, make_bundle, "grep '^Seccomp:' /proc/self/status", None)
    assert assert_ok(res).stdout.split() == ["Seccomp:", "0"], describe(res)


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_actions_end_the_process_with_sigsys(rt, make_bundle, action):
    b = make_bundle(("mkdir", "/tmp/never"), write=False)
    with_seccomp(b, deny("mkdir", "mkdirat", action=action))
    res = rt.run(b)
    assert res.returncode == SIGSYS_EXIT, describe(res)
    assert not (b.rootfs / "tmp" / "never").exists()


def test_kill_thread_spares_the_rest_of_the_container(rt, make_bundle):
    # (a subshell: busybox may run mkdir inside the shell's own process)
    res = run(rt, make_bundle, "(mkdir /tmp/never); echo status=$?",
              deny("mkdir", "mkdirat", action="SCMP_ACT_KILL_THREAD"))
    assert lines(res) == [f"status={SIGSYS_EXIT}"], describe(res)


def test_trace_without_a_tracer_is_enosys(rt, make_bundle):
    res = run(rt, make_bundle, "mkdir /tmp/t; echo status=$?",
              deny("mkdir", "mkdirat", action="SCMP_ACT_TRACE"))
    assert lines(res) == ["status=1"], describe(res)
    assert "Function not implemented" in res.stderr, describe(res)


def _kernel_log_has(*needles: str) -> bool:
    with open("/dev/kmsg", "rb") as kmsg:  # every record still in the ring, then EAGAIN
        os.set_blocking(kmsg.fileno(), False)
        while True:
            try:
                record = os.read(kmsg.fileno(), 8192)
            except BlockingIOError:
                return False
            except OSError:  # EPIPE: a record was overwritten while we read; go on
                continue
            if all(n.encode() in record for n in needles):
                return True


def _unique_busybox(b: h.Bundle) -> str:
    """A hard link to busybox whose name marks this test's audit records."""
    name = f"busybox-{os.getpid() % 10000}{b.path.name[-3:]}"
    os.link(b.rootfs / "bin" / "busybox", b.rootfs / "bin" / name)
    return f"/bin/{name}"


def test_log_action_allows_and_logs(rt, make_bundle):
    b = make_bundle(write=False)
    exe = _unique_busybox(b)
    b.config["process"]["args"] = [exe, "sh", "-c", "mkdir /tmp/logged && echo made"]
    with_seccomp(b, deny("mkdir", "mkdirat", action="SCMP_ACT_LOG"))
    res = rt.run(b)
    assert lines(res) == ["made"], describe(res)
    # the kernel's audit record of a SECCOMP_RET_LOG (0x7ffc0000) decision
    h.wait_for(lambda: _kernel_log_has(f'exe="{exe}"', "code=0x7ffc0000"),
               what="the audit record of the logged syscall")


@pytest.mark.pyrt_only  # runc 1.1.5 refuses every seccomp flag
def test_flag_log_logs_errno_decisions(rt, make_bundle):
    b = make_bundle(write=False)
    exe = _unique_busybox(b)
    b.config["process"]["args"] = [exe, "sh", "-c", "chmod 700 /tmp; echo status=$?"]
    profile = deny("chmod", "fchmodat")
    profile["flags"] = ["SECCOMP_FILTER_FLAG_LOG"]
    with_seccomp(b, profile)
    res = rt.run(b)
    assert lines(res) == ["status=1"], describe(res)
    h.wait_for(lambda: _kernel_log_has(f'exe="{exe}"', "code=0x50000"),
               what="the audit record of the denied syscall")


@pytest.mark.pyrt_only  # runc 1.1.5 refuses every seccomp flag
@pytest.mark.parametrize("flags", [[], ["SECCOMP_FILTER_FLAG_TSYNC"],
                                   ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]])
def test_flags_are_accepted(rt, make_bundle, flags):
    profile = deny("mkdir", "mkdirat", errnoRet=ENOSPC)
    profile["flags"] = flags
    res = run(rt, make_bundle, "mkdir /tmp/f; echo status=$?", profile)
    assert lines(res) == ["status=1"], describe(res)
    assert "No space left on device" in res.stderr, describe(res)


def test_unknown_syscall_names_are_skipped(rt, make_bundle):
    profile = deny("no_such_syscall_at_all", "mkdir", "mkdirat", "chown32")  # chown32: x86
    res = run(rt, make_bundle, "mkdir /tmp/u; echo status=$?", profile)
    assert lines(res) == ["status=1"], describe(res)


def test_rule_with_the_default_action_changes_nothing(rt, make_bundle):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]}
    res = run(rt, make_bundle, "mkdir /tmp/a; echo mkdir=$?; chmod 1 /tmp/a; echo chmod=$?",
              profile)
    assert lines(res) == ["mkdir=0", "chmod=1"], describe(res)


# ---------------------------------------------------------------- argument comparisons

KILL_SCRIPT = " ".join(f"kill -{s} $$ 2>/dev/null && echo {s}=ok || echo {s}=denied;"
                       for s in HARMLESS_SIGNALS)


def _expect(pred) -> list[str]:
    return [f"{s}={'denied' if pred(s) else 'ok'}" for s in HARMLESS_SIGNALS]


@pytest.mark.parametrize("op,value,value_two,pred", [
    ("SCMP_CMP_EQ", 17, 0, lambda s: s == 17),
    ("SCMP_CMP_NE", 18, 0, lambda s: s != 18),
    ("SCMP_CMP_LT", 18, 0, lambda s: s < 18),
    ("SCMP_CMP_LE", 18, 0, lambda s: s <= 18),
    ("SCMP_CMP_GT", 18, 0, lambda s: s > 18),
    ("SCMP_CMP_GE", 18, 0, lambda s: s >= 18),
    ("SCMP_CMP_MASKED_EQ", 0x1, 0x1, lambda s: s & 0x1 == 0x1),  # odd: 17, 23
    ("SCMP_CMP_MASKED_EQ", 0x18, 0x10, lambda s: s & 0x18 == 0x10),  # 17, 18, 23
])
def test_argument_operators(rt, make_bundle, op, value, value_two, pred):
    arg = {"index": 1, "value": value, "op": op}
    if op == "SCMP_CMP_MASKED_EQ":
        arg["valueTwo"] = value_two
    res = run(rt, make_bundle, KILL_SCRIPT, deny("kill", args=[arg]))
    assert lines(res) == _expect(pred), describe(res)


def test_conditions_on_one_argument_are_alternatives(rt, make_bundle):
    # as runc: two conditions on the same argument make two rules
    args = [{"index": 1, "value": 17, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 28, "op": "SCMP_CMP_EQ"}]
    res = run(rt, make_bundle, KILL_SCRIPT, deny("kill", args=args))
    assert lines(res) == _expect(lambda s: s in (17, 28)), describe(res)


def test_conditions_on_several_arguments_must_all_match(rt, make_bundle):
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},  # pid 1: the shell itself
            {"index": 1, "value": 17, "op": "SCMP_CMP_EQ"}]
    script = ("sleep 100 & kill -17 $! && echo other=ok; kill -17 1 2>/dev/null || "
              "echo self=denied; kill -18 1 && echo self18=ok; kill $!")
    res = run(rt, make_bundle, script, deny("kill", args=args))
    assert lines(res) == ["other=ok", "self=denied", "self18=ok"], describe(res)


# ---------------------------------------------------------------- when the filter goes on

@pytest.mark.parametrize("no_new_privs", [True, False])
@pytest.mark.parametrize("uid", [0, h.TESTER_UID])
def test_loaded_with_and_without_no_new_privileges(rt, make_bundle, no_new_privs, uid):
    # without no_new_privs loading needs CAP_SYS_ADMIN, which a non-root user (or this
    # config's root, who has 3 capabilities) lacks once it is the container's process
    res = run(rt, make_bundle, "mkdir /tmp/n; echo status=$?; id -u",
              deny("mkdir", "mkdirat", errnoRet=ENOSPC), noNewPrivileges=no_new_privs,
              user={"uid": uid, "gid": uid})
    assert lines(res) == ["status=1", str(uid)], describe(res)
    assert "No space left on device" in res.stderr, describe(res)


@pytest.mark.parametrize("no_new_privs", [True, False])
def test_loaded_in_a_user_namespace(rt, make_bundle, no_new_privs):
    # without no_new_privs, CAP_SYS_ADMIN in the container's own user namespace suffices
    b = make_bundle(("sh", "-c", "mkdir /tmp/n; echo status=$?; id -u"), write=False)
    b.config["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        b.config["linux"][key] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    res = rt.run(with_seccomp(b, deny("mkdir", "mkdirat", errnoRet=ENOSPC),
                              noNewPrivileges=no_new_privs))
    assert lines(res) == ["status=1", "0"], describe(res)
    assert "No space left on device" in res.stderr, describe(res)


def test_exec_gets_the_container_filter(rt, make_bundle):
    b = make_bundle(("sleep", "100"), write=False)
    with_seccomp(b, deny("mkdir", "mkdirat", errnoRet=ENOSPC))
    rt.create_started(b)
    res = rt("exec", b.id, "sh", "-c", "mkdir /tmp/e; echo status=$?; "
             "grep '^Seccomp:' /proc/self/status")
    assert assert_ok(res).stdout.split() == ["status=1", "Seccomp:", "2"], describe(res)
    assert "No space left on device" in res.stderr, describe(res)
    assert_ok(rt.kill(b.id))


# ---------------------------------------------------------------- engines' default profiles

def moby_to_oci(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """linux.seccomp from a profile in Moby's format (Docker's and Podman's), as the
    engines make it for an x86_64 container whose bounding set is `caps`: the native
    arch and its sub-arches, and only the rules whose includes/excludes fit."""
    arch, goarch = "SCMP_ARCH_X86_64", "amd64"
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": []}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == arch:
            out["architectures"] = [arch, *entry["subArchitectures"]]
    release = os.uname().release.split("-")[0]
    kernel = tuple(int(x) for x in release.split(".")[:2])
    for call in profile["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if goarch in exc.get("arches", []) or any(c in caps for c in exc.get("caps", [])):
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps", [])):
            continue
        min_kernel = inc.get("minKernel")
        if min_kernel and kernel < tuple(int(x) for x in min_kernel.split(".")[:2]):
            continue
        rule = {"names": call["names"], "action": call["action"]}
        for k in ("errnoRet", "args"):
            if call.get(k):
                rule[k] = call[k]
        out["syscalls"].append(rule)
    return out


ENGINE_PROFILES = [pytest.param(DOCKER_PROFILE, id="docker"),
                   pytest.param(PODMAN_PROFILE, id="podman")]
# The engines' usual set for a container without CAP_SYS_ADMIN
ENGINE_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
               "CAP_SETUID", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"]
WITH_SYS_ADMIN = [*ENGINE_CAPS, "CAP_SYS_ADMIN"]
WORKLOAD = ("mkdir -p /tmp/w/x && echo hi > /tmp/w/x/f && cat /tmp/w/x/f && ls /tmp/w/x && "
            "chmod 600 /tmp/w/x/f && rm -r /tmp/w && cat /proc/self/comm && sleep 0 && id -u")


def engine_profile(path: Path) -> dict[str, Any]:
    if not path.exists():
        pytest.fail(f"{path} is missing (make deps installs golang-github-containers-common)")
    return moby_to_oci(json.loads(path.read_text()), ENGINE_CAPS)


def caps(names: list[str]) -> dict[str, list[str]]:
    return {k: list(names) for k in ("bounding", "effective", "permitted")}


@pytest.mark.parametrize("profile_path", ENGINE_PROFILES)
@pytest.mark.parametrize("no_new_privs", [False, True])
def test_engine_profile_runs_an_ordinary_workload(rt, make_bundle, profile_path, no_new_privs):
    res = run(rt, make_bundle, WORKLOAD, engine_profile(profile_path),
              noNewPrivileges=no_new_privs, capabilities=caps(ENGINE_CAPS))
    assert lines(res) == ["hi", "f", "cat", "0"], describe(res)


@pytest.mark.parametrize("profile_path", ENGINE_PROFILES)
def test_engine_profile_denies_sethostname_without_cap_sys_admin(rt, make_bundle,
                                                                profile_path):
    # The container holds CAP_SYS_ADMIN (so the kernel alone would let it set its own
    # uts namespace's hostname) but gets the profile an engine makes for a container
    # without it: the filter alone refuses.
    script = "hostname other; echo status=$?; hostname"
    control = run(rt, make_bundle, script, None, capabilities=caps(WITH_SYS_ADMIN))
    assert lines(control) == ["status=0", "other"], describe(control)
    res = run(rt, make_bundle, script, engine_profile(profile_path),
              noNewPrivileges=False, capabilities=caps(WITH_SYS_ADMIN))
    assert lines(res) == ["status=1", h.DEFAULT_HOSTNAME], describe(res)
    assert "Operation not permitted" in res.stderr, describe(res)


def test_docker_profile_denies_unshare(rt, make_bundle):
    script = "unshare -U true; echo status=$?"
    control = run(rt, make_bundle, script, None, capabilities=caps(ENGINE_CAPS))
    assert lines(control) == ["status=0"], describe(control)
    res = run(rt, make_bundle, script, engine_profile(DOCKER_PROFILE), noNewPrivileges=False,
              capabilities=caps(ENGINE_CAPS))
    assert lines(res) == ["status=1"], describe(res)
    assert "Operation not permitted" in res.stderr, describe(res)


def test_default_errno_ret(rt, make_bundle):
    profile = engine_profile(DOCKER_PROFILE)  # its default action is SCMP_ACT_ERRNO
    profile["defaultErrnoRet"] = ENOSYS
    res = run(rt, make_bundle, "unshare -U true; echo status=$?", profile,
              capabilities=caps(ENGINE_CAPS))
    assert lines(res) == ["status=1"], describe(res)
    assert "Function not implemented" in res.stderr, describe(res)


# ---------------------------------------------------------------- SCMP_ACT_NOTIFY

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags, data.nr, data.arch, data.ip, args
NOTIF_RESP = struct.Struct("=QqiI")  # id, val, error, flags


class Listener:
    """A seccomp agent: takes each container process state with its fd, and answers
    every notification with -`errno`."""

    def __init__(self, errno: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyrt-sc-", dir="/tmp")  # sun_path <= 108
        self.path = os.path.join(self.dir, "agent.sock")
        self.errno = errno
        self.states: list[dict[str, Any]] = []
        self.nrs: list[int] = []
        self.errors: list[str] = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        fds: list[int] = []
        try:
            while not self.stop.is_set():
                ready = select.select([self.srv, *fds], [], [], 0.1)[0]
                for r in ready:
                    if r is self.srv:
                        fds.append(self._accept())
                    elif not self._answer(r):
                        fds.remove(r)
                        os.close(r)
        except Exception as e:  # reported by close()
            self.errors.append(repr(e))
        finally:
            for fd in fds:
                os.close(fd)

    def _accept(self) -> int:
        conn, _ = self.srv.accept()
        with conn:
            fd_array = array.array("i")
            data, anc, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fd_array.frombytes(payload[: len(payload) - len(payload) % 4])
            # One state per connection. Read until it parses rather than until EOF:
            # runc 1.1.5 keeps its end open (the spec says it must close it).
            while True:
                try:
                    state = json.loads(data)
                    break
                except ValueError:
                    chunk = conn.recv(1 << 16)
                    assert chunk, f"EOF in the middle of the state: {data!r}"
                    data += chunk
        assert len(fd_array) == 1, f"got {len(fd_array)} fds"
        self.states.append(state)
        return fd_array[0]

    def _answer(self, fd: int) -> bool:
        """Answer one notification; False once every process of the filter is gone."""
        events = select.poll()
        events.register(fd, select.POLLIN)
        if any(ev & select.POLLHUP for _, ev in events.poll(0)):
            return False
        buf = bytearray(NOTIF.size)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
        except OSError:  # ENOENT: the process went away meanwhile
            return True
        notif_id, _pid, _flags, nr, *_ = NOTIF.unpack(buf)
        self.nrs.append(nr)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, NOTIF_RESP.pack(notif_id, 0,
                                                                     -self.errno, 0))
        except OSError:
            pass
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.srv.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not self.errors, self.errors


@pytest.fixture
def listener():
    agents: list[Listener] = []

    def make(errno: int = EXDEV) -> Listener:
        agents.append(Listener(errno))
        return agents[-1]

    yield make
    for agent in agents:
        agent.close()


def notify_profile(path: str, metadata: str = "") -> dict[str, Any]:
    profile = deny("mkdir", "mkdirat", action="SCMP_ACT_NOTIFY")
    profile["listenerPath"] = path
    if metadata:
        profile["listenerMetadata"] = metadata
    return profile


@pytest.mark.parametrize("no_new_privs", [True, False])
def test_notify_sends_state_and_fd_to_the_listener(rt, make_bundle, listener, tmp_path,
                                                   no_new_privs):
    agent = listener(EXDEV)
    b = make_bundle(("sh", "-c", "mkdir /tmp/n; echo status=$?; touch /tmp/t; echo ok"),
                    write=False)
    with_seccomp(b, notify_profile(agent.path, "some=opaque;data"),
                 noNewPrivileges=no_new_privs)
    pid_file = tmp_path / "pid"
    res = rt.run(b, "--pid-file", str(pid_file))
    assert lines(res) == ["status=1", "ok"], describe(res)
    assert "Invalid cross-device link" in res.stderr, describe(res)  # the agent's answer
    assert len(agent.states) == 1, agent.states
    msg = agent.states[0]
    pid = int(pid_file.read_text())
    assert msg["fds"] == ["seccompFd"] and msg["pid"] == pid, msg
    assert msg["metadata"] == "some=opaque;data", msg
    assert msg["ociVersion"].startswith("1."), msg
    st = msg["state"]
    assert (st["id"], st["status"], st["pid"], st["bundle"]) == (
        b.id, "creating", pid, str(b.path)), msg
    assert 83 in agent.nrs or 258 in agent.nrs, agent.nrs  # mkdir or mkdirat (x86_64)


def test_notify_for_exec(rt, make_bundle, listener):
    agent = listener(EXDEV)
    b = make_bundle(("sleep", "100"), write=False)
    with_seccomp(b, notify_profile(agent.path))
    init_pid = rt.create_started(b)["pid"]
    res = rt("exec", b.id, "sh", "-c", "mkdir /tmp/e; echo status=$?")
    assert assert_ok(res).stdout.split() == ["status=1"], describe(res)
    assert "Invalid cross-device link" in res.stderr, describe(res)
    assert len(agent.states) == 2, agent.states
    msg = agent.states[1]
    assert msg["fds"] == ["seccompFd"] and msg["pid"] not in (0, init_pid), msg
    assert "metadata" not in msg, msg
    st = msg["state"]
    assert (st["id"], st["status"], st["pid"]) == (b.id, "running", init_pid), msg
    assert_ok(rt.kill(b.id))


def test_notify_listener_unreachable_fails_create(rt, make_bundle, tmp_path):
    b = make_bundle(write=False)
    with_seccomp(b, notify_profile(str(tmp_path / "nobody-listens.sock")))
    res = rt.create(b)
    assert_fails(res, 1)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


# ---------------------------------------------------------------- bad input

BASE = {"defaultAction": "SCMP_ACT_ALLOW"}
RULE = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}


def _rule(**kw: Any) -> dict[str, Any]:
    return {**BASE, "syscalls": [{**RULE, **kw}]}


BAD = [
    ("unknown-default-action", {"defaultAction": "SCMP_ACT_BOGUS"}, "/linux/seccomp/defaultAction"),
    ("unknown-action", _rule(action="SCMP_ACT_MAYBE"), "/linux/seccomp/syscalls/0/action"),
    ("unknown-operator", _rule(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]),
     "/linux/seccomp/syscalls/0/args/0/op"),
    ("argument-index-6", _rule(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     "/linux/seccomp/syscalls/0/args/0/index"),
    ("unknown-arch", {**BASE, "architectures": ["SCMP_ARCH_Z80"]},
     "/linux/seccomp/architectures/0"),
    # a spec arch this libseccomp (2.5.4) lacks, as runc 1.1.5 lacks it
    ("arch-libseccomp-lacks", {**BASE, "architectures": ["SCMP_ARCH_LOONGARCH64"]},
     "/linux/seccomp/architectures/0"),
    ("unknown-flag", {**BASE, "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, "/linux/seccomp/flags/0"),
    ("notify-as-default", {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/tmp/x.sock"},
     "/linux/seccomp/defaultAction"),
    ("notify-on-write", {**_rule(names=["write"], action="SCMP_ACT_NOTIFY"),
                         "listenerPath": "/tmp/x.sock"}, "/linux/seccomp/syscalls/0/names/0"),
    ("notify-without-listener", _rule(action="SCMP_ACT_NOTIFY"), "/linux/seccomp/listenerPath"),
    ("empty-syscall-name", _rule(names=["mkdir", ""]), "/linux/seccomp/syscalls/0/names/1"),
    ("rules-without-default-action", {"syscalls": [RULE]}, "/linux/seccomp"),
    ("wrong-type", {**BASE, "syscalls": [{**RULE, "names": "mkdir"}]},
     "/linux/seccomp/syscalls/0/names"),
]
# runc 1.1.5 accepts these; runtime-spec says they are errors
BAD_PYRT_ONLY = [
    ("errno-ret-on-allow", _rule(action="SCMP_ACT_KILL", errnoRet=1),
     "/linux/seccomp/syscalls/0/errnoRet"),
    ("default-errno-ret-on-allow", {**BASE, "defaultErrnoRet": 1},
     "/linux/seccomp/defaultErrnoRet"),
    ("metadata-without-listener", {**BASE, "listenerMetadata": "x"},
     "/linux/seccomp/listenerMetadata"),
    ("no-names", _rule(names=[]), "/linux/seccomp/syscalls/0/names"),
    ("errno-ret-too-big", _rule(errnoRet=70000), "/linux/seccomp/syscalls/0/errnoRet"),
    ("notify-on-sendmsg", {**_rule(names=["sendmsg"], action="SCMP_ACT_NOTIFY"),
                           "listenerPath": "/tmp/x.sock"}, "/linux/seccomp/syscalls/0/names/0"),
]


def _skip_if_has_loongarch(rt, name):
    if name == "arch-libseccomp-lacks":
        archs = json.loads(assert_ok(rt("features")).stdout)["linux"]["seccomp"]["archs"]
        if "SCMP_ARCH_LOONGARCH64" in archs:
            pytest.skip("this runtime and its libseccomp have loongarch64")


def _refused(rt, b, seccomp):
    b.config["linux"]["seccomp"] = seccomp
    b.write()
    res = assert_fails(rt.create(b), 1)
    assert b.id not in rt.list_ids(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
    return res


@pytest.mark.parametrize("name,seccomp,ptr", BAD, ids=[c[0] for c in BAD])
def test_bad_seccomp_is_refused(rt, make_bundle, runtime_bin, name, seccomp, ptr):
    _skip_if_has_loongarch(rt, name)
    res = _refused(rt, make_bundle(write=False), seccomp)
    if os.path.basename(runtime_bin) == "pyrt":
        assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"pyrt: {ptr}"), \
            describe(res)


@pytest.mark.pyrt_only
@pytest.mark.parametrize("name,seccomp,ptr", BAD_PYRT_ONLY, ids=[c[0] for c in BAD_PYRT_ONLY])
def test_bad_seccomp_is_refused_pyrt_only(rt, make_bundle, name, seccomp, ptr):
    res = _refused(rt, make_bundle(write=False), seccomp)
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"pyrt: {ptr}"), \
        describe(res)


@pytest.mark.pyrt_only
@pytest.mark.parametrize("name,seccomp,ptr", BAD + BAD_PYRT_ONLY,
                         ids=[c[0] for c in BAD + BAD_PYRT_ONLY])
def test_validate_lists_bad_seccomp(rt, make_bundle, name, seccomp, ptr):
    _skip_if_has_loongarch(rt, name)
    b = make_bundle(write=False)
    b.config["linux"]["seccomp"] = seccomp
    b.write()
    res = rt("validate", "--bundle", str(b.path))
    assert res.returncode == 1 and ptr in res.stdout, describe(res)


@pytest.mark.pyrt_only
@pytest.mark.parametrize("profile_path", ENGINE_PROFILES)
def test_validate_accepts_engine_profiles(rt, make_bundle, profile_path):
    b = make_bundle(write=False)
    b.config["linux"]["seccomp"] = engine_profile(profile_path)
    b.write()
    res = rt("validate", "--bundle", str(b.path))
    assert res.returncode == 0, describe(res)


def test_empty_seccomp_object_is_no_filter(rt, make_bundle):
    res = run(rt, make_bundle, "grep '^Seccomp:' /proc/self/status", {})
    assert assert_ok(res).stdout.split() == ["Seccomp:", "0"], describe(res)


# ---------------------------------------------------------------- features

def test_features_report_seccomp(rt):
    feats = json.loads(assert_ok(rt("features")).stdout)["linux"]["seccomp"]
    assert feats["enabled"] is True
    assert set(feats["actions"]) == {
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
    assert set(feats["operators"]) == {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                                       "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                       "SCMP_CMP_MASKED_EQ"}
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"} <= set(feats["archs"])


@pytest.mark.pyrt_only  # runc 1.1.5 has no seccomp flags
def test_features_report_seccomp_flags(rt):
    feats = json.loads(assert_ok(rt("features")).stdout)["linux"]["seccomp"]
    flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
    assert set(feats["knownFlags"]) == flags
    assert set(feats["supportedFlags"]) <= flags
    assert "SECCOMP_FILTER_FLAG_LOG" in feats["supportedFlags"]
