"""Helpers for the runtime suite: bundles, a CLI runner, leftover checks, reaping.

Named ``rthelpers`` (not ``helpers``) so that it cannot shadow a ``helpers`` module
of tests/unit under pytest's default (prepend) import mode.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "pyrt-tests"  # every container cgroup lives under /<CGROUP_PARENT>/
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOSTNAME = "pyrt-test"
TESTER_UID = 1000
TESTER_GID = 1000

# Linux capability numbers (include/uapi/linux/capability.h).
CAPS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

RUNC_SPEC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def cap_mask(names: Iterable[str]) -> str:
    """The 16-hex-digit mask /proc/PID/status prints for a set of capability names."""
    bits = 0
    for name in names:
        bits |= 1 << CAPS[name]
    return f"{bits:016x}"


# --------------------------------------------------------------------------- bundles


def default_config(args: Sequence[str], cgroups_path: str) -> dict[str, Any]:
    """A config.json shaped like ``runc spec`` output (terminal off, writable root)."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(RUNC_SPEC_CAPS),
                "effective": list(RUNC_SPEC_CAPS),
                "permitted": list(RUNC_SPEC_CAPS),
                "ambient": list(RUNC_SPEC_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": DEFAULT_HOSTNAME,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"},  # runc 1.1.5 accepts it on this hybrid v1 host
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def build_rootfs_template(dest: Path) -> Path:
    """busybox-static plus one symlink per applet, a few dirs, passwd and group."""
    dest.mkdir(parents=True)
    for d in ("bin", "proc", "sys", "dev", "etc", "root", "home/tester", "var"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").mkdir(mode=0o1777)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    listing = subprocess.run(
        [BUSYBOX, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    wanted = set(listing) | {"sh", "true", "false", "sleep", "cat", "echo", "ls", "id"}
    for applet in sorted(wanted):
        if "/" in applet or applet in ("busybox", "[["):
            continue
        link = dest / "bin" / applet
        if not link.exists():
            os.symlink("busybox", link)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        f"tester:x:{TESTER_UID}:{TESTER_GID}:tester:/home/tester:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (dest / "etc" / "group").write_text(
        "root:x:0:\n"
        "tty:x:5:\n"
        f"tester:x:{TESTER_GID}:\n"
        "extra1:x:2000:tester\n"
        "extra2:x:3000:\n"
        "nogroup:x:65534:\n"
    )
    return dest


def clone_rootfs(template: Path, dest: Path) -> None:
    """Cheap per-test copy: hardlinks for files, symlinks kept as symlinks."""
    shutil.copytree(template, dest, symlinks=True, copy_function=os.link)
    os.chmod(dest / "tmp", 0o1777)


@dataclass
class Bundle:
    """A bundle directory; ``config`` is a dict written by ``write()``."""

    id: str
    path: Path
    cgroup_path: str
    config: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        root = self.config.get("root", {}).get("path", "rootfs")
        return Path(root) if os.path.isabs(root) else self.path / root

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write(self) -> Bundle:
        self.config_path.write_text(json.dumps(self.config, indent=2))
        return self

    # -- small config mutators ------------------------------------------------
    def set_args(self, *args: str) -> Bundle:
        self.config["process"]["args"] = list(args)
        return self.write()

    def sh(self, script: str) -> Bundle:
        return self.set_args("sh", "-c", script)

    def add_mount(self, destination: str, type_: str | None, source: str,
                  options: list[str] | None = None) -> Bundle:
        m: dict[str, Any] = {"destination": destination, "source": source}
        if type_ is not None:
            m["type"] = type_
        if options is not None:
            m["options"] = options
        self.config["mounts"].append(m)
        return self.write()

    def namespaces(self) -> list[dict[str, Any]]:
        return self.config["linux"]["namespaces"]

    def set_namespace(self, type_: str, path: str | None = None) -> Bundle:
        nss = [n for n in self.namespaces() if n["type"] != type_]
        entry: dict[str, Any] = {"type": type_}
        if path is not None:
            entry["path"] = path
        nss.append(entry)
        self.config["linux"]["namespaces"] = nss
        return self.write()

    def remove_namespace(self, type_: str) -> Bundle:
        self.config["linux"]["namespaces"] = [
            n for n in self.namespaces() if n["type"] != type_
        ]
        return self.write()


# --------------------------------------------------------------------------- runner


def describe(res: subprocess.CompletedProcess) -> str:
    args = res.args if isinstance(res.args, str) else " ".join(map(str, res.args))
    return (
        f"\n$ {args}\nexit status: {res.returncode}\n"
        f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}"
    )


