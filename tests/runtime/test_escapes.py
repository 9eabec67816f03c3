"""The known container escapes, each attempted for real against the runtime under test.

- CVE-2019-5736: a container process reaching the runtime's own binary (for pyrt the
  host's Python interpreter) through /proc/<pid>/exe of the runtime's process while it
  is in the container's pid namespace: the created init waiting for `start`, and the
  `exec` child before its execve (kept there by exec'ing into a paused container).
- CVE-2024-21626: fds of the caller or the runtime reaching the container, and a
  process cwd that resolves outside the rootfs through such an fd.
- CVE-2021-30465: a mount destination that is, or races into, a symlink out of the rootfs.
- CVE-2019-16884, CVE-2019-19921, CVE-2023-27561: /proc and /sys that are not what they
  seem (symlinks in the rootfs, mounts over /proc).
- maskedPaths and readonlyPaths bypasses, and no_new_privs against a setuid binary.

Every attack here is non-destructive even when it succeeds: the host binary is opened
for appending and never written to; its hash is compared before and after anyway.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import cghelpers as cg
import pytest
import rthelpers as h
from rthelpers import assert_ok, describe

# --------------------------------------------------------------------------- helpers


def runtime_files(runtime_bin: str) -> list[str]:
    """The files a container overwriting "the runtime" would hit: the binary, and for a
    script (pyrt) the interpreter its #! line names, resolved (venv -> pyenv)."""
    files = [os.path.realpath(runtime_bin)]
    with open(runtime_bin, "rb") as f:
        head = f.read(512)
    if head.startswith(b"#!"):
        interpreter = head[2:].split(b"\n", 1)[0].split()[0].decode()
        files.append(os.path.realpath(interpreter))
    return files


def digests(paths: list[str]) -> dict[str, str]:
    out = {}
    for path in paths:
        with open(path, "rb") as f:
            out[path] = hashlib.sha256(f.read()).hexdigest()
    return out


# What a container process tries against /proc/$1 (a pid in its pid namespace): every
# entry that would hand it the process's binary, fds, memory, root or cwd. One word per
# success; "present" proves the target is there at all.
PROBE = r"""
t=/proc/$1
[ -e $t/stat ] && echo present
cat $t/exe > /dev/null 2>&1 && echo exe-read
( : >> $t/exe ) 2>/dev/null && echo exe-write
readlink $t/exe > /dev/null 2>&1 && echo exe-link
for f in $t/fd/*; do readlink $f > /dev/null 2>&1 && echo fd-link && break; done
ls $t/root/ > /dev/null 2>&1 && echo root-list
ls $t/cwd/ > /dev/null 2>&1 && echo cwd-list
cat $t/environ > /dev/null 2>&1 && echo environ-read
( exec 3< $t/mem ) 2>/dev/null && echo mem-open
true
"""
REACHABLE = {"exe-read", "exe-link", "fd-link", "root-list", "cwd-list", "environ-read",
             "mem-open"}


def probe(rt: h.Runtime, cid: str, target: int) -> set[str]:
    res = assert_ok(rt("exec", cid, "sh", "-c", PROBE, "probe", str(target)))
    return set(res.stdout.split())


def ns_pid(host_pid: int) -> int:
    """The pid of host_pid in its innermost pid namespace."""
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError(f"no NSpid line for {host_pid}")


def sharing_pid_ns(rt: h.Runtime, make_bundle, init_pid: int) -> h.Bundle:
    """A running container in the pid namespace of init_pid (the attacker's seat)."""
    b = make_bundle(("sleep", "100"), write=False)
    b.set_namespace("pid", f"/proc/{init_pid}/ns/pid")
    rt.create_started(b)
    return b


def remove_sharer(rt: h.Runtime, b: h.Bundle) -> None:
    """Delete the container that joined another's pid namespace, and reap its init (our
    child, as subreaper): the namespace's own init cannot finish dying before that."""
    pid = rt.state(b.id)["pid"]
    assert_ok(rt.delete(b.id, force=True))
    os.waitpid(pid, 0)


# --------------------------------------------------------------------------- CVE-2019-5736


