"""Rootless: the runtime run by a real unprivileged account, as runc runs rootless.

Runtime-agnostic (runc 1.1.5 passes these too, given the same setup). The module's
setup makes a throwaway account with useradd, with a range in /etc/subuid and
/etc/subgid, lets it reach the runtime's interpreter (an ACL entry `u:<it>:--x` on
each directory on the way it could not cross, e.g. /root for a pyenv Python), and gives
it a directory of its own for bundles and $XDG_RUNTIME_DIR; the account, the ACL
entries and the directory go at the end. The runtime runs as
`runuser -u <account> -- env -i ... <runtime> ...`.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

SESSION_TAG = f"s{os.getpid()}"  # as conftest.py names this session's cgroups
SUBIDS = 65536
_ACL = "system.posix_acl_access"


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    subuid: int  # first id of its /etc/subuid range (SUBIDS long at least)
    subgid: int
    home: Path  # a directory it owns


def _sub_range(path: str, name: str) -> int | None:
    for line in Path(path).read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 3 and fields[0] == name and int(fields[2]) >= SUBIDS:
            return int(fields[1])
    return None


def _grant_traverse(path: Path, uid: int) -> Callable[[], None] | None:
    """Let `uid` cross the directory `path` with an ACL entry (u:uid:--x) when the mode
    bits do not; returns what undoes it. The ACL is written as the kernel's
    system.posix_acl_access xattr (no setfacl on this machine)."""
    st = path.stat()
    if st.st_mode & 0o001 or st.st_uid == uid:
        return None
    try:
        os.getxattr(path, _ACL)
    except OSError:
        pass
    else:
        pytest.skip(f"{path} already has an ACL; cannot let the test account through")
    mode = stat.S_IMODE(st.st_mode)

    def entry(tag: int, perm: int, qualifier: int = 0xFFFFFFFF) -> bytes:
        return struct.pack("<HHI", tag, perm, qualifier)

    group = (mode >> 3) & 7
    acl = (struct.pack("<I", 2) + entry(0x01, (mode >> 6) & 7) + entry(0x02, 1, uid)
           + entry(0x04, group) + entry(0x10, group | 1) + entry(0x20, mode & 7))
    os.setxattr(path, _ACL, acl)

    def undo() -> None:
        os.removexattr(path, _ACL)
        os.chmod(path, mode)

    return undo


def _dirs_to_cross(binary: str) -> list[Path]:
    """Every directory the account must cross to run `binary` (and its #! interpreter)."""
    files = [Path(os.path.realpath(binary))]
    with open(binary, "rb") as f:
        first = f.readline()
    if first.startswith(b"#!"):
        files.append(Path(os.path.realpath(first[2:].split()[0].decode())))
    dirs: list[Path] = []
    for f in files:
        for d in reversed(f.parents):
            if d not in dirs:
                dirs.append(d)
    return dirs


def _pids_of(uids: range | set[int]) -> list[int]:
    """Live processes whose real uid is one of `uids`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if uid in uids and h.pid_alive(int(entry)):
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def account(runtime_bin: str) -> Iterator[Account]:
    if os.geteuid() != 0:
        pytest.skip("making a test account needs root")
    for tool in ("useradd", "usermod", "userdel", "runuser", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed (passwd, util-linux and uidmap packages)")
    name = f"pyrtrl{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/bin/sh", "--user-group", name],
                   check=True, capture_output=True)
    undo: list[Callable[[], None]] = []
    base: Path | None = None
    pw = pwd.getpwnam(name)
    try:
        if _sub_range("/etc/subuid", name) is None or _sub_range("/etc/subgid", name) is None:
            first = 2_000_000 + (os.getpid() % 1000) * SUBIDS
            ids = f"{first}-{first + SUBIDS - 1}"
            subprocess.run(["usermod", "--add-subuids", ids, "--add-subgids", ids, name],
                           check=True, capture_output=True)
        for d in _dirs_to_cross(runtime_bin):
            u = _grant_traverse(d, pw.pw_uid)
            if u is not None:
                undo.append(u)
        base = Path(tempfile.mkdtemp(prefix="pyrt-rootless-", dir="/tmp"))
        os.chown(base, pw.pw_uid, pw.pw_gid)
        subuid, subgid = _sub_range("/etc/subuid", name), _sub_range("/etc/subgid", name)
        assert subuid is not None and subgid is not None
        yield Account(name, pw.pw_uid, pw.pw_gid, subuid, subgid, base)
    finally:
        h.kill_and_reap(set(_pids_of({pw.pw_uid})), None)
        for u in reversed(undo):
            u()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["userdel", name], check=False, capture_output=True)


class UserRuntime(h.Runtime):
    """The runtime run by the account: `runuser -u <it> -- env -i ... <runtime> ...`.

    No --root by default: the state goes to $XDG_RUNTIME_DIR/<runtime name>. `xdg = None`
    leaves $XDG_RUNTIME_DIR unset; `join_cgroup` (a cgroup.procs file) is where the
    command is put first, as a login session puts a user's processes in its cgroup.
    """

    def __init__(self, binary: str, acct: Account, workdir: Path) -> None:
        self.account = acct
        self.xdg: Path | None = workdir / "xdg"
        self.xdg.mkdir(mode=0o700)
        os.chown(self.xdg, acct.uid, acct.gid)
        self.join_cgroup: str | None = None
        super().__init__(binary, self.xdg / os.path.basename(binary), workdir)

    def argv(self, *args: str, global_args: Sequence[str] | None = None) -> list[str]:
        env = [f"PATH={h.DEFAULT_PATH}", f"HOME={self.workdir}", f"USER={self.account.name}",
               f"LOGNAME={self.account.name}"]
        if self.xdg is not None:
            env.append(f"XDG_RUNTIME_DIR={self.xdg}")
        argv = ["runuser", "-u", self.account.name, "--", "env", "-i", *env, self.binary,
                *(global_args or ()), *map(str, args)]
        if self.join_cgroup:
            argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', self.join_cgroup, *argv]
        return argv


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), uid, gid)
    os.lchown(path, uid, gid)


def rootless_config(args: Sequence[str], uid: int, gid: int) -> dict[str, Any]:
    """The suite's default config made rootless as `runc spec --rootless` does it."""
    doc = h.default_config(args, "")
    linux = doc["linux"]
    del linux["cgroupsPath"], linux["resources"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    for m in doc["mounts"]:
        if m["destination"] == "/sys":
            m.update(type="none", source="/sys",
                     options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        elif "options" in m:
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
    return doc


@pytest.fixture
def urt(runtime_bin: str, account: Account, request: pytest.FixtureRequest
        ) -> Iterator[UserRuntime]:
    """The account's runtime, in a directory of its own; checks what is left at the end."""
    work = Path(tempfile.mkdtemp(prefix="t-", dir=account.home))
    os.chown(work, account.uid, account.gid)
    runner = UserRuntime(runtime_bin, account, work)
    runner.bundles = []  # type: ignore[attr-defined]
    yield runner

    runner.xdg = work / "xdg"
    runner.join_cgroup = None
    problems = []
    res = runner("list", "-q")
    ids = res.stdout.split() if res.returncode == 0 else []
    for cid in dict.fromkeys([*ids, *(b.id for b in runner.bundles)]):  # type: ignore
        res = runner("delete", "--force", cid)
        if res.returncode != 0 and cid in ids:
            problems.append(f"delete --force {cid} failed at teardown:" + describe(res))
    h.reap_zombies()
    for b in runner.bundles:  # type: ignore[attr-defined]
        problems += h.leftovers(b.id, runner.root, None, b.path)
    ids_of_account = {account.uid, *range(account.subuid, account.subuid + SUBIDS)}
    stray = _pids_of(ids_of_account)
    if stray:
        problems.append(f"processes of the account left: {stray}")
        h.kill_and_reap(set(stray), None)
    shutil.rmtree(work, ignore_errors=True)
    if problems and not getattr(request.node, "_rt_failed", False):
        pytest.fail("teardown found problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def make(urt: UserRuntime, account: Account, rootfs_template: Path,
         request: pytest.FixtureRequest) -> Callable[..., h.Bundle]:
    """`make(args)`: a bundle the account owns, with a rootless config (not yet written)."""
    counter = iter(range(1, 100))
    base = request.node.name.removeprefix("test_").replace("_", "-")[:30]

    def factory(args: Sequence[str] = ("sleep", "100")) -> h.Bundle:
        n = next(counter)
        path = urt.workdir / f"bundle-{n}"
        path.mkdir()
        shutil.copytree(rootfs_template, path / "rootfs", symlinks=True)  # no hardlinks:
        _chown_tree(path, account.uid, account.gid)  # chown must not reach the template
        b = h.Bundle(f"{base}-{n}", path, "", rootless_config(args, account.uid, account.gid))
        urt.bundles.append(b)  # type: ignore[attr-defined]
        return b

    return factory


def _write(b: h.Bundle, acct: Account) -> h.Bundle:
    b.write()
    os.chown(b.config_path, acct.uid, acct.gid)
    return b


def refused(urt: UserRuntime, b: h.Bundle, res: subprocess.CompletedProcess,
            msg_has: str | None = None) -> None:
    """Exit 1 with a message (pyrt: exactly one `pyrt: ` line), and nothing left."""
    assert_fails(res, 1, msg_has)
    if os.path.basename(urt.binary) == "pyrt":
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyrt: "), describe(res)
    assert b.id not in urt.list_ids(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, urt.root, None, b.path)
    assert not _pids_of({urt.account.uid}), "a process of the account is left"


# ------------------------------------------------------------------ running


def test_spec_rootless_config_runs(urt, account, make):
    """The runtime's own `spec --rootless` config runs as the account: root inside is the
    account outside, setgroups is denied, /dev nodes and /sys are the host's."""
    b = make()
    assert_ok(urt("spec", "--rootless", "--bundle", str(b.path)))
    doc = json.loads(b.config_path.read_text())
    doc["process"]["terminal"] = False
    doc["process"]["args"] = [
        "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map "
        "/proc/self/setgroups; stat -c %t:%T /dev/null; echo x > /dev/null && echo null-ok; "
        "ls /sys/kernel > /dev/null && echo sys-ok"]
    b.config = doc
    _write(b, account)
    res = assert_ok(urt.run(b))
    lines = [line.split() for line in res.stdout.splitlines()]
    assert lines == [["0"], ["0"], ["0", str(account.uid), "1"], ["0", str(account.gid), "1"],
                     ["deny"], ["1:3"], ["null-ok"], ["sys-ok"]], describe(res)
    assert urt.root.is_dir() and os.stat(urt.root).st_uid == account.uid
    assert os.listdir(urt.root) == []


def test_lifecycle_with_state_under_xdg_runtime_dir(urt, account, make):
    b = _write(make(), account)
    pid_file = urt.workdir / "init.pid"
    assert_ok(urt.create(b, "--pid-file", str(pid_file)))
    state_dir = urt.root / b.id
    assert state_dir.is_dir() and os.stat(state_dir).st_uid == account.uid
    st = urt.state(b.id)
    assert st["status"] == "created" and pid_file.read_text().strip() == str(st["pid"])
    assert_ok(urt.start(b.id))
    urt.wait_status(b.id, "running")
    status = Path(f"/proc/{st['pid']}/status").read_text()
    assert f"Uid:\t{account.uid}\t" in status, "the init is not the account on the host"
    res = assert_ok(urt("exec", b.id, "sh", "-c", "id -u; cat /proc/1/cmdline"))
    assert res.stdout.split("\n")[0] == "0" and "sleep" in res.stdout, describe(res)
    assert_ok(urt.kill(b.id, "KILL"))
    urt.wait_status(b.id, "stopped")
    assert_ok(urt.delete(b.id))
    assert not state_dir.exists()


def test_explicit_root_without_xdg_runtime_dir(urt, account, make):
    urt.xdg = None
    b = _write(make(("true",)), account)
    state = urt.workdir / "state"
    res = assert_ok(urt("run", "--bundle", str(b.path), b.id,
                        global_args=["--root", str(state)]))
    assert os.listdir(state) == [], describe(res)


def test_without_xdg_runtime_dir_the_default_root_is_not_the_accounts(urt, account, make):
    """No $XDG_RUNTIME_DIR: the state would go to /run/<runtime>, which is root's."""
    urt.xdg = None
    b = _write(make(("true",)), account)
    run_root = Path(f"/run/{os.path.basename(urt.binary)}")
    before = set(os.listdir(run_root)) if run_root.is_dir() else set()
    assert_fails(urt.create(b), 1)
    after = set(os.listdir(run_root)) if run_root.is_dir() else set()
    assert after == before
    assert not _pids_of({account.uid})


def test_no_cgroup_without_delegation(urt, account, make):
    """No cgroupsPath and nothing delegated: the container stays in the caller's cgroup."""
    b = _write(make(), account)
    pid = urt.create_started(b)["pid"]
    caller = Path("/proc/self/cgroup").read_text()
    assert Path(f"/proc/{pid}/cgroup").read_text() == caller
    # without a cgroup of its own there is nothing to list or freeze it by
    assert_fails(urt("ps", b.id), 1)
    assert_fails(urt("pause", b.id), 1)
    assert_fails(urt("update", "--pids-limit", "10", b.id), 1)
    assert urt.status(b.id) == "running"


@pytest.mark.pyrt_only
def test_sysfs_without_a_network_namespace_is_bound(urt, account, make):
    """A sysfs mount needs a network namespace of the user namespace's: without one the
    host's /sys is bound instead (read-only, as asked). pyrt-only: runc fails with EPERM
    (its `spec --rootless` asks for the bind itself)."""
    b = make(("sh", "-c", "ls /sys/kernel > /dev/null && echo sys-ok; touch /sys/x || true"))
    sys_mount = next(m for m in b.config["mounts"] if m["destination"] == "/sys")
    sys_mount.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    _write(b, account)
    res = assert_ok(urt.run(b))
    assert res.stdout.split() == ["sys-ok"], describe(res)
    assert "Read-only" in res.stderr or "read-only" in res.stderr.lower(), describe(res)


def test_multi_range_map_through_newuidmap(urt, account, make):
    """Container 0 is the account, 1..1000 come from its subordinate range: an owner from
    that range shows inside, and container root can hand files to it."""
    b = make(("sh", "-ec", "cat /proc/self/uid_map; stat -c %u:%g /sub-owned; "
              "chown 500:600 /tmp/made; cat /proc/self/setgroups"))
    linux = b.config["linux"]
    linux["uidMappings"].append({"containerID": 1, "hostID": account.subuid, "size": 1000})
    linux["gidMappings"].append({"containerID": 1, "hostID": account.subgid, "size": 1000})
    for caps in b.config["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
    (b.rootfs / "sub-owned").write_text("x")
    os.chown(b.rootfs / "sub-owned", account.subuid + 999, account.subgid + 998)
    (b.rootfs / "tmp" / "made").write_text("x")
    os.chown(b.rootfs / "tmp" / "made", account.uid, account.gid)
    _write(b, account)
    res = assert_ok(urt.run(b))
    lines = [line.split() for line in res.stdout.splitlines()]
    assert lines == [["0", str(account.uid), "1"], ["1", str(account.subuid), "1000"],
                     ["1000:999"], ["allow"]], describe(res)
    made = os.stat(b.rootfs / "tmp" / "made")
    assert (made.st_uid, made.st_gid) == (account.subuid + 499, account.subgid + 599)


def test_process_user_from_the_subordinate_range(urt, account, make):
    b = make(("sh", "-ec", "id -u; id -g; touch /tmp/by-user"))
    linux = b.config["linux"]
    linux["uidMappings"].append({"containerID": 1, "hostID": account.subuid, "size": 2000})
    linux["gidMappings"].append({"containerID": 1, "hostID": account.subgid, "size": 2000})
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    _write(b, account)
    res = assert_ok(urt.run(b))
    assert res.stdout.split() == ["1000", "1000"], describe(res)
    made = os.stat(b.rootfs / "tmp" / "by-user")
    assert (made.st_uid, made.st_gid) == (account.subuid + 999, account.subgid + 999)


# ------------------------------------------------------------------ delegated cgroups


@pytest.fixture
def delegated(account: Account) -> Iterator[str]:
    """A cgroup delegated to the account (in every hierarchy: the directory and its files
    are its), with a `caller` child for its processes; yields the cgroup path."""
    path = f"/{h.CGROUP_PARENT}/{SESSION_TAG}/rootless-{os.getpid()}"
    made = []
    for mount in h.cgroup_mounts():
        d = Path(mount + path)
        for sub in (d, d / "caller"):
            missing = [p for p in (*reversed(sub.parents), sub) if not p.exists()]
            for p in missing:
                p.mkdir()
                made.append(p)
                for name in ("cpuset.cpus", "cpuset.mems"):  # empty in a new cpuset
                    if (p / name).exists() and not (p / name).read_text().strip():
                        (p / name).write_text((p.parent / name).read_text())
            for p in (sub, *sub.iterdir()):
                os.chown(p, account.uid, account.gid)
    yield path
    h.kill_and_reap((), path)
    for p in reversed(made):
        if p.name not in (h.CGROUP_PARENT, SESSION_TAG):  # the session's teardown's
            try:
                p.rmdir()
            except OSError:
                pass


def test_delegated_cgroup_with_limits(urt, account, make, delegated):
    """In a delegated cgroup the container gets its own cgroup and its limits; pause
    and resume work; delete removes the cgroup it made."""
    unified = [m for m in h.cgroup_mounts() if m.endswith("/unified") or
               m == "/sys/fs/cgroup"]
    urt.join_cgroup = f"{unified[0]}{delegated}/caller/cgroup.procs" if unified else None
    b = make()
    b.config["linux"]["cgroupsPath"] = f"{delegated}/c"
    b.config["linux"]["resources"] = {"pids": {"limit": 42}}
    _write(b, account)
    pid = urt.create_started(b)["pid"]
    pids_dir = Path(f"/sys/fs/cgroup/pids{delegated}/c")
    if not pids_dir.is_dir():  # a cgroup v2 host
        pids_dir = Path(f"/sys/fs/cgroup{delegated}/c")
    assert (pids_dir / "pids.max").read_text().strip() == "42"
    assert str(pid) in (pids_dir / "cgroup.procs").read_text().split()
    assert_ok(urt("pause", b.id))
    assert urt.status(b.id) == "paused"
    assert_ok(urt("resume", b.id))
    assert urt.status(b.id) == "running"
    assert_ok(urt.delete(b.id, force=True))
    assert not h.cgroup_dirs(f"{delegated}/c"), "delete left the container's cgroup"


# ------------------------------------------------------------------ refused


def test_limits_without_a_cgroup_are_refused(urt, account, make):
    b = make()
    b.config["linux"]["resources"] = {"pids": {"limit": 10}}
    _write(b, account)
    refused(urt, b, urt.create(b), "cgroup")


def test_cgroups_path_not_delegated_is_refused(urt, account, make):
    b = make()
    cgroup = f"/{h.CGROUP_PARENT}/{SESSION_TAG}/not-delegated-{os.getpid()}"
    b.config["linux"]["cgroupsPath"] = cgroup
    _write(b, account)
    refused(urt, b, urt.create(b))
    assert not h.cgroup_dirs(cgroup)


def test_rootless_needs_a_user_namespace(urt, account, make):
    b = make()
    linux = b.config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "user"]
    del linux["uidMappings"], linux["gidMappings"]
    _write(b, account)
    refused(urt, b, urt.create(b), "user namespace")


def test_subordinate_ids_not_granted_are_refused(urt, account, make):
    """newuidmap maps only what /etc/subuid grants the account."""
    b = make()
    b.config["linux"]["uidMappings"].append(
        {"containerID": 1, "hostID": account.subuid + SUBIDS + 1_000_000, "size": 10})
    _write(b, account)
    refused(urt, b, urt.create(b))


def test_additional_gids_with_only_the_own_gid_mapped(urt, account, make):
    b = make()
    b.config["process"]["user"]["additionalGids"] = [0]
    _write(b, account)
    refused(urt, b, urt.create(b), "additional groups")


def test_unmapped_process_user_is_refused(urt, account, make):
    b = make()
    b.config["process"]["user"] = {"uid": 1000, "gid": 0}
    _write(b, account)
    refused(urt, b, urt.create(b), "mapped")


@pytest.mark.pyrt_only
def test_idmapped_mounts_are_refused(urt, account, make):
    """As runc 1.2 does (1.1.5 has no id-mapped mounts): MOUNT_ATTR_IDMAP needs rights
    over the host's filesystem that an unprivileged user lacks."""
    b = make()
    maps = [{"containerID": 0, "hostID": account.uid, "size": 1}]
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(b.path),
                               "options": ["bind", "idmap"], "uidMappings": maps,
                               "gidMappings": maps})
    _write(b, account)
    refused(urt, b, urt.create(b), "rootless")
