"""pyrt.cgroups: cgroupsPath resolution and the drivers' mapping of linux.resources to files.

THE CGROUP TREE HERE IS FAKE. Unit tests must not need root, so a tmp directory of plain
files laid out like v1 hierarchies (memory/, "cpu,cpuacct"/, pids/, devices/, cpuset/ ...)
stands in for a real cgroupfs. Plain files do not behave like cgroup files (mkdir makes no
interface files, a write does not replace the content, nothing is validated), so every
file the driver touches is pre-created and every write is recorded through a patched
`write`. The runtime tests in tests/runtime exercise the real /sys/fs/cgroup.
"""

from __future__ import annotations

import os
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


def test_memory(tree: FakeTree) -> None:
    driver(tree).apply({"memory": {"limit": 1 << 30, "reservation": 1 << 29,
                                   "swap": 2 << 30, "swappiness": 10}})
    assert tree.writes == [
        ("memory/c1/memory.limit_in_bytes", str(1 << 30)),
        ("memory/c1/memory.soft_limit_in_bytes", str(1 << 29)),
        ("memory/c1/memory.memsw.limit_in_bytes", str(2 << 30)),
        ("memory/c1/memory.swappiness", "10"),
    ]


def test_memory_disable_oom_killer(tree: FakeTree) -> None:
    driver(tree).apply({"memory": {"disableOOMKiller": True}})
    assert tree.writes == [("memory/c1/memory.oom_control", "1")]
    tree.writes.clear()
    driver(tree).apply({"memory": {"disableOOMKiller": False}})
    assert tree.writes == []


def test_memory_limit_minus_one(tree: FakeTree) -> None:
    driver(tree).apply({"memory": {"limit": -1}})
    assert tree.writes == [("memory/c1/memory.limit_in_bytes", "-1")]


def test_memory_swap_without_memsw_file_is_a_config_error(tree: FakeTree) -> None:
    os.unlink(os.path.join(tree.dirs["memory"], "memory.memsw.limit_in_bytes"))
    with pytest.raises(ConfigError) as info:
        driver(tree).apply({"memory": {"swap": 100}})
    assert info.value.what == "/linux/resources/memory/swap"
    assert "memory.memsw.limit_in_bytes" in info.value.why


def test_memory_unknown_key(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree).apply({"memory": {"limit": 1, "bogus": 2}})
    assert info.value.what == "/linux/resources/memory/bogus"


def test_cpu(tree: FakeTree) -> None:
    driver(tree).apply({"cpu": {"shares": 512, "quota": 50000, "period": 100000,
                                "cpus": "0-1", "mems": "0"}})
    assert tree.writes == [
        ("cpu,cpuacct/c1/cpu.shares", "512"),
        ("cpu,cpuacct/c1/cpu.cfs_period_us", "100000"),
        ("cpu,cpuacct/c1/cpu.cfs_quota_us", "50000"),
        ("cpuset/c1/cpuset.cpus", "0-1"),
        ("cpuset/c1/cpuset.mems", "0"),
    ]


def test_cpu_empty_cpus_is_not_written(tree: FakeTree) -> None:
    driver(tree).apply({"cpu": {"cpus": "", "shares": 2}})
    assert tree.writes == [("cpu,cpuacct/c1/cpu.shares", "2")]


def test_cpu_realtime_is_refused(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree).apply({"cpu": {"realtimeRuntime": 1000}})
    assert info.value.what == "/linux/resources/cpu/realtimeRuntime"


def test_cpus_without_cpuset_hierarchy(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "cpu,cpuacct", "memory").apply({"cpu": {"cpus": "0"}})
    assert info.value.what == "/linux/resources/cpu/cpus"
    assert "no cpuset" in info.value.why


@pytest.mark.parametrize("limit,expected", [(100, "100"), (1, "1"), (0, "max"), (-1, "max")])
def test_pids(tree: FakeTree, limit: int, expected: str) -> None:
    driver(tree).apply({"pids": {"limit": limit}})
    assert tree.writes == [("pids/c1/pids.max", expected)]


def test_pids_without_pids_hierarchy(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "memory").apply({"pids": {"limit": 10}})
    assert info.value.what == "/linux/resources/pids/limit"


def test_devices(tree: FakeTree) -> None:
    driver(tree).apply({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "access": "r"},
        {"allow": False, "type": "c", "minor": 5},
        {"allow": True, "type": "a"},
    ]})
    allowed = "devices/c1/devices.allow"
    denied = "devices/c1/devices.deny"
    assert tree.writes == [
        (denied, "a"),
        (allowed, "c 1:3 rw"),
        (allowed, "b 8:* r"),
        (denied, "c *:5 rwm"),
        (allowed, "a"),
        *[(allowed, rule) for rule in DEFAULTS],
    ]