# The attack itself: take a handle on /proc/1/exe while the runtime's init waits there,
# and once `start` has made the init exec the container's program (so the binary is no
# longer busy because of it), reopen that handle for writing. Nothing is ever written.
HOLD_EXE = r"""
command exec 3< /proc/1/exe 2>/dev/null && echo opened || echo refused
while [ ! -e /tmp/started ]; do sleep 0.05; done
( : >> /proc/self/fd/3 ) 2>/dev/null && echo exe-write
true
"""


def test_created_init_does_not_hand_out_the_runtime_binary(rt, make_bundle, runtime_bin,
                                                           tmp_path):
    """CVE-2019-5736 at create: a process of a second container in the created
    container's pid namespace goes for the runtime's binary (pyrt: the host's Python)
    through /proc/1/exe. pyrt's init is not dumpable, so the open fails; runc 1.1.5's
    init is dumpable but runs from a read-only bind of its binary, so the reopen for
    writing fails. (Here a dumpable pyrt init would pass this test too, by luck: this
    pytest runs the same Python, so the reopen gets ETXTBSY; the test below is the
    strict one.)"""
    files = runtime_files(runtime_bin)
    before = digests(files)
    a = make_bundle(("sleep", "100"))
    assert_ok(rt.create(a))
    init = rt.state(a.id)["pid"]
    b = sharing_pid_ns(rt, make_bundle, init)
    assert ns_pid(init) == 1
    log = tmp_path / "attacker.out"
    with open(log, "w") as out:
        attacker = rt.popen("exec", b.id, "sh", "-c", HOLD_EXE, stdout=out, stderr=out)
    try:
        h.wait_for(lambda: log.read_text().strip(), what="the attacker's first move")
        assert_ok(rt.start(a.id))
        rt.wait_status(a.id, "running")
        h.wait_for(lambda: os.readlink(f"/proc/{init}/exe") == "/bin/busybox",
                   what="the init's execve")
        (b.rootfs / "tmp" / "started").touch()
        assert attacker.wait(timeout=20) == 0, log.read_text()
    finally:
        (b.rootfs / "tmp" / "started").touch()
        attacker.wait(timeout=20)
        h.spawned_done(attacker)
    assert "exe-write" not in log.read_text().split(), log.read_text()
    assert digests(files) == before
    remove_sharer(rt, b)


@pytest.mark.pyrt_only  # runc 1.1.5's created init is dumpable (see the test above)
def test_created_init_is_unreachable_from_its_pid_namespace(rt, make_bundle):
    """Nothing of pyrt's waiting init is reachable from its pid namespace: not its exe,
    its fds (among them a directory of the host's procfs, for the exec fifo), its
    memory, environment, root or cwd. The second container's own process, as a
    control, is reachable the same way."""
    a = make_bundle(("sleep", "100"))
    assert_ok(rt.create(a))
    b = sharing_pid_ns(rt, make_bundle, rt.state(a.id)["pid"])
    got = probe(rt, b.id, 1)
    assert got == {"present"}, f"the created init is reachable: {sorted(got)}"
    control = probe(rt, b.id, ns_pid(rt.state(b.id)["pid"]))
    assert control >= REACHABLE, f"the probe cannot reach even a dumpable process: {control}"
    remove_sharer(rt, b)


def test_exec_child_is_unreachable_before_execve(rt, make_bundle, runtime_bin):
    """CVE-2019-5736 at exec: `exec --ignore-paused` into a paused container puts the
    runtime's child in the container's frozen cgroup before its execve, so it stays
    there, in the pid namespace. A process of a second container in that namespace
    must not reach its exe, fds, memory, environment, root or cwd."""
    before = digests(runtime_files(runtime_bin))
    a = make_bundle(("sleep", "100"))
    init = rt.create_started(a)["pid"]
    b = sharing_pid_ns(rt, make_bundle, init)
    old = h.cgroup_procs(a.cgroup_path)
    assert_ok(rt("pause", a.id))
    with open(os.devnull, "w") as out:
        child = rt.popen("exec", "--ignore-paused", a.id, "true", stdout=out, stderr=out)
    try:
        new = h.wait_for(lambda: h.cgroup_procs(a.cgroup_path) - old,
                         what="the exec child in the container's cgroup")
        assert len(new) == 1, new
        got = probe(rt, b.id, ns_pid(new.pop()))
        assert got == {"present"}, f"the exec child is reachable: {sorted(got)}"
    finally:
        assert_ok(rt("resume", a.id))
        assert child.wait(timeout=20) == 0
        h.spawned_done(child)
    assert digests(runtime_files(runtime_bin)) == before
    remove_sharer(rt, b)


