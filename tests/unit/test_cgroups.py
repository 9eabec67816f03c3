"""pyrt.cgroups: cgroupsPath resolution and the drivers' mapping of linux.resources to files.

THE CGROUP TREE HERE IS FAKE. Unit tests must not need root, so a tmp directory of plain
files laid out like v1 hierarchies (memory/, "cpu,cpuacct"/, pids/, devices/, cpuset/ ...)
stands in for a real cgroupfs. Plain files do not behave like cgroup files (mkdir makes no
interface files, a write does not replace the content, nothing is validated), so every
file the driver touches is pre-created and every write is recorded through a patched
`write`. The runtime tests in tests/runtime exercise the real /sys/fs/cgroup.
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrt import cgroups
from pyrt.cgroups import base, v1, v2
from pyrt.cgroups.device_rules import DEFAULT_RULES
from pyrt.errors import ConfigError, PyrtError

DEFAULTS = [rule.v1_text() for rule in DEFAULT_RULES]

# ---------------------------------------------------------------- resolve


@pytest.mark.parametrize("path,cid,own,expected", [
    ("/abs/path", "c1", "/user.slice/x", "/abs/path"),
    ("/abs/../other/./p/", "c1", "/own", "/other/p"),
    ("rel/x", "c1", "/own/cg", "/own/cg/rel/x"),
    ("rel", "c1", "/", "/rel"),
    ("../sibling", "c1", "/own/cg", "/own/sibling"),
    ("../../../../x", "c1", "/own", "/x"),
    ("", "c1", "/own/cg", "/own/cg/c1"),
    ("", "c1", "/", "/c1"),
    ("", "my.ctr", "/a/", "/a/my.ctr"),
])
def test_resolve(path: str, cid: str, own: str, expected: str) -> None:
    assert cgroups.resolve(path, cid, own) == expected


# ---------------------------------------------------------------- the fake v1 tree

FILES = {
    "memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.oom_control",
               "cgroup.procs"],
    "cpu,cpuacct": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"],
    "pids": ["pids.max", "cgroup.procs"],
    "devices": ["devices.allow", "devices.deny", "cgroup.procs"],
    "cpuset": ["cpuset.cpus", "cpuset.mems", "cgroup.procs"],
    "freezer": ["freezer.state", "cgroup.procs"],
}


class FakeTree:
    def __init__(self, top: Path, leaf: str = "c1") -> None:
        self.top = top
        self.dirs: dict[str, str] = {}
        for hierarchy, names in FILES.items():
            (top / hierarchy).mkdir()
            leaf_dir = top / hierarchy / leaf
            leaf_dir.mkdir()
            for name in names:
                (leaf_dir / name).write_text("")
            self.dirs[hierarchy] = str(leaf_dir)
        (top / "cpuset" / "cpuset.cpus").write_text("0-3\n")
        (top / "cpuset" / "cpuset.mems").write_text("0\n")
        self.writes: list[tuple[str, str]] = []

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.top)

    def record(self, path: str, value: str) -> None:
        self.writes.append((self.rel(path), value))
        base.write(path, value)  # the real write: fails if the file does not exist


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTree:
    t = FakeTree(tmp_path)
    monkeypatch.setattr(v1, "write", t.record)
    monkeypatch.setattr(v2, "write", t.record)
    return t


def driver(tree: FakeTree, *hierarchies: str) -> v1.CgroupV1:
    names = hierarchies or tuple(tree.dirs)
    return v1.CgroupV1({h: tree.dirs[h] for h in names})


def test_paths(tree: FakeTree) -> None:
    assert driver(tree).paths() == tree.dirs
    d = driver(tree)
    d.paths()["memory"] = "changed"
    assert d.paths() == tree.dirs  # a copy


def mapped(resources: dict[str, Any], module: Any = v1) -> list[tuple[str, str, str]]:
    """The (controller, file, value) writes a driver module maps resources to."""
    return [(s.controller, s.file, s.value) for s in module.settings(resources)]


def test_memory() -> None:
    assert mapped({"memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 2 << 30,
                              "swappiness": 10, "kernel": 1 << 20, "kernelTCP": 1 << 19,
                              "disableOOMKiller": True, "useHierarchy": True}}) == [
        ("memory", "memory.limit_in_bytes", str(1 << 30)),
        ("memory", "memory.memsw.limit_in_bytes", str(2 << 30)),
        ("memory", "memory.soft_limit_in_bytes", str(1 << 29)),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "1"),
        ("memory", "memory.use_hierarchy", "1"),
    ]


def test_kernel_memory_is_ignored_with_a_warning(capfd: pytest.CaptureFixture[str]) -> None:
    for module in (v1, v2):
        assert mapped({"memory": {"kernel": 1 << 20, "kernelTCP": 1 << 19}}, module) == []
        err = capfd.readouterr().err
        assert "/linux/resources/memory/kernel: kernel memory limits are deprecated" in err
        assert "/linux/resources/memory/kernelTCP" in err


def test_memory_zero_means_unset_as_in_runc() -> None:
    assert mapped({"memory": {"limit": 0, "swap": 0, "reservation": 0,
                              "disableOOMKiller": False, "swappiness": -1}}) == []


def test_memory_unlimited_also_unlimits_swap_where_counted() -> None:
    settings = v1.settings({"memory": {"limit": -1}})
    assert [(s.file, s.value, s.optional) for s in settings] == [
        ("memory.limit_in_bytes", "-1", False), ("memory.memsw.limit_in_bytes", "-1", True)]


def test_memory_swappiness_range() -> None:
    with pytest.raises(ConfigError) as info:
        v1.settings({"memory": {"swappiness": 101}})
    assert info.value.what == "/linux/resources/memory/swappiness"


def test_cpu() -> None:
    assert mapped({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 0,
                           "realtimePeriod": 1000000, "realtimeRuntime": 950000,
                           "cpus": "0-1", "mems": "0", "idle": 1}}) == [
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950000"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("cpu", "cpu.cfs_burst_us", "0"),
        ("cpu", "cpu.idle", "1"),
    ]
    assert v1.settings({"cpu": {"shares": 2}})[0].verify  # the kernel clamps shares


def test_cpu_empty_and_zero_are_not_written() -> None:
    assert mapped({"cpu": {"cpus": "", "mems": "", "shares": 0, "quota": 0}}) == []


def test_block_io() -> None:
    assert mapped({"blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}],
    }}) == [
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "8:0 600"),
        ("blkio", "blkio.leaf_weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio", "blkio.throttle.write_bps_device", "8:16 2097152"),
        ("blkio", "blkio.throttle.read_iops_device", "8:0 100"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 200"),
    ]
    weight = v1.settings({"blockIO": {"weight": 500}})[0]
    assert weight.fallback == ("blkio.bfq.weight", "500")  # kernels with only BFQ


def test_block_io_device_needs_major_and_minor() -> None:
    with pytest.raises(ConfigError) as info:
        v1.settings({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}})
    assert info.value.what == "/linux/resources/blockIO/throttleReadBpsDevice/0/minor"


def test_hugepages_network_rdma() -> None:
    assert mapped({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                   "network": {"classID": 1048577,
                               "priorities": [{"name": "lo", "priority": 2}]},
                   "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}}) == [
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "lo 2"),
        ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
    ]


def test_unified_on_v1_is_an_error() -> None:
    with pytest.raises(ConfigError, match="cgroup v2") as info:
        v1.settings({"unified": {"memory.high": "1"}})
    assert info.value.what == "/linux/resources/unified"
    assert v1.settings({"unified": {}}) == []


def test_missing_controller_is_refused(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "cpu,cpuacct", "memory").check({"cpu": {"cpus": "0"}})
    assert info.value.what == "/linux/resources/cpu/cpus"
    assert "no cpuset" in info.value.why
    with pytest.raises(ConfigError, match="no hugetlb"):
        driver(tree).check({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})


@pytest.mark.parametrize("limit,expected", [(100, "100"), (1, "1"), (-1, "max")])
def test_pids(limit: int, expected: str) -> None:
    assert mapped({"pids": {"limit": limit}}) == [("pids", "pids.max", expected)]
    assert mapped({"pids": {"limit": limit}}, v2) == [("pids", "pids.max", expected)]
    assert mapped({"pids": {"limit": 0}}) == []  # unset, as runc 1.1


def test_pids_without_pids_hierarchy(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "memory").check({"pids": {"limit": 10}})
    assert info.value.what == "/linux/resources/pids/limit"


def test_devices() -> None:
    rules = mapped({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "access": "r"},
        {"allow": False, "type": "c", "minor": 5},
        {"allow": True, "type": "a"},
    ]})
    allow, deny = ("devices", "devices.allow"), ("devices", "devices.deny")
    assert rules == [
        (*deny, "a"),
        (*allow, "c 1:3 rw"),
        (*allow, "b 8:* r"),
        (*deny, "c *:5 rwm"),
        (*allow, "a"),
        *[(*allow, rule) for rule in DEFAULTS],
    ]


def test_devices_defaults_always_appended() -> None:
    assert [value for _, _, value in mapped({"devices": []})] == DEFAULTS
    assert "c 1:3 rwm" in DEFAULTS  # /dev/null
    assert "c 136:* rwm" in DEFAULTS  # ptys


@pytest.mark.parametrize("rule,ptr", [
    ({"allow": True, "type": "x"}, "/linux/resources/devices/0/type"),
    ({"allow": True, "type": "c", "access": "rwx"}, "/linux/resources/devices/0/access"),
])
def test_bad_device_rule(rule: dict[str, Any], ptr: str) -> None:
    for driver_ in (v1.CgroupV1({"devices": "/nonexistent"}), v2.CgroupV2("/nonexistent")):
        with pytest.raises(ConfigError) as info:
            driver_.check({"devices": [rule]})
        assert info.value.what == ptr


def test_devices_without_devices_hierarchy(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "memory").check({"devices": [{"allow": False}]})
    assert info.value.what == "/linux/resources/devices"


def test_null_resource_is_skipped() -> None:
    assert mapped({"memory": None, "pids": None}) == []


def test_apply_writes_into_each_hierarchy(tree: FakeTree) -> None:
    driver(tree).apply({"memory": {"limit": 5}, "cpu": {"shares": 3}, "pids": {"limit": 7}})
    assert read_file(tree.dirs["memory"], "memory.limit_in_bytes") == "5"
    assert read_file(tree.dirs["cpu,cpuacct"], "cpu.shares") == "3"
    assert read_file(tree.dirs["pids"], "pids.max") == "7"


def read_file(directory: str, name: str) -> str:
    return Path(directory, name).read_text()


def test_unknown_resource_is_refused_not_ignored() -> None:
    for module in (v1, v2):
        with pytest.raises(ConfigError) as info:
            module.settings({"pids": {"limit": 1}, "bogus": {"x": 1}})
        assert info.value.what == "/linux/resources/bogus"
        assert isinstance(info.value, PyrtError)


@pytest.mark.parametrize(("resources", "pointer"), [
    ({"pids": {"limit": "10"}}, "/linux/resources/pids/limit"),
    ({"memory": 5}, "/linux/resources/memory"),
    ({"cpu": {"cpus": 3}}, "/linux/resources/cpu/cpus"),
    ({"devices": [{"allow": "yes"}]}, "/linux/resources/devices/0/allow"),
])
def test_wrongly_typed_resources_are_config_errors(resources: dict[str, Any],
                                                   pointer: str) -> None:
    """Types are checked when config.json is parsed, before any driver sees them."""
    from pyrt import config

    doc = {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
           "linux": {"resources": resources}}
    with pytest.raises(ConfigError) as info:
        config.parse(doc)
    assert info.value.what == pointer


# ---------------------------------------------------------------- the rest of the v1 driver

def test_create_with_existing_dirs(tree: FakeTree) -> None:
    driver(tree).create()
    assert tree.writes == []


def test_a_cgroup_with_processes_is_refused_before_anything_is_made(tree: FakeTree) -> None:
    Path(tree.dirs["pids"], "cgroup.procs").write_text("1234\n")
    new = v1.CgroupV1({"memory": str(tree.top / "memory" / "new"), "pids": tree.dirs["pids"]})
    with pytest.raises(PyrtError) as info:
        new.check_unused()
    assert "already holds processes" in info.value.why
    assert not (tree.top / "memory" / "new").exists()
    driver(tree, "memory").check_unused()  # empty


def test_a_frozen_cgroup_is_refused(tree: FakeTree) -> None:
    freezer = Path(tree.dirs["freezer"], "freezer.state")
    freezer.write_text("THAWED\n")
    driver(tree).check_unused()
    for state in ("FROZEN", "FREEZING"):
        freezer.write_text(f"{state}\n")
        with pytest.raises(PyrtError) as info:
            driver(tree).check_unused()
        assert info.value.why == "is frozen"


def test_create_makes_nested_dirs(tree: FakeTree) -> None:
    d = v1.CgroupV1({"memory": str(tree.top / "memory" / "a" / "b")})
    d.create()
    assert (tree.top / "memory" / "a" / "b").is_dir()


def test_create_copies_cpuset_down(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = os.mkdir

    def kernel_like_mkdir(path: str, *args: Any, **kw: Any) -> None:
        real_mkdir(path, *args, **kw)  # cpuset makes its files empty in a new cgroup
        for name in ("cpuset.cpus", "cpuset.mems"):
            Path(path, name).write_text("")

    monkeypatch.setattr(v1.os, "mkdir", kernel_like_mkdir)
    leaf = tree.top / "cpuset" / "p" / "q"
    v1.CgroupV1({"cpuset": str(leaf)}).create()
    assert tree.writes == [
        ("cpuset/p/cpuset.cpus", "0-3"), ("cpuset/p/cpuset.mems", "0"),
        ("cpuset/p/q/cpuset.cpus", "0-3"), ("cpuset/p/q/cpuset.mems", "0"),
    ]


def test_self_join_writes_zero_to_each_v1_tasks_file(tree: FakeTree) -> None:
    """A process moves itself in: "0" into each hierarchy's tasks file, memory apart;
    add(pid, join) leaves those hierarchies alone."""
    for path in tree.dirs.values():
        Path(path, "tasks").write_text("")
    join = driver(tree).open_self_join()
    assert len(join.fds()) == len(tree.dirs)
    join.enter(memory=False)
    written = {h: Path(p, "tasks").read_text() for h, p in tree.dirs.items()}
    assert written == {h: ("" if h == "memory" else "0") for h in tree.dirs}
    join.enter(memory=True)
    assert Path(tree.dirs["memory"], "tasks").read_text() == "0"
    assert join.fds() == set()  # each fd is closed once written
    driver(tree).add(4321, join)
    assert tree.writes == []


def test_self_join_leaves_a_hybrid_hosts_cgroup2_to_add(tree: FakeTree,
                                                       tmp_path: Path) -> None:
    unified = tmp_path / "unified-c1"
    unified.mkdir()
    (unified / "cgroup.procs").write_text("")
    (Path(tree.dirs["pids"]) / "tasks").write_text("")
    d = v1.CgroupV1({"pids": tree.dirs["pids"], "": str(unified)})
    join = d.open_self_join()
    assert len(join.fds()) == 1
    join.close()
    d.add(4321, join)  # not born there: the cgroup2 write is ours
    assert [w for w in tree.writes if w[1] == "4321"] == [
        (os.path.relpath(unified / "cgroup.procs", tree.top), "4321")]


def test_v2_add_writes_only_a_pid_not_born_there(tmp_path: Path) -> None:
    """On cgroup v2 the cgroup is one to be born in, where memory is charged (so
    create holds its init: SelfJoin.fork); add() writes cgroup.procs only for a process
    that was not born there."""
    (tmp_path / "cgroup.procs").write_text("")
    d = v2.CgroupV2(str(tmp_path))
    join = d.open_self_join()
    assert join.fds() == set() and join.fork_fds()
    join.close()
    d.add(4321, join, born_in_cgroup2=True)
    assert (tmp_path / "cgroup.procs").read_text() == ""
    d.add(4321, join)
    assert (tmp_path / "cgroup.procs").read_text() == "4321"


UNIFIED = "/sys/fs/cgroup/unified"


def _fork_and_report_cgroup2(join: base.SelfJoin, held: bool = False) -> tuple[str, bool]:
    """join.fork(); the child writes the cgroup2 line of its /proc/self/cgroup, read at
    its first step, to a pipe, and exits. Returns that line and whether fork() says the
    child was born in the cgroup2 cgroup. `held`: check that a child born there is
    held until join.release()."""
    r, w = os.pipe()
    pid, born = join.fork()
    if pid == 0:
        try:
            with open("/proc/self/cgroup", "rb") as f:
                os.write(w, next(line for line in f if line.startswith(b"0::")))
        finally:
            os._exit(0)
    os.close(w)
    try:
        if born and held:
            # held in the shim: blocked in read(2) (0 on x86_64), the interpreter not
            # yet back, so it has not written its line
            assert not select.select([r], [], [], 0.5)[0]
            with open(f"/proc/{pid}/syscall") as f:
                assert f.read().split()[0] == "0"
            join.release()
        return os.read(r, 4096).decode().strip(), born
    finally:
        os.close(r)
        join.release()
        os.waitpid(pid, 0)


@pytest.fixture
def cgroup2_dir() -> Iterator[str]:
    """A scratch cgroup of our own on a hybrid host's cgroup2 hierarchy (skip elsewhere)."""
    if not os.path.exists(f"{UNIFIED}/cgroup.controllers") or os.geteuid() != 0:
        pytest.skip("needs root on a hybrid host (cgroup2 at /sys/fs/cgroup/unified)")
    path = f"{UNIFIED}/pyrt-unit-{os.getpid()}"
    os.mkdir(path)
    yield path
    os.rmdir(path)


