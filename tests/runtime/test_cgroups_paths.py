"""Where a container's cgroup is (cgroupsPath), what may already be there, how `delete`
removes it, and what the container sees of it (cgroup namespace, `cgroup` mounts).

Facts checked against runc 1.1.5 on this hybrid host:
* A relative cgroupsPath, and an empty one (the default is the relative `<id>`), resolve
  against the caller's own cgroup on every v1 hierarchy, name=systemd included.  For the
  hybrid cgroup2 hierarchy runc 1.1.5 does not: it puts the container at
  /sys/fs/cgroup/unified/<path> whatever the caller's cgroup2 path (pyrt_only below).
* A cgroup that already holds processes: runc 1.1.5 only warns ("container's cgroup is
  not empty ... won't be supported in runc 1.2") and runs the container there.
* A frozen cgroup is refused: "container's cgroup unexpectedly frozen".
* A `cgroup` mount with a cgroup namespace: one cgroup mount per v1 hierarchy at
  /sys/fs/cgroup/<name>, rooted at the container's cgroup ("/"); the cgroup2 hierarchy is
  not mounted.  Without a cgroup namespace runc bind-mounts the container's own cgroup
  directories, so the container sees its own limits either way.
"""

from __future__ import annotations

import itertools
import os

import cghelpers as cg
import pytest
import rthelpers as h
from cghelpers import set_resources
from rthelpers import assert_ok, describe

MiB = 1 << 20
REL = f"rel-s{os.getpid()}"
_ids = itertools.count(1)

# ----------------------------------------------------------------- cgroupsPath


def _create_from_caller_cgroup(rt, make_bundle, cgroups_path):
    """create, run from a shell in a cgroup of its own under /pyrt-tests; returns the
    bundle (cgroup_path set to where the container must land), the init and the
    caller's cgroup."""
    # Unique across concurrent sessions: runc 1.1.5 puts the cgroup2 directory at the
    # root of the unified hierarchy, named after the path (or the id).
    b = make_bundle(write=False, cid=f"relpath-s{os.getpid()}-{next(_ids)}")
    caller = f"{os.path.dirname(b.cgroup_path)}/caller-{b.id}"
    if cgroups_path is None:
        del b.config["linux"]["cgroupsPath"]
        b.cgroup_path = f"{caller}/{b.id}"
    else:
        b.config["linux"]["cgroupsPath"] = cgroups_path
        b.cgroup_path = f"{caller}/{cgroups_path}"
    b.write()
    cg.make_cgroup(caller)
    assert_ok(cg.run_from_cgroup(rt, caller, "create", "--bundle", str(b.path), b.id))
    return b, rt.state(b.id)["pid"], caller


def _delete_and_check(rt, b, caller, cgroups_path):
    """`delete` from the test's own cgroup removes the container's cgroup everywhere
    (also at the hierarchy roots, where runc 1.1.5 puts the cgroup2 one)."""
    try:
        assert_ok(rt.delete(b.id, force=True))
        h.reap_zombies()
        assert not h.cgroup_dirs(b.cgroup_path), h.cgroup_dirs(b.cgroup_path)
        assert not h.cgroup_dirs("/" + cgroups_path), h.cgroup_dirs("/" + cgroups_path)
    finally:
        rt.delete(b.id, force=True)
        cg.remove_cgroup(caller)


@pytest.mark.parametrize("cgroups_path", [REL, None], ids=["relative", "empty"])
def test_cgroups_path_relative_to_callers_cgroup(rt, make_bundle, cgroups_path):
    """One path component only: runc 1.1.5 makes the cgroup2 directory at the root of
    the unified hierarchy and leaves its parents behind when it deletes."""
    b, pid, caller = _create_from_caller_cgroup(rt, make_bundle, cgroups_path)
    paths = cg.proc_cgroups(pid)
    v1 = {k: v for k, v in paths.items() if k}
    assert v1 and all(p == b.cgroup_path for p in v1.values()), (b.cgroup_path, paths)
    assert set(v1) >= {"memory", "pids", "devices", "freezer"} | set(
        k for k in cg.v1_hierarchies() if k.startswith("name=")), paths
    for m in h.cgroup_mounts():  # nothing lands in the caller's cgroup itself
        assert not h.read(f"{m}{caller}/cgroup.procs").split(), m
    _delete_and_check(rt, b, caller, os.path.basename(b.cgroup_path))