# --------------------------------------------------------------------------- CVE-2024-21626

FD_LIST = ("for fd in $(seq 3 64); do [ -e /proc/$$/fd/$fd ] && "
           "echo $fd=$(readlink /proc/$$/fd/$fd); done; true")


def _caller_fds(tmp_path: Path) -> list[int]:
    """Inheritable fds in the caller: a directory on the host and a file."""
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    f = os.open(tmp_path / "host-file", os.O_RDWR | os.O_CREAT, 0o600)
    for fd in (d, f):
        os.set_inheritable(fd, True)
    return [d, f]


def test_no_fd_reaches_the_container_through_create_and_start(rt, make_bundle, tmp_path):
    """Create and start with inheritable host fds in the caller: the container process
    has nothing past stdio (the runtime's own fds are gone too)."""
    b = make_bundle(("sleep", "100"))
    fds = _caller_fds(tmp_path)
    try:
        for args in (["create", "--bundle", str(b.path), b.id], ["start", b.id]):
            # files, not pipes: the container keeps its stdio open
            with tempfile.TemporaryFile() as out:
                code = subprocess.run(rt.argv(*args), stdout=out, stderr=out, timeout=20,
                                      close_fds=False, stdin=subprocess.DEVNULL).returncode
                out.seek(0)
                assert code == 0, out.read()
    finally:
        for fd in fds:
            os.close(fd)
    pid = rt.wait_status(b.id, "running")["pid"]
    # "running" comes as the init leaves the fifo; its execve follows a moment later
    h.wait_for(lambda: os.readlink(f"/proc/{pid}/exe") == "/bin/busybox",
               what="the container's process to be exec'd")
    assert sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]


def test_no_fd_reaches_exec(rt, make_bundle, tmp_path):
    b = make_bundle(("sleep", "100"))
    rt.create_started(b)
    fds = _caller_fds(tmp_path)
    try:
        res = subprocess.run(rt.argv("exec", b.id, "sh", "-c", FD_LIST), capture_output=True,
                             text=True, timeout=20, close_fds=False, stdin=subprocess.DEVNULL)
    finally:
        for fd in fds:
            os.close(fd)
    assert res.returncode == 0, describe(res)
    assert res.stdout.split() == [], "fds reached the exec'd process" + describe(res)


def _cwd_escapes(res: subprocess.CompletedProcess) -> bool:
    """Did a process started with cwd /proc/self/fd/N/.. end up outside its root? Then
    getcwd(3) fails (the kernel says "(unreachable)") and busybox's `pwd -P` prints no
    path; readlink of /proc/self/cwd would still say "/" for the root of a detached
    mount, such as the host's procfs."""
    if res.returncode != 0:
        return False  # refused
    return not res.stdout.startswith("/")


CWD_PROBE = "pwd -P"


@pytest.mark.parametrize("mode", ["run", "exec"])
def test_cwd_through_a_leaked_fd(rt, make_bundle, mode):
    """process.cwd (run) and `exec --cwd` of the form /proc/self/fd/N/..: the fd is
    whatever the runtime's process holds while it changes directory. If any of them were
    a directory outside the rootfs, the process would start outside it."""
    escaped = []
    target = None
    if mode == "exec":
        target = make_bundle(("sleep", "100"))
        rt.create_started(target)
    for fd in range(3, 16):
        cwd = f"/proc/self/fd/{fd}/.."
        if mode == "run":
            b = make_bundle(("sh", "-c", CWD_PROBE), write=False)
            b.config["process"]["cwd"] = cwd
            b.write()
            res = rt.run(b)
            rt.delete(b.id, force=True)
        else:
            assert target is not None
            res = rt("exec", "--cwd", cwd, target.id, "sh", "-c", CWD_PROBE)
        if _cwd_escapes(res):
            escaped.append(f"fd {fd}: {res.stdout.strip()}")
    assert not escaped, f"processes started outside the rootfs: {escaped}"


# --------------------------------------------------------------------------- CVE-2021-30465