def test_self_join_fork_is_born_in_the_hybrid_cgroup2(cgroup2_dir: str) -> None:
    """The child is in its cgroup2 cgroup from its first step: no move for add() to make
    (a move waits for an RCU grace period), so add() writes nothing there."""
    join = base.SelfJoin([], cgroup2_dir=cgroup2_dir)
    try:
        assert _fork_and_report_cgroup2(join) == (
            f"0::{cgroup2_dir.removeprefix(UNIFIED)}", True)
    finally:
        join.close()


def test_self_join_fork_holds_the_child_until_release(cgroup2_dir: str) -> None:
    """Where the cgroup2 cgroup charges memory (cgroup v2), fork() holds the child: it is
    born there and waits, before the interpreter runs again, until release(). The caller
    copies the pages they share meanwhile, so that the cgroup is not charged for them
    (tests/cgroupv2: test_runtime_memory_is_not_charged_to_the_container)."""
    join = base.SelfJoin([], cgroup2_dir=cgroup2_dir, cgroup2_memory=True)
    try:
        assert _fork_and_report_cgroup2(join, held=True) == (
            f"0::{cgroup2_dir.removeprefix(UNIFIED)}", True)
    finally:
        join.close()


def test_self_join_fork_falls_back_to_a_plain_fork(cgroup2_dir: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without CLONE_INTO_CGROUP (before 5.7; mocked: this one has it): a plain
    fork, in our own cgroup2 cgroup, and add() moves the child as before."""
    from pyrt.linux import syscalls as sc

    def no_clone3(_fd: int, _hold: tuple[int, int] = (-1, -1)) -> int:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(sc, "fork", no_clone3)
    with open("/proc/self/cgroup") as f:
        ours = next(line for line in f if line.startswith("0::")).strip()
    fds = os.listdir("/proc/self/fd")
    join = base.SelfJoin([], cgroup2_dir=cgroup2_dir, cgroup2_memory=True)
    try:
        assert _fork_and_report_cgroup2(join) == (ours, False)  # nothing held
    finally:
        join.close()
    assert os.listdir("/proc/self/fd") == fds


def test_self_join_open_failure_is_one_line(tree: FakeTree) -> None:
    with pytest.raises(PyrtError) as info:  # no tasks files in this fake tree
        driver(tree).open_self_join()
    assert info.value.what.startswith("cgroup ") and "tasks" in info.value.what


def test_add_and_pids(tree: FakeTree) -> None:
    d = driver(tree, "memory", "pids")
    d.add(4321)  # memory last
    assert tree.writes == [("pids/c1/cgroup.procs", "4321"), ("memory/c1/cgroup.procs", "4321")]
    Path(tree.dirs["pids"], "cgroup.procs").write_text("1\n2\n")
    assert d.pids() == [1, 2]


def test_freezer(tree: FakeTree) -> None:
    d = driver(tree)
    assert d.freezer_file() == os.path.join(tree.dirs["freezer"], "freezer.state")
    d.freeze(True)
    d.freeze(False)
    assert tree.writes == [("freezer/c1/freezer.state", "FROZEN"),
                           ("freezer/c1/freezer.state", "THAWED")]
    no_freezer = driver(tree, "memory")
    assert no_freezer.freezer_file() == ""
    with pytest.raises(PyrtError):
        no_freezer.freeze(True)


def test_destroy(tree: FakeTree) -> None:
    empty = tree.top / "memory" / "gone"
    empty.mkdir()
    v1.CgroupV1({"memory": str(empty), "pids": str(tree.top / "pids" / "never")}).destroy()
    assert not empty.exists()


# ---------------------------------------------------------------- v2 mapping

def test_v2_memory() -> None:
    assert mapped({"memory": {"limit": 1 << 30, "swap": 3 << 29, "reservation": 1 << 28}},
                  v2) == [
        ("memory", "memory.swap.max", str(1 << 29)),  # v2 counts swap alone
        ("memory", "memory.max", str(1 << 30)),
        ("memory", "memory.low", str(1 << 28)),
    ]
    assert mapped({"memory": {"limit": -1}}, v2) == [
        ("memory", "memory.swap.max", "max"), ("memory", "memory.max", "max")]
    assert mapped({"memory": {"limit": 100, "swap": 100}}, v2) == [
        ("memory", "memory.swap.max", "0"), ("memory", "memory.max", "100")]
    assert mapped({"memory": {"limit": 100, "swap": -1}}, v2)[0] == (
        "memory", "memory.swap.max", "max")


@pytest.mark.parametrize("memory,pointer", [
    ({"swap": 100}, "swap"), ({"limit": 200, "swap": 100}, "swap"),
    ({"disableOOMKiller": True}, "disableOOMKiller"), ({"swappiness": 10}, "swappiness"),
    ({"useHierarchy": False}, "useHierarchy"),
])
def test_v2_memory_refused(memory: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ConfigError) as info:
        v2.settings({"memory": memory})
    assert info.value.what == f"/linux/resources/memory/{pointer}"


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 39), (262144, 10000)])
def test_v2_cpu_weight(shares: int, weight: int) -> None:
    assert v2.cpu_weight(shares) == weight


def test_v2_cpu() -> None:
    assert mapped({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 1000,
                           "cpus": "0", "mems": "0", "idle": 0}}, v2) == [
        ("cpu", "cpu.idle", "0"),
        ("cpu", "cpu.weight", "39"),
        ("cpu", "cpu.max", "50000 200000"),
        ("cpu", "cpu.max.burst", "1000"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
    ]
    assert mapped({"cpu": {"quota": -1}}, v2) == [("cpu", "cpu.max", "max 100000")]
    assert mapped({"cpu": {"period": 50000}}, v2) == [("cpu", "cpu.max", "max 50000")]
    with pytest.raises(ConfigError) as info:
        v2.settings({"cpu": {"realtimeRuntime": 1}})
    assert info.value.what == "/linux/resources/cpu/realtimeRuntime"


def test_v2_io() -> None:
    settings = v2.settings({"blockIO": {
        "weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]}})
    assert [(s.file, s.value, s.fallback) for s in settings] == [
        ("io.bfq.weight", "500", ("io.weight", str(v2.io_weight(500)))),
        ("io.bfq.weight", "8:0 100", ("io.weight", f"8:0 {v2.io_weight(100)}")),
        ("io.max", "8:0 rbps=1048576", None),
        ("io.max", "8:0 wiops=10", None),
    ]
    assert v2.io_weight(10) == 1 and v2.io_weight(1000) == 10000
    with pytest.raises(ConfigError):
        v2.settings({"blockIO": {"leafWeight": 10}})


def test_v2_hugetlb_rdma_unified_network() -> None:
    assert mapped({"hugepageLimits": [{"pageSize": "1GB", "limit": 0}],
                   "rdma": {"mlx4_0": {"hcaObjects": 7}},
                   "unified": {"memory.high": "1G", "cgroup.max.depth": "3"}}, v2) == [
        ("hugetlb", "hugetlb.1GB.max", "0"),
        ("hugetlb", "hugetlb.1GB.rsvd.max", "0"),
        ("rdma", "rdma.max", "mlx4_0 hca_object=7"),
        ("memory", "memory.high", "1G"),
        ("cgroup", "cgroup.max.depth", "3"),
    ]
    with pytest.raises(ConfigError) as info:
        v2.settings({"network": {"classID": 1}})
    assert info.value.what == "/linux/resources/network"
    for bad in ("../memory.max", "nodot", ".x"):
        with pytest.raises(ConfigError, match=r"CONTROLLER\.PARAMETER"):
            v2.settings({"unified": {bad: "1"}})


def test_v2_devices_are_not_files() -> None:
    assert v2.settings({"devices": [{"allow": False}]}) == []


# ---------------------------------------------------------------- writing settings

@pytest.fixture
def cg(tmp_path: Path) -> Path:
    for name in ("a", "b", "clamped"):
        (tmp_path / name).write_text("")
    return tmp_path


def test_write_settings_missing_file(cg: Path) -> None:
    base.write_settings([(str(cg), base.Setting("x", "a", 1, "/p/a")),
                         (str(cg), base.Setting("x", "gone", 2, "/p/gone", optional=True))])
    assert read_file(str(cg), "a") == "1"
    with pytest.raises(ConfigError) as info:
        base.write_settings([(str(cg), base.Setting("x", "gone", 2, "/p/gone"))])
    assert info.value.what == "/p/gone"
    assert "no gone" in info.value.why


def test_write_settings_fallback(cg: Path) -> None:
    base.write_settings([(str(cg), base.Setting("x", "gone", 1, "/p", fallback=("b", "9")))])
    assert read_file(str(cg), "b") == "9"


def test_write_settings_retries_einval_after_the_rest(
        cg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel checks pairs (limit <= memsw): a write refused with EINVAL goes last."""
    order = []
    real_write = os.write

    def kernel_like_write(fd: int, data: bytes) -> int:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name == "a" and "b" not in order:
            raise OSError(errno.EINVAL, "Invalid argument")
        order.append(name)
        return real_write(fd, data)

    monkeypatch.setattr(base.os, "write", kernel_like_write)
    base.write_settings([(str(cg), base.Setting("x", "a", 1, "/p/a")),
                         (str(cg), base.Setting("x", "b", 2, "/p/b"))])
    assert order == ["b", "a"]


def test_write_settings_einval_twice_is_an_error(
        cg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fd: int, data: bytes) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(base.os, "write", refuse)
    with pytest.raises(PyrtError) as info:
        base.write_settings([(str(cg), base.Setting("x", "a", 1, "/p/a"))])
    assert info.value.what == "/p/a"
    assert "Invalid argument" in info.value.why


def test_write_settings_verify(cg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "read", lambda path: "262144\n")  # the kernel clamped it
    with pytest.raises(PyrtError, match="262144, not 999999"):
        base.write_settings([(str(cg), base.Setting("x", "clamped", 999999, "/p",
                                                    verify=True))])


def test_check_refuses_before_anything_is_written(tree: FakeTree) -> None:
    """check() (run before the container exists) refuses what apply() would, writing nothing."""
    with pytest.raises(ConfigError) as info:
        driver(tree).check({"pids": {"limit": 1}, "blockIO": {"weight": 10}})
    assert info.value.what == "/linux/resources/blockIO/weight"
    with pytest.raises(ConfigError, match="cgroup v2"):
        driver(tree).check({"unified": {"memory.high": "1"}})
    driver(tree).check({"memory": {"limit": 5}, "devices": [{"allow": False}]})
    assert tree.writes == []