@pytest.mark.pyrt_only
def test_cgroups_path_relative_on_hybrid_cgroup2(rt, make_bundle):
    # pyrt-only: runc 1.1.5 resolves a relative path against the unified mount point
    # for the hybrid cgroup2 hierarchy (GetOwnCgroupPath("") ignores /proc/self/cgroup).
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        pytest.skip("not a hybrid host")
    b, pid, caller = _create_from_caller_cgroup(rt, make_bundle, REL)
    assert cg.proc_cgroups(pid)[""] == b.cgroup_path
    _delete_and_check(rt, b, caller, REL)


# ----------------------------------------------------------------- what is already there


@pytest.mark.pyrt_only
def test_cgroup_with_processes_refused(rt, make_bundle):
    # pyrt-only: runc 1.1.5 warns "container's cgroup is not empty: 1 process(es) found"
    # and runs the container in it; runc 1.2 refuses, as issue #5 asks.
    b = make_bundle()
    cg.make_cgroup(b.cgroup_path)
    sleeper = h.spawn(["sleep", "100"])
    try:
        for m in h.cgroup_mounts():
            with open(f"{m}{b.cgroup_path}/cgroup.procs", "w") as f:
                f.write(str(sleeper.pid))
        res = cg.assert_failed(rt, rt.create(b))
        assert b.id not in rt.list_ids(), describe(res)
        assert not (rt.root / b.id).exists(), describe(res)
        assert h.cgroup_procs(b.cgroup_path) == {sleeper.pid}, "create left a process"
        assert h.pid_alive(sleeper.pid), "create killed what was in the cgroup"
    finally:
        sleeper.kill()
        sleeper.wait()
        h.spawned_done(sleeper)
        cg.remove_cgroup(b.cgroup_path)
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def _hierarchy_walked_last() -> str:
    """The mount point of the hierarchy pyrt makes its directory in last: a hybrid host's
    cgroup2, else the last v1 hierarchy in /proc/self/cgroup."""
    mounts = h.cgroup_mounts()
    unified = [m for m in mounts if os.path.exists(f"{m}/cgroup.controllers")]
    if unified:
        return unified[0]
    with open("/proc/self/cgroup") as f:
        last = [line.split(":")[1] for line in f if line.split(":")[1]][-1]
    return cg.v1_hierarchies()[last.split(",")[0]]


@pytest.mark.pyrt_only
def test_cgroup_busy_on_one_hierarchy_is_left_as_it_was(rt, make_bundle):
    # pyrt-only, as above. The refusal comes before anything is made: an early version
    # refused only on reaching the busy hierarchy, then "cleaned up" by removing the
    # directories it had found on the others (not its own), and retried the busy one
    # for a second.
    b = make_bundle()
    cg.make_cgroup(b.cgroup_path)
    busy = _hierarchy_walked_last()
    sleeper = h.spawn(["sleep", "100"])
    try:
        with open(f"{busy}{b.cgroup_path}/cgroup.procs", "w") as f:
            f.write(str(sleeper.pid))
        res = cg.assert_failed(rt, rt.create(b), "already holds processes")
        assert not (rt.root / b.id).exists(), describe(res)
        for mount in h.cgroup_mounts():
            assert os.path.isdir(f"{mount}{b.cgroup_path}"), f"create removed {mount}"
        assert h.pid_alive(sleeper.pid), "create killed what was in the cgroup"
    finally:
        sleeper.kill()
        sleeper.wait()
        h.spawned_done(sleeper)
        cg.remove_cgroup(b.cgroup_path)
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_frozen_cgroup_refused(rt, make_bundle):
    """runc 1.1.5 checks the freezer before making anything: "container's cgroup
    unexpectedly frozen", exit 1."""
    b = make_bundle()
    freezer = cg.cgdir("freezer", b.cgroup_path)
    os.makedirs(freezer)
    with open(f"{freezer}/freezer.state", "w") as f:
        f.write("FROZEN")
    try:
        res = cg.assert_failed(rt, rt.create(b, timeout=3))
        assert b.id not in rt.list_ids(), describe(res)
        assert not h.cgroup_procs(b.cgroup_path), "create left a (frozen) process"
        assert set(h.cgroup_dirs(b.cgroup_path)) <= {freezer}, h.cgroup_dirs(b.cgroup_path)
    finally:
        with open(f"{freezer}/freezer.state", "w") as f:
            f.write("THAWED")
        h.kill_and_reap((), b.cgroup_path)
        rt.delete(b.id, force=True)
        h.reap_zombies()
        cg.remove_cgroup(b.cgroup_path)