def _volume_race(rt, make_bundle, tmp_path: Path, link_target: str, rounds: int) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    swapper = make_bundle(("sh", "-c", "cd /vol; while :; do mkdir sub 2>/dev/null; "
                           "rm -rf sub; ln -s $0 sub 2>/dev/null; rm -f sub; done",
                           link_target), write=False)
    swapper.add_mount("/vol", "bind", str(vol), ["rbind"])
    rt.create_started(swapper)
    for _ in range(rounds):
        b = make_bundle(("true",), write=False)
        b.add_mount("/vol", "bind", str(vol), ["rbind"])
        b.add_mount("/vol/sub/x", "tmpfs", "tmpfs", ["size=64k"])
        rt.create(b)
        assert os.listdir(victim) == [], f"the runtime made {os.listdir(victim)} on the host"
        with open("/proc/self/mountinfo") as f:
            assert str(victim) not in f.read(), "a mount landed on the host"
        rt.delete(b.id, force=True)


# runc 1.1.5 loses this race: it makes the missing directory through the swapped symlink,
# on the host (CVE-2024-45310, fixed in runc 1.1.14); its mount is still refused.
@pytest.mark.pyrt_only
@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_mount_destination_racing_into_a_symlink(rt, make_bundle, tmp_path, link):
    """One container swaps a directory of a shared volume for a symlink to a host
    directory and back, as fast as it can, while the runtime creates other containers
    with a mount below that directory. The host directory must never be touched.
    (The static case, a symlink already there, is tests/runtime/test_mounts.py::
    test_symlink_destination_stays_in_rootfs.)"""
    victim = str(tmp_path / "victim")
    target = victim if link == "absolute" else "../../../../../../../../.." + victim
    _volume_race(rt, make_bundle, tmp_path, target, rounds=25)


def test_mount_destination_symlink_in_a_volume(rt, make_bundle, tmp_path):
    """The same symlink, planted for good in the volume, resolves inside the rootfs."""
    vol = tmp_path / "vol"
    vol.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(str(victim), vol / "sub")
    b = make_bundle(("sleep", "100"), write=False)
    b.add_mount("/vol", "bind", str(vol), ["rbind"])
    b.add_mount("/vol/sub/x", "tmpfs", "tmpfs", ["size=64k"])
    res = rt.create(b)
    assert os.listdir(victim) == [], f"the runtime made {os.listdir(victim)} on the host"
    if res.returncode == 0:
        inside = b.rootfs / str(victim).lstrip("/") / "x"
        assert inside.is_dir(), "mount neither refused nor made inside the rootfs"
    else:
        assert res.returncode == 1 and res.stderr.strip(), describe(res)


# --------------------------------------------------------------------------- /proc and /sys


@pytest.mark.parametrize("where", ["proc", "sys"])
@pytest.mark.parametrize("link", ["absolute", "relative", "inside"])
def test_proc_and_sys_that_are_symlinks(rt, make_bundle, tmp_path, where, link):
    """A rootfs whose /proc or /sys is a symlink (to a host path, or to a directory of
    its own it controls): procfs/sysfs must not land on the host, and the container
    must not get a /proc or /sys where the masks miss. runc refuses ("must be mounted
    on ordinary directory"); mounting inside the rootfs with the masks in place would
    do too."""
    host = tmp_path / f"host-{where}"
    host.mkdir()
    b = make_bundle(("sh", "-c", "stat -c %t:%T /proc/keys; ls /sys/firmware | wc -l"),
                    write=False)
    (b.rootfs / where).rmdir()
    if link == "inside":
        (b.rootfs / "fake").mkdir()
        os.symlink("/fake", b.rootfs / where)
    else:
        target = str(host) if link == "absolute" else "../../../../../../../.." + str(host)
        os.symlink(target, b.rootfs / where)
    b.write()
    res = rt.run(b)
    assert os.listdir(host) == [], "the runtime wrote into the host directory"
    with open("/proc/self/mountinfo") as f:
        assert str(host) not in f.read(), "a mount landed on the host"
    if res.returncode == 0:
        assert res.stdout.split() == ["1:3", "0"], "masks missed" + describe(res)
    else:
        cg.assert_refused(rt, b, res)