def assert_ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, "command failed:" + describe(res)
    return res


def assert_fails(res: subprocess.CompletedProcess, code: int | None = 1,
                 stderr_has: str | None = None) -> subprocess.CompletedProcess:
    """The command failed (with ``code`` unless None) and said something on stderr."""
    if code is None:
        assert res.returncode != 0, "command unexpectedly succeeded:" + describe(res)
    else:
        assert res.returncode == code, f"expected exit status {code}:" + describe(res)
    assert res.stderr.strip(), "failure without a message on stderr:" + describe(res)
    if stderr_has is not None:
        assert stderr_has.lower() in res.stderr.lower(), (
            f"stderr does not mention {stderr_has!r}:" + describe(res)
        )
    return res


class Runtime:
    """Runs ``<runtime> --root <root> ARGS`` with a timeout.

    Output goes to anonymous temp files, not pipes: a container created by ``create``
    or ``run -d`` inherits the runtime's stdio, and a pipe would keep the caller waiting
    for EOF until the container exits.
    """

    def __init__(self, binary: str, root: Path, workdir: Path):
        self.binary = binary
        self.root = root
        self.workdir = workdir
        self.popens: list[subprocess.Popen] = []
        self.pids_seen: set[int] = set()

    def argv(self, *args: str, global_args: Sequence[str] | None = None) -> list[str]:
        if global_args is None:
            global_args = ["--root", str(self.root)]
        return [self.binary, *global_args, *map(str, args)]

    def __call__(self, *args: str, timeout: float = 20, cwd: Path | str | None = None,
                 global_args: Sequence[str] | None = None, stdin: Any = None,
                 stdout: Any = None, env: dict[str, str] | None = None,
                 reap: bool | None = None) -> subprocess.CompletedProcess:
        """Run the runtime; ``reap`` (default: for `delete`) reaps non-init zombies
        while waiting for it."""
        argv = self.argv(*args, global_args=global_args)
        if reap is None:
            reap = bool(args) and args[0] == "delete"
        own_out = stdout is None
        out = tempfile.TemporaryFile(mode="w+") if own_out else stdout  # noqa: SIM115
        err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in finally)
        try:
            proc = spawn(
                argv,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=out,
                stderr=err,
                cwd=str(cwd or self.workdir),
                env=env,
            )
            deadline = time.monotonic() + timeout
            try:
                while True:
                    try:
                        proc.wait(timeout=0.05 if reap else max(0.0, deadline - time.monotonic()))
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() >= deadline:
                            proc.kill()
                            proc.wait()
                            err.seek(0)
                            raise AssertionError(
                                f"timed out after {timeout}s: {' '.join(argv)}\n"
                                f"stderr so far:\n{err.read()}"
                            ) from None
                        self.reap_non_init()
            finally:
                spawned_done(proc)
            text_out = ""
            if own_out:
                out.seek(0)
                text_out = out.read()
            err.seek(0)
            return subprocess.CompletedProcess(argv, proc.returncode, text_out, err.read())
        finally:
            if own_out:
                out.close()
            err.close()

    def reap_non_init(self) -> list[int]:
        """Reap exited children that are not container inits we know of.

        A pid namespace's init cannot finish exiting while processes of its namespace
        (e.g. `exec`'d ones, reparented to us) are unreaped zombies, so `delete` and
        status polling must reap those, as an engine's shim does.  Inits are kept
        as zombies so that "stopped with a zombie init" is exercised everywhere.
        """
        return reap_zombies(self.pids_seen | self.live_popen_pids())

    def popen(self, *args: str, global_args: Sequence[str] | None = None,
              **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", str(self.workdir))
        p = spawn(self.argv(*args, global_args=global_args), **kw)
        self.popens.append(p)
        return p

    # -- conveniences --------------------------------------------------------
    def create(self, b: Bundle, *extra: str, **kw: Any) -> subprocess.CompletedProcess:
        return self("create", "--bundle", str(b.path), *extra, b.id, **kw)

    def start(self, cid: str) -> subprocess.CompletedProcess:
        return self("start", cid)

    def kill(self, cid: str, sig: str | None = "KILL", *flags: str) -> subprocess.CompletedProcess:
        return self("kill", *flags, cid, *([sig] if sig is not None else []))

    def delete(self, cid: str, force: bool = False) -> subprocess.CompletedProcess:
        return self("delete", *(["--force"] if force else []), cid)

    def run(self, b: Bundle, *extra: str, **kw: Any) -> subprocess.CompletedProcess:
        return self("run", "--bundle", str(b.path), *extra, b.id, **kw)

    def state(self, cid: str) -> dict[str, Any]:
        res = assert_ok(self("state", cid))
        try:
            st = json.loads(res.stdout)
        except ValueError as e:  # pragma: no cover - reported as a failure
            raise AssertionError(f"state is not JSON ({e}):" + describe(res)) from None
        if st.get("pid"):
            self.pids_seen.add(int(st["pid"]))
        return st

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == want:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"container {cid} status {st['status']!r}, wanted {want!r} "
                    f"within {timeout}s: {st}"
                )
            self.reap_non_init()
            time.sleep(0.02)

    def create_started(self, b: Bundle) -> dict[str, Any]:
        """create + start; returns the state (status running)."""
        assert_ok(self.create(b))
        assert_ok(self.start(b.id))
        return self.wait_status(b.id, "running")

    def list_ids(self) -> list[str]:
        res = assert_ok(self("list", "-q"))
        return [line for line in res.stdout.splitlines() if line.strip()]

    def live_popen_pids(self) -> set[int]:
        return {p.pid for p in self.popens if p.returncode is None and p.poll() is None}


