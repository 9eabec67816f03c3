"""Helpers for the cgroup runtime tests (test_cgroups*.py): the host's v1 hierarchies,
a container's cgroup files, block devices, caller cgroups, and "refused cleanly".

Everything here reads or writes only below /sys/fs/cgroup/<hierarchy>/pyrt-tests/.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import rthelpers as h
from rthelpers import assert_fails, describe

ROOT = "/sys/fs/cgroup"


def is_pyrt(rt: h.Runtime) -> bool:
    return os.path.basename(rt.binary) == "pyrt"


_NOT_CONTROLLERS = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"}


@cache
def v1_hierarchies() -> dict[str, str]:
    """Controller (or ``name=...``) -> mount point of each mounted cgroup v1 hierarchy."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3 or fields[0] != "cgroup":
                continue
            mount = left.split()[4]
            for opt in fields[2].split(","):
                if opt not in _NOT_CONTROLLERS and not opt.startswith("release_agent="):
                    found.setdefault(opt, mount)
    return found


def has_controller(controller: str) -> bool:
    return controller in v1_hierarchies()


def cgdir(controller: str, cgroup_path: str) -> str:
    """The directory of ``cgroup_path`` in the hierarchy that holds ``controller``."""
    return v1_hierarchies()[controller] + cgroup_path


def cgread(b: h.Bundle, controller: str, name: str) -> str:
    """A file of the container's cgroup, stripped ("" when missing)."""
    return h.read(os.path.join(cgdir(controller, b.cgroup_path), name)).strip()


def cgexists(b: h.Bundle, controller: str, name: str) -> bool:
    return os.path.exists(os.path.join(cgdir(controller, b.cgroup_path), name))


def set_resources(b: h.Bundle, **resources: Any) -> h.Bundle:
    b.config["linux"]["resources"].update(resources)
    return b.write()


def assert_refused(rt: h.Runtime, b: h.Bundle, res: subprocess.CompletedProcess,
                   cid: str | None = None) -> subprocess.CompletedProcess:
    """Exit status 1, nothing left behind; for pyrt also one ``pyrt: what: why`` line
    (runc logs in its own format)."""
    cid = cid or b.id
    assert_failed(rt, res)
    assert cid not in rt.list_ids(), "refused container is listed:" + describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(cid, rt.root, b.cgroup_path, b.path)
    return res


def assert_failed(rt: h.Runtime, res: subprocess.CompletedProcess,
                  stderr_has: str | None = None) -> subprocess.CompletedProcess:
    """A refused command: exit 1 and, for pyrt, one `pyrt: ...` line."""
    assert_fails(res, 1, stderr_has)
    if is_pyrt(rt):
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and re.match(r"^pyrt: [^:]+: .+", lines[0]), describe(res)
    return res


def some_cpu() -> str:
    """One cpu containers may use (the last one, so that it differs from "0-N")."""
    cpus = h.read(os.path.join(v1_hierarchies()["cpuset"], "cpuset.effective_cpus")).strip()
    return cpus.split(",")[-1].split("-")[-1]


# ------------------------------------------------------------------ block devices


@cache
def block_device() -> tuple[int, int]:
    """major:minor of a whole-disk block device of this host (from /proc/partitions)."""
    with open("/proc/partitions") as f:
        for line in f.read().splitlines()[2:]:
            fields = line.split()
            if len(fields) != 4:
                continue
            major, minor = int(fields[0]), int(fields[1])
            if not os.path.exists(f"/sys/dev/block/{major}:{minor}/partition"):
                return major, minor
    raise AssertionError("no block device in /proc/partitions")


def loop_device() -> tuple[int, int] | None:
    """major:minor of a loop device (block major 7), or None. Opening the disk the host
    runs on fails with EPERM inside a container even where the devices cgroup allows
    it (seen on this kernel), so the device rules are tested on an idle loop device."""
    found = [tuple(map(int, e.split(":"))) for e in os.listdir("/sys/dev/block")
             if e.startswith("7:")]
    return min(found) if found else None  # type: ignore[return-value]


def io_scheduler(major: int, minor: int) -> str:
    """The active I/O scheduler of a block device ("" when unknown)."""
    text = h.read(f"/sys/dev/block/{major}:{minor}/queue/scheduler")
    m = re.search(r"\[(\S+)\]", text)
    return m.group(1) if m else ""


@cache
def blkio_child_files() -> frozenset[str]:
    """The files a fresh (non-root) blkio cgroup has on this kernel: some, such as
    blkio.bfq.weight, are not shown in the root cgroup."""
    probe = cgdir("blkio", f"/{h.CGROUP_PARENT}/probe-{os.getpid()}")
    os.makedirs(probe, exist_ok=True)
    try:
        return frozenset(os.listdir(probe))
    finally:
        os.rmdir(probe)


def blkio_weight_file() -> str | None:
    """The file runc writes blockIO.weight to: blkio.weight, else blkio.bfq.weight."""
    files = blkio_child_files()
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if name in files:
            return name
    return None


# ------------------------------------------------------------------ caller cgroups


def make_cgroup(cgroup_path: str) -> None:
    """mkdir ``cgroup_path`` on every hierarchy (v1 and cgroup2), level by level;
    a new cpuset cgroup gets its parent's cpus and mems so that it can hold tasks."""
    for mount in h.cgroup_mounts():
        current = mount
        for part in cgroup_path.strip("/").split("/"):
            parent, current = current, os.path.join(current, part)
            os.makedirs(current, exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if os.path.exists(os.path.join(current, name)) and \
                        not h.read(os.path.join(current, name)).strip():
                    Path(current, name).write_text(h.read(os.path.join(parent, name)).strip())


def remove_cgroup(cgroup_path: str) -> None:
    """Best-effort rmdir of ``cgroup_path`` (and what is below it) on every hierarchy."""
    for d in h.cgroup_dirs(cgroup_path):
        for dirpath, _dirs, _files in os.walk(d, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def run_from_cgroup(rt: h.Runtime, cgroup_path: str, *args: str,
                    timeout: float = 20) -> subprocess.CompletedProcess:
    """Run the runtime from a shell that first moved itself into ``cgroup_path`` on
    every hierarchy (made beforehand with ``make_cgroup``), the way an engine running
    in its own cgroup calls it; relative cgroupsPaths resolve against that cgroup."""
    procs = " ".join(os.path.join(m + cgroup_path, "cgroup.procs") for m in h.cgroup_mounts())
    script = 'for p in $CG_PROCS; do echo $$ > "$p" || exit 99; done; exec "$@"'
    argv = ["/bin/sh", "-c", script, "sh", *rt.argv(*args)]
    env = dict(os.environ, CG_PROCS=procs)
    # Files, not pipes: the container inherits the runtime's stdio (see h.Runtime).
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = h.spawn(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                       cwd=str(rt.workdir), env=env)
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            h.spawned_done(proc)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


def proc_cgroups(pid: int) -> dict[str, str]:
    """/proc/PID/cgroup as hierarchy (controllers, "" for cgroup2) -> path."""
    result = {}
    for line in h.read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        result[controllers] = path
    return result