def test_proc_redirected_between_its_mount_and_the_masks(rt, make_bundle, tmp_path):
    """Why a symlinked /proc is refused rather than followed: /proc -> /vol/p, /vol a
    volume another container can change. procfs is mounted on the volume's p; the
    other container renames p to q and makes a decoy p; the masks and read-only paths,
    made later by path, land on the decoy, and the real procfs at /vol/q is open (its
    sys/ writable: kernel.core_pattern is a host escape). A createRuntime hook, which
    runs on the host exactly between the mounts and the masks, stands in for the other
    container's well-timed rename."""
    vol = tmp_path / "vol"
    (vol / "p").mkdir(parents=True)
    b = make_bundle(("sh", "-c", "stat -c %t:%T /vol/q/keys; "
                     "echo evil > /vol/q/sys/kernel/domainname && echo wrote"), write=False)
    (b.rootfs / "proc").rmdir()
    os.symlink("/vol/p", b.rootfs / "proc")
    b.config["mounts"].insert(0, {"destination": "/vol", "type": "bind",
                                  "source": str(vol), "options": ["rbind"]})
    swap = f"mv {vol}/p {vol}/q && mkdir {vol}/p && touch {vol}/p/keys"
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                            "args": ["sh", "-c", swap]}]}
    b.write()
    res = rt.run(b)
    if res.returncode == 0:
        assert res.stdout.split() == ["1:3"], "the real procfs is unmasked" + describe(res)
    else:
        cg.assert_refused(rt, b, res)


@pytest.mark.parametrize("dest", ["/proc", "/proc/sysrq-trigger", "/proc/sys/kernel"])
def test_bind_mounts_over_proc_are_refused(rt, make_bundle, tmp_path, dest):
    """CVE-2019-19921: a bind mount of something that is not procfs on /proc, or under
    it (but for the files lxcfs emulates), would give the container a /proc the runtime
    does not control. Refused."""
    src = tmp_path / "fake-proc"
    if dest == "/proc/sysrq-trigger":
        src.write_text("")
    else:
        src.mkdir()
    b = make_bundle(("true",), write=False)
    b.add_mount(dest, "bind", str(src), ["rbind"])
    cg.assert_refused(rt, b, rt.run(b))


def test_bind_mount_of_an_lxcfs_file_is_allowed(rt, make_bundle, tmp_path):
    src = tmp_path / "uptime"
    src.write_text("12345.67 1.00\n")
    b = make_bundle(("cat", "/proc/uptime"), write=False)
    b.add_mount("/proc/uptime", "bind", str(src), ["rbind", "ro"])
    res = assert_ok(rt.run(b))
    assert res.stdout == "12345.67 1.00\n", describe(res)


# --------------------------------------------------------------------------- masks


# /proc/kcore, /proc/sysrq-trigger and most of runc's default masks do not exist on this
# kernel; /proc/keys and /proc/timer_list (files), /proc/acpi and /sys/firmware (dirs) do.
MASK_PROBE = r"""
for p in /proc/keys /proc/self/root/proc/keys /proc/1/root/proc/keys \
         /proc/self/root/proc/timer_list /proc/1/root/proc/timer_list; do
  echo "$p $(stat -c %t:%T $p) $(cat $p 2>/dev/null | wc -c)"
done
for p in /proc/acpi /proc/1/root/proc/acpi /proc/self/root/sys/firmware; do
  echo "$p $(stat -f -c %T $p)"
done
umount /proc/keys 2>/dev/null && echo umounted-keys
umount -l /proc/timer_list 2>/dev/null && echo umounted-timer_list
umount /proc/acpi 2>/dev/null && echo umounted-acpi
mount -o remount,rw /proc/sys 2>/dev/null && echo remounted-sys
mount -o remount,bind,rw /proc/sys 2>/dev/null && echo remounted-sys-bind
mkdir -p /tmp/p && mount -t proc proc /tmp/p 2>/dev/null && echo new-proc
echo evil > /proc/sys/kernel/domainname 2>/dev/null && echo wrote-sysctl
exec 3< /proc/keys && cat /proc/self/fd/3 | wc -c
true
"""