# --------------------------------------------------------------------------- processes


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) from /proc/PID/stat, or None when the pid is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def read(path: str | Path) -> str:
    """The text of a file, or "" when it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True when pid exists and is not a zombie/dead task."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X", "x")


# Pids of processes started through ``spawn`` that have not been waited for yet:
# never reaped behind their Popen's back.  The lock makes "fork + register" atomic
# with respect to a reaper running in another thread.
_spawn_lock = threading.Lock()
_active: set[int] = set()


def spawn(argv: Sequence[str], **kw: Any) -> subprocess.Popen:
    with _spawn_lock:
        p = subprocess.Popen(list(argv), **kw)
        _active.add(p.pid)
    return p


def spawned_done(p: subprocess.Popen) -> None:
    """Call once ``p`` has been waited for."""
    with _spawn_lock:
        _active.discard(p.pid)


def reap_zombies(protect: Iterable[int] = ()) -> list[int]:
    """Reap our exited children (we are a subreaper), except the protected pids.

    Only exited children are touched, chosen from /proc, and never a process started
    by ``spawn`` that is still being waited for, so a Popen never loses its status.
    """
    me = os.getpid()
    reaped = []
    with _spawn_lock:
        protected = set(protect) | _active
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            st = proc_stat(pid)
            if st is None or st[1] != me or st[0] != "Z" or pid in protected:
                continue
            try:
                got, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if got:
                reaped.append(pid)
    return reaped


def ns_inode(pid: int | str, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def wait_for(pred: Callable[[], Any], timeout: float = 10, what: str = "condition",
             interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- cgroups


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy on the host."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                mounts.append(_unescape(left.split()[4]))
    return mounts


def cgroup_dirs(cgroup_path: str) -> list[str]:
    """Existing directories for ``cgroup_path`` under any hierarchy."""
    rel = cgroup_path.lstrip("/")
    return [os.path.join(m, rel) for m in cgroup_mounts() if os.path.isdir(os.path.join(m, rel))]


def cgroup_procs(cgroup_path: str) -> set[int]:
    """Pids in ``cgroup_path`` (and below) in any hierarchy."""
    pids: set[int] = set()
    for d in cgroup_dirs(cgroup_path):
        for dirpath, _dirs, files in os.walk(d):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
    return pids


def remove_cgroup_parent(session_tag: str) -> list[str]:
    """rmdir /sys/fs/cgroup/<hierarchy>/pyrt-tests subtrees depth-first.

    Removes this session's subtree (``pyrt-tests/<session_tag>``) after killing what
    is still in it, the subtrees of sessions whose pytest pid is gone, and then
    ``pyrt-tests`` itself when it is empty.  A live concurrent session's subtree is
    left alone.  Returns the directories that could not be removed (busy).
    Call ``kill_and_reap`` on the session's cgroup first.
    """
    failed = []
    for m in cgroup_mounts():
        top = os.path.join(m, CGROUP_PARENT)
        if "process_api" in top or not os.path.isdir(top):
            continue
        for entry in os.listdir(top):
            sub = os.path.join(top, entry)
            if not os.path.isdir(sub):
                continue
            mine = entry == session_tag
            dead = entry.startswith("s") and entry[1:].isdigit() and not pid_alive(int(entry[1:]))
            if not (mine or dead):
                continue
            for dirpath, _dirs, _files in os.walk(sub, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    failed.append(dirpath)
        try:
            os.rmdir(top)
        except OSError:
            pass
    return failed


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


# --------------------------------------------------------------------------- leftovers


def rootfs_procs(rootfs: Path | str) -> set[int]:
    """Live pids whose root directory is ``rootfs`` (same device and inode)."""
    try:
        rst = os.stat(rootfs)
    except OSError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or not pid_alive(int(entry)):
            continue
        try:
            r = os.stat(f"/proc/{entry}/root")
        except OSError:
            continue
        if (r.st_dev, r.st_ino) == (rst.st_dev, rst.st_ino):
            pids.add(int(entry))
    return pids


def leftovers(cid: str, root: Path | str, cgroup_path: str | None,
              bundle: Path | str | None, pids: Iterable[int] = ()) -> list[str]:
    """Everything a container may have left behind, as human-readable lines."""
    found = []
    root = Path(root)
    if (root / cid).exists():
        found.append(f"state dir {root / cid} still exists: {os.listdir(root / cid)}")
    if cgroup_path:
        for d in cgroup_dirs(cgroup_path):
            found.append(f"cgroup dir {d} still exists")
    if bundle:
        bpath = os.path.realpath(str(bundle))
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if bpath in _unescape(fields[3]) or bpath in _unescape(fields[4]):
                    found.append(f"host mount left: {line.strip()}")
        rootfs = Path(bpath) / "rootfs"
        try:
            rst = os.stat(rootfs)
            rkey = (rst.st_dev, rst.st_ino)
        except OSError:
            rkey = None
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            pid = int(entry)
            if not pid_alive(pid):
                continue
            try:
                r = os.stat(f"/proc/{pid}/root")
                if rkey and (r.st_dev, r.st_ino) == rkey:
                    found.append(f"live process {pid} has the rootfs as its root")
                    continue
                for link in ("root", "cwd"):
                    target = os.readlink(f"/proc/{pid}/{link}")
                    if target.startswith(str(rootfs)):
                        found.append(f"live process {pid} has {link} {target}")
                        break
            except OSError:
                continue
    for pid in pids:
        st = proc_stat(pid)
        # A pid that is alive and still our child (inits reparent to us, the
        # subreaper) is the container's process, not an unrelated reuse of the pid.
        if st is not None and st[0] not in ("Z", "X", "x") and st[1] == os.getpid():
            found.append(f"container process {pid} is still alive: {st}")
    return found


def assert_no_leftovers(cid: str, root: Path | str, cgroup_path: str | None,
                        bundle: Path | str | None, pids: Iterable[int] = ()) -> None:
    found = leftovers(cid, root, cgroup_path, bundle, pids)
    assert not found, f"leftovers of container {cid!r}:\n  " + "\n  ".join(found)


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def kill_and_reap(pids: Iterable[int], cgroup_path: str | None = None,
                  protect: Iterable[int] = (), timeout: float = 5) -> None:
    """SIGKILL pids (and everything in cgroup_path), wait for them to die, reap."""
    pids = set(pids)
    if cgroup_path:
        pids |= cgroup_procs(cgroup_path)
    kill_pids(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap_zombies(protect)
        alive = {p for p in pids if pid_alive(p)}
        if cgroup_path:
            alive |= {p for p in cgroup_procs(cgroup_path) if pid_alive(p)}
        if not alive:
            break
        kill_pids(alive)
        time.sleep(0.05)
    reap_zombies(protect)


@dataclass
class Tracker:
    """Bundles made during one test (for teardown checks)."""

    bundles: list[Bundle] = field(default_factory=list)


# --------------------------------------------------------------------------- ptys


def recv_master(srv: socket.socket) -> tuple[bytes, int]:
    """Accept (after create returned, like the containerd shim) and take one fd."""
    conn, _ = srv.accept()
    conn.settimeout(10)
    with conn:
        fds = array.array("i")
        msg, ancdata, flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
        assert not flags & socket.MSG_CTRUNC, "control data truncated"
        rights = [(lvl, typ, data) for lvl, typ, data in ancdata
                  if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS]
        assert len(ancdata) == 1 and len(rights) == 1, f"want one SCM_RIGHTS message: {ancdata}"
        fds.frombytes(rights[0][2][: len(rights[0][2]) - len(rights[0][2]) % fds.itemsize])
        assert len(fds) == 1, f"want exactly one fd, got {list(fds)}"
        assert msg, "the name payload must be non-empty on a SOCK_STREAM socket"
        assert len(msg) < 4096
        # Nothing else follows: the runtime closes its end.
        rest = conn.recv(4096)
        assert rest == b"", f"unexpected extra data on the console socket: {rest!r}"
        return msg, fds[0]


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"did not see {needle!r} on the pty; got {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: slave side closed
                break
            if not chunk:
                break
            buf += chunk
    assert needle in buf, f"did not see {needle!r} on the pty; got {buf!r}"
    return buf


# --------------------------------------------------------------------------- user namespaces


@contextlib.contextmanager
def crossable_dir(prefix: str = "pyrt-open-") -> Iterator[Path]:
    """A fresh directory under /tmp that every uid may cross (0711), for what a container
    root other than host root must reach (its rootfs, bind sources). Not under pytest's
    tmp_path: every pytest session that starts (other suites run in parallel) resets
    /tmp/pytest-of-<user> to 0700."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def move_rootfs(b: Bundle, to: Path, copy: bool = False) -> Path:
    """Put the bundle's rootfs under `to` (config root.path made absolute); `copy`: as a
    real copy (not hardlinks to the session's template), to be chowned."""
    dest = to / f"{b.id}-rootfs"
    if copy:
        shutil.copytree(b.rootfs, dest, symlinks=True)
        shutil.rmtree(b.rootfs)
    else:
        b.rootfs.rename(dest)
    b.config["root"]["path"] = str(dest)
    return dest