# ----------------------------------------------------------------- delete


def test_delete_force_kills_every_process_and_removes_every_hierarchy(rt, make_bundle):
    """Without a pid namespace the init's death does not take the other processes with
    it: `delete --force` kills everything in the cgroup (runc: signalAllProcesses) and
    removes the cgroup from every hierarchy (v1, name=systemd and cgroup2)."""
    b = make_bundle(("sh", "-c", "sleep 100 & sleep 100 & (sleep 100 &); exec sleep 100"),
                    write=False)
    b.remove_namespace("pid")
    pid = rt.create_started(b)["pid"]
    assert_ok(rt("exec", "--detach", b.id, "sleep", "100"))

    def five_procs():
        procs = h.cgroup_procs(b.cgroup_path)
        return procs if len(procs) >= 5 else None

    procs = h.wait_for(five_procs, 10, "5 processes in the cgroup")
    assert pid in procs
    assert sorted(h.cgroup_dirs(b.cgroup_path)) == sorted(
        m + b.cgroup_path for m in h.cgroup_mounts()), "not on every hierarchy"
    assert_ok(rt.delete(b.id, force=True))

    def all_dead():
        h.reap_zombies()
        return not [p for p in procs if h.pid_alive(p)]

    h.wait_for(all_dead, 10, f"every process of {sorted(procs)} to die")
    assert not h.cgroup_dirs(b.cgroup_path), h.cgroup_dirs(b.cgroup_path)


# ----------------------------------------------------------------- inside the container

CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}


def _run_with_cgroup_mount(rt, make_bundle, cgroupns):
    script = ("cat /proc/self/mountinfo; echo ---; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
              " /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares")
    b = make_bundle(("sh", "-c", script), write=False)
    b.config["mounts"].append(dict(CGROUP_MOUNT))
    if not cgroupns:
        b.remove_namespace("cgroup")
    set_resources(b, memory={"limit": 64 * MiB}, pids={"limit": 77}, cpu={"shares": 333})
    res = assert_ok(rt.run(b))
    mountinfo, _, values = res.stdout.partition("---\n")
    mounts = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup":
            mounts[left.split()[4]] = left.split()[3]  # mount point -> root
    assert values.split() == [str(64 * MiB), "77", "333"], (
        "the container does not see its own limits" + describe(res))
    want = {"/sys/fs/cgroup/" + os.path.basename(m) for m in cg.v1_hierarchies().values()}
    assert set(mounts) == want, describe(res)
    return b, mounts


def test_cgroup_mount_with_cgroupns(rt, make_bundle):
    _, mounts = _run_with_cgroup_mount(rt, make_bundle, cgroupns=True)
    assert set(mounts.values()) == {"/"}, mounts


def test_cgroup_mount_without_cgroupns(rt, make_bundle):
    b, mounts = _run_with_cgroup_mount(rt, make_bundle, cgroupns=False)
    assert set(mounts.values()) == {b.cgroup_path}, mounts