def test_masked_and_readonly_paths_cannot_be_bypassed(run_sh):
    """The masks hold through /proc/self/root and /proc/1/root and through an fd,
    cannot be unmounted, /proc/sys cannot be remounted writable or written (root of its
    own uts namespace could write domainname otherwise), and no second procfs can
    be mounted."""
    res = assert_ok(run_sh(MASK_PROBE))
    lines = res.stdout.splitlines()
    for line in lines[:5]:
        path, dev, size = line.split()
        assert (dev, size) == ("1:3", "0"), f"{path} is not /dev/null: {line}" + describe(res)
    for line in lines[5:8]:
        path, fstype = line.split()
        assert fstype == "tmpfs", f"{path} is not masked: {line}" + describe(res)
    assert lines[8:] == ["0"], "a mask or read-only path gave way" + describe(res)


# runc 1.1.5 binds "/dev/null" by name and follows the symlink (CVE-2025-31133, fixed in
# runc 1.2.8): /proc/keys shows the sysctl (read-only there, as its read-only paths
# come first).
@pytest.mark.pyrt_only
@pytest.mark.parametrize("readonly", [True, False])
def test_masks_are_not_redirected_by_a_dev_null_symlink(rt, make_bundle, tmp_path,
                                                        readonly):
    """/dev bind mounted from a volume another container can write, whose null is a
    symlink to a sysctl: masking /proc/keys by binding "/dev/null" over it would put
    that sysctl there, writable unless /proc/sys is a read-only path.
    kernel.domainname stands in for kernel.core_pattern, the host escape. Refused, or
    the mask is the real null device."""
    dev = tmp_path / "dev"
    dev.mkdir()
    os.symlink("/proc/sys/kernel/domainname", dev / "null")
    b = make_bundle(("sh", "-c", "stat -c %t:%T /proc/keys; echo evil > /proc/keys; "
                     "cat /proc/sys/kernel/domainname"), write=False)
    if not readonly:
        b.config["linux"]["readonlyPaths"] = []
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith(
        "/dev")]
    b.add_mount("/dev", "bind", str(dev), ["rbind"])
    b.config["linux"]["maskedPaths"] = ["/proc/keys"]
    b.write()
    res = rt.run(b)
    if res.returncode == 0:
        assert res.stdout.split()[0] == "1:3", "the mask is not /dev/null" + describe(res)
        assert "evil" not in res.stdout, "a masked path became a writable sysctl" + \
            describe(res)
    else:
        cg.assert_refused(rt, b, res)


def test_readonly_paths_control(run_sh):
    """Without readonlyPaths the same write to domainname succeeds: the probe above
    can fail."""
    res = assert_ok(run_sh("echo ctl > /proc/sys/kernel/domainname && cat "
                           "/proc/sys/kernel/domainname",
                           lambda b: b.config["linux"].__setitem__("readonlyPaths", [])))
    assert res.stdout.strip() == "ctl", describe(res)


# --------------------------------------------------------------------------- the console


# runc 1.1.5 creates (truncating) and mounts /dev/console by name, following the symlink
# (CVE-2025-52565, fixed in runc 1.2.8).
@pytest.mark.pyrt_only
def test_console_bind_is_not_redirected_by_a_symlink(rt, make_bundle, tmp_path,
                                                     console_socket):
    """/dev bound from a volume someone else controls, its console a symlink: binding
    the pty over "/dev/console" by name would put the mount (and, opened with O_TRUNC,
    an empty file) wherever the symlink points, masked or read-only paths included.
    /victim stands in for those. Refused, or /victim is untouched."""
    srv, path = console_socket
    dev = tmp_path / "dev"
    (dev / "pts").mkdir(parents=True)
    os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.symlink("pts/ptmx", dev / "ptmx")
    os.symlink("/victim", dev / "console")
    b = make_bundle(("sh", "-c", "stat -c %F /victim; cat /victim; echo done; sleep 100"),
                    write=False)
    (b.rootfs / "victim").write_text("intact\n")
    b.config["process"]["terminal"] = True
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if not m["destination"].startswith("/dev")]
    b.add_mount("/dev", "bind", str(dev), ["rbind"])
    b.add_mount("/dev/pts", "devpts", "devpts", ["newinstance", "ptmxmode=0666"])
    res = rt.create(b, "--console-socket", path)
    if res.returncode != 0:
        cg.assert_refused(rt, b, res)
    else:
        _name, master = h.recv_master(srv)
        try:
            assert_ok(rt.start(b.id))
            out = h.read_until(master, b"done")
        finally:
            os.close(master)
        assert b"regular file" in out and b"intact" in out, out
    assert (b.rootfs / "victim").read_text() == "intact\n"