def test_devices_defaults_always_appended(tree: FakeTree) -> None:
    driver(tree).apply({"devices": []})
    assert [v for _, v in tree.writes] == list(DEFAULTS)
    assert "c 1:3 rwm" in DEFAULTS  # /dev/null
    assert "c 136:* rwm" in DEFAULTS  # ptys


@pytest.mark.parametrize("rule,ptr", [
    ({"allow": True, "type": "x"}, "/linux/resources/devices/0/type"),
    ({"allow": True, "type": "c", "access": "rwx"}, "/linux/resources/devices/0/access"),
])
def test_bad_device_rule(tree: FakeTree, rule: dict[str, Any], ptr: str) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree).apply({"devices": [rule]})
    assert info.value.what == ptr


def test_devices_without_devices_hierarchy(tree: FakeTree) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree, "memory").apply({"devices": [{"allow": False}]})
    assert info.value.what == "/linux/resources/devices"


def test_null_resource_is_skipped(tree: FakeTree) -> None:
    driver(tree).apply({"memory": None, "pids": None})
    assert tree.writes == []


def test_everything_in_one_go(tree: FakeTree) -> None:
    driver(tree).apply({"memory": {"limit": 5}, "cpu": {"shares": 3}, "pids": {"limit": 7},
                        "devices": [{"allow": False}]})
    written = dict(tree.writes[:4])
    assert written == {"memory/c1/memory.limit_in_bytes": "5",
                       "cpu,cpuacct/c1/cpu.shares": "3", "pids/c1/pids.max": "7",
                       "devices/c1/devices.deny": "a"}


@pytest.mark.parametrize("key,value", [
    ("blockIO", {"weight": 10}), ("hugepageLimits", [{"pageSize": "2MB", "limit": 1}]),
    ("network", {"classID": 1}), ("rdma", {"mlx5_1": {"hcaHandles": 3}}),
    ("unified", {"memory.high": "1"}), ("bogus", {}),
])
def test_unsupported_resource_is_refused_not_ignored(tree: FakeTree, key: str,
                                                     value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        driver(tree).apply({"pids": {"limit": 1}, key: value})
    assert info.value.what == f"/linux/resources/{key}"
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


def test_create_refuses_a_cgroup_with_processes(tree: FakeTree) -> None:
    Path(tree.dirs["pids"], "cgroup.procs").write_text("1234\n")
    with pytest.raises(PyrtError) as info:
        driver(tree).create()
    assert "already holds processes" in info.value.why


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


def test_add_and_pids(tree: FakeTree) -> None:
    d = driver(tree, "memory", "pids")
    d.add(4321)
    assert tree.writes == [("memory/c1/cgroup.procs", "4321"), ("pids/c1/cgroup.procs", "4321")]
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


# ---------------------------------------------------------------- v2 driver (same fake)

@pytest.fixture
def v2_dir(tree: FakeTree) -> str:
    path = tree.top / "unified" / "c1"
    path.mkdir(parents=True)
    for name in ("pids.max", "memory.max", "cgroup.procs"):
        (path / name).write_text("")
    return str(path)


def test_v2_pids_and_memory(tree: FakeTree, v2_dir: str) -> None:
    v2.CgroupV2(v2_dir).apply({"pids": {"limit": 0}, "memory": {"limit": 4096}})
    assert tree.writes == [("unified/c1/pids.max", "max"), ("unified/c1/memory.max", "4096")]


@pytest.mark.parametrize("key,value", [("cpu", {"shares": 2}), ("memory", {"swap": 1}),
                                       ("blockIO", {"weight": 10})])
def test_v2_unsupported(tree: FakeTree, v2_dir: str, key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        v2.CgroupV2(v2_dir).apply({key: value})
    assert info.value.what == f"/linux/resources/{key}"


def test_check_refuses_before_anything_is_written(tree: FakeTree) -> None:
    """check() (run before the container exists) refuses what apply() would, writing nothing."""
    with pytest.raises(ConfigError) as info:
        driver(tree).check({"pids": {"limit": 1}, "blockIO": {"weight": 10}})
    assert info.value.what == "/linux/resources/blockIO"
    with pytest.raises(ConfigError, match="cgroup v2") as info:
        driver(tree).check({"unified": {"memory.high": "1"}})
    driver(tree).check({"memory": {"limit": 5}, "devices": [{"allow": False}]})
    assert tree.writes == []