# --------------------------------------------------------------------------- no_new_privs


def _setuid_busybox(b: h.Bundle) -> None:
    """/suid/busybox: a setuid+setgid root copy of busybox (not a hardlink of the
    template), whose /etc/busybox.conf lets its `id` applet keep the privileges."""
    d = b.rootfs / "suid"
    d.mkdir()
    shutil.copy2(h.BUSYBOX, d / "busybox")
    os.chown(d / "busybox", 0, 0)
    os.chmod(d / "busybox", 0o6755)
    os.symlink("busybox", d / "id")
    conf = b.rootfs / "etc" / "busybox.conf"
    conf.write_text("[SUID]\nid = ssx root.root\n")
    os.chmod(conf, 0o600)


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privs_against_a_setuid_binary(rt, make_bundle, nnp):
    b = make_bundle(("/suid/id", "-u"), write=False)
    _setuid_busybox(b)
    b.config["process"]["user"] = {"uid": h.TESTER_UID, "gid": h.TESTER_GID}
    b.config["process"]["noNewPrivileges"] = nnp
    b.write()
    res = assert_ok(rt.run(b))
    want = str(h.TESTER_UID) if nnp else "0"  # without no_new_privs: the control
    assert res.stdout.strip() == want, describe(res)


@pytest.mark.parametrize("nnp", [True, False])
def test_exec_no_new_privs_against_a_setuid_binary(rt, make_bundle, nnp):
    b = make_bundle(("sleep", "100"), write=False)
    _setuid_busybox(b)
    b.config["process"]["noNewPrivileges"] = False
    b.write()
    rt.create_started(b)
    flags = ["--no-new-privs"] if nnp else []
    res = assert_ok(rt("exec", *flags, "--user", f"{h.TESTER_UID}:{h.TESTER_GID}", b.id,
                       "/suid/id", "-u"))
    want = str(h.TESTER_UID) if nnp else "0"
    assert res.stdout.strip() == want, describe(res)


# --------------------------------------------------------------------------- the price


def _shifted_userns(b: h.Bundle) -> None:
    """Container root is host uid 100000 (the rootfs is chowned to it)."""
    base = 100000
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m.get("type") != "cgroup"]
    for dirpath, dirnames, filenames in os.walk(b.rootfs):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), base, base)
    os.lchown(b.rootfs, base, base)
    for parent in b.path.parents:
        if str(parent) in ("/", "/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)


def test_non_dumpable_init_in_a_user_namespace(rt, make_bundle):
    """Not dumpable, the init's own /proc entries belong to the host's root, which a
    root mapped elsewhere is not: what it writes there (oom_score_adj) it writes first."""
    b = make_bundle(("sh", "-c", "id -u; cat /proc/self/oom_score_adj"), write=False)
    _shifted_userns(b)
    b.config["process"]["oomScoreAdj"] = 123
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["0", "123"], describe(res)


@pytest.mark.pyrt_only  # runc 1.1.5 has no time namespace
def test_non_dumpable_init_sets_time_offsets_in_a_user_namespace(rt, make_bundle):
    b = make_bundle(("sh", "-c", "id -u; cat /proc/self/timens_offsets"), write=False)
    _shifted_userns(b)
    b.set_namespace("time")
    b.config["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0}}
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split()[:4] == ["0", "monotonic", "86400", "0"], describe(res)


def test_non_dumpable_exec_in_a_user_namespace(rt, make_bundle):
    """The exec child too: it writes oom_score_adj before it joins (and stops being
    dumpable), where its /proc entries are still its own."""
    b = make_bundle(("sleep", "100"), write=False)
    _shifted_userns(b)
    b.config["process"]["oomScoreAdj"] = 123
    b.write()
    rt.create_started(b)
    res = assert_ok(rt("exec", b.id, "sh", "-c", "id -u; cat /proc/self/oom_score_adj"))
    assert res.stdout.split() == ["0", "123"], describe(res)
