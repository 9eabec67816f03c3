"""Rootless mode and user namespaces, the parts that need no root: the --rootless flag,
the default state root, the checks made before anything is, rootless cgroups over a fake
tree, `spec --rootless`, and the planning of id-mapped mounts.

Who the caller is (euid, user namespace) and whether a cgroup directory is writable are
facts of the machine: they are monkeypatched here, since these tests run as any user.
The real thing runs in tests/runtime/test_rootless.py.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from pyrt import config, defaults, rootless
from pyrt.cgroups import rootless as rootless_cgroups
from pyrt.cgroups import v1
from pyrt.errors import ConfigError, PyrtError
from pyrt.linux import idmap, mounts, userns

UID, GID = 1234, 2345


def caller(monkeypatch: pytest.MonkeyPatch, euid: int, in_userns: bool = False) -> None:
    monkeypatch.setattr(rootless.os, "geteuid", lambda: euid)
    monkeypatch.setattr(userns.os, "geteuid", lambda: euid)
    monkeypatch.setattr(userns.os, "getegid", lambda: GID if euid else 0)
    monkeypatch.setattr(rootless, "in_user_namespace", lambda: in_userns)


# ---------------------------------------------------------------- --rootless and --root

@pytest.mark.parametrize("flag,euid,in_userns,expected", [
    ("auto", 0, False, False), ("auto", UID, False, True), ("auto", 0, True, True),
    ("", UID, False, True), ("true", 0, False, True), ("T", 0, False, True),
    ("1", 0, False, True), ("false", UID, False, False), ("0", UID, True, False),
])
def test_rootless_flag(monkeypatch: pytest.MonkeyPatch, flag: str, euid: int,
                       in_userns: bool, expected: bool) -> None:
    caller(monkeypatch, euid, in_userns)
    assert rootless.cgroups_rootless(flag) is expected


@pytest.mark.parametrize("flag", ["yes", "maybe", "2"])
def test_rootless_flag_refuses_other_values(flag: str) -> None:
    with pytest.raises(PyrtError) as info:
        rootless.cgroups_rootless(flag)
    assert info.value.what == "--rootless"


def test_default_root_for_an_unprivileged_user(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    caller(monkeypatch, UID)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    root = rootless.default_root()
    assert root == f"{tmp_path}/pyrt"
    assert os.stat(root).st_mode & 0o7777 == 0o1700  # sticky: not pruned (XDG spec)


@pytest.mark.parametrize("euid,in_userns,user,xdg", [
    (0, False, "root", True),  # root on the host ignores $XDG_RUNTIME_DIR, as runc
    (0, False, "x", True),
    (0, True, "root", True),
    (UID, False, "x", False),  # no $XDG_RUNTIME_DIR at all
])
def test_default_root_is_run_pyrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  euid: int, in_userns: bool, user: str, xdg: bool) -> None:
    caller(monkeypatch, euid, in_userns)
    monkeypatch.setenv("USER", user)
    if xdg:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert rootless.default_root() == "/run/pyrt"
    assert not (tmp_path / "pyrt").exists()


def test_default_root_for_root_in_a_user_namespace(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    caller(monkeypatch, 0, in_userns=True)
    monkeypatch.setenv("USER", "someone")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert rootless.default_root() == f"{tmp_path}/pyrt"


def test_unusable_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    caller(monkeypatch, UID)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "file"))
    with pytest.raises(PyrtError) as info:
        rootless.default_root()
    assert "XDG_RUNTIME_DIR" in info.value.why


# ---------------------------------------------------------------- checks before anything

def rootless_doc() -> dict[str, Any]:
    doc = defaults.rootless(defaults.config(["sh"]), UID, GID)
    doc["process"]["terminal"] = False
    return doc


def problems(doc: dict[str, Any], unprivileged: bool = True) -> list[tuple[str, str]]:
    return [(p.what, p.why) for p in userns.problems(config.parse(doc), unprivileged)]


def test_spec_rootless_config_has_no_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    assert problems(rootless_doc()) == []


def test_rootless_needs_a_user_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    doc = rootless_doc()
    linux = doc["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "user"]
    del linux["uidMappings"], linux["gidMappings"]
    assert problems(doc)[0] == ("/linux/namespaces",
                                "a rootless container needs a user namespace")


@pytest.mark.parametrize("mutate,ptr", [
    (lambda d: d["process"]["user"].update(uid=5), "/process/user/uid"),
    (lambda d: d["process"]["user"].update(gid=5), "/process/user/gid"),
    (lambda d: d["process"]["user"].update(additionalGids=[0, 7]),
     "/process/user/additionalGids/1"),
    (lambda d: d["linux"]["uidMappings"][0].update(containerID=1), "/linux/uidMappings"),
])
def test_unmapped_ids_are_found_as_root_too(mutate: Any, ptr: str) -> None:
    doc = rootless_doc()
    mutate(doc)
    assert ptr in [what for what, _ in problems(doc, unprivileged=False)]


def test_additional_gids_need_more_than_the_own_gid(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    doc = rootless_doc()
    doc["process"]["user"]["additionalGids"] = [0]
    assert [w for w, _ in problems(doc)] == ["/process/user/additionalGids"]
    doc["linux"]["gidMappings"].append({"containerID": 1, "hostID": 100000, "size": 10})
    monkeypatch.setattr(userns, "map_tool", lambda name: f"/usr/bin/{name}")
    assert problems(doc) == []


def test_mount_uid_and_gid_options_must_be_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    doc = rootless_doc()
    doc["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["uid=0", "gid=5", "mode=755"]})
    assert problems(doc) == [(f"/mounts/{len(doc['mounts']) - 1}/options",
                              "gid=5: not mapped in the rootless container's user namespace")]


def test_idmapped_mounts_are_not_for_rootless(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    doc = rootless_doc()
    doc["mounts"].append({"destination": "/t", "type": "bind", "source": "/tmp",
                          "options": ["rbind", "ridmap"]})
    assert problems(doc)[0][1] == "id-mapped mounts are not supported for rootless containers"


def test_a_mapping_beyond_the_own_id_needs_newuidmap(monkeypatch: pytest.MonkeyPatch) -> None:
    caller(monkeypatch, UID)
    monkeypatch.setenv("PATH", "/nonexistent")  # as if uidmap were not installed
    monkeypatch.setattr(userns, "TOOL_DIRS", ())
    doc = rootless_doc()
    doc["linux"]["uidMappings"].append({"containerID": 1, "hostID": 100000, "size": 10})
    [(what, why)] = problems(doc)
    assert what == "user namespace newuidmap" and "uidmap package" in why


@pytest.mark.parametrize("lines,own,expected", [
    ([(0, UID, 1)], UID, True), ([(5, UID, 1)], UID, True), ([(0, UID, 2)], UID, False),
    ([(0, UID, 1), (1, 100000, 10)], UID, False), ([(0, 0, 1)], UID, False), ([], UID, False),
])
def test_only_own_id(lines: list[tuple[int, int, int]], own: int, expected: bool) -> None:
    assert userns.only_own_id(lines, own) is expected


# ---------------------------------------------------------------- spec --rootless

def test_spec_rootless_is_shaped_as_runcs() -> None:
    doc = defaults.rootless(defaults.config(), UID, GID)
    linux = doc["linux"]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert "user" in types and "network" not in types and "cgroup" not in types
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": UID, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": GID, "size": 1}]
    assert "resources" not in linux
    by_dest = {m["destination"]: m for m in doc["mounts"]}
    assert by_dest["/sys"] == {"destination": "/sys", "type": "none", "source": "/sys",
                               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert "/sys/fs/cgroup" in by_dest  # kept, as runc keeps it: it binds the own cgroup
    assert not [o for m in doc["mounts"] for o in m.get("options", ())
                if o.startswith(("uid=", "gid="))]


# ---------------------------------------------------------------- rootless cgroups

class Tree:
    """Fake v1 hierarchies in a tmp dir: `usable` says which the user may use."""

    def __init__(self, top: Path) -> None:
        self.dirs = {}
        for hierarchy in ("memory", "pids", "devices"):
            (top / hierarchy).mkdir()
            self.dirs[hierarchy] = str(top / hierarchy / "c1")
        self.usable: set[str] = set()

    def may(self, path: str) -> bool:
        return any(path == self.dirs[h] for h in self.usable)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tree:
    t = Tree(tmp_path)
    monkeypatch.setattr(rootless_cgroups, "_usable", t.may)
    return t


def test_nothing_delegated_and_no_path(tree: Tree) -> None:
    made = rootless_cgroups.create(v1.CgroupV1(dict(tree.dirs)), {}, path_given=False)
    assert made.paths() == {}
    assert not any(os.path.exists(d) for d in tree.dirs.values())


def test_only_the_usable_hierarchies_are_made(tree: Tree) -> None:
    tree.usable = {"pids"}
    made = rootless_cgroups.create(v1.CgroupV1(dict(tree.dirs)), {"pids": {"limit": 5}},
                                   path_given=False)
    assert made.paths() == {"pids": tree.dirs["pids"]}
    assert os.path.isdir(tree.dirs["pids"]) and not os.path.exists(tree.dirs["memory"])


def test_a_limit_on_a_hierarchy_not_joined(tree: Tree) -> None:
    tree.usable = {"pids"}
    with pytest.raises(PyrtError) as info:
        rootless_cgroups.create(v1.CgroupV1(dict(tree.dirs)), {"memory": {"limit": 1 << 20}},
                                path_given=False)
    assert info.value.what == "/linux/resources/memory/limit"
    assert "could not join or create" in info.value.why
    assert not os.path.exists(tree.dirs["pids"])  # refused before anything was made


def test_device_rules_need_no_devices_cgroup(tree: Tree) -> None:
    resources = {"devices": [{"allow": False, "access": "rwm"}]}
    made = rootless_cgroups.create(v1.CgroupV1(dict(tree.dirs)), resources, path_given=False)
    assert made.paths() == {}


def test_an_explicit_path_must_be_usable(tree: Tree) -> None:
    tree.usable = {"pids", "devices"}
    with pytest.raises(PyrtError) as info:
        rootless_cgroups.create(v1.CgroupV1(dict(tree.dirs)), {}, path_given=True)
    assert info.value.what == f"cgroup {tree.dirs['memory']}"
    assert not any(os.path.exists(d) for d in tree.dirs.values())


def test_usable_checks_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert rootless_cgroups._usable(str(tmp_path / "a" / "b"))
    (tmp_path / "c").mkdir()
    assert not rootless_cgroups._usable(str(tmp_path / "c"))  # no cgroup.procs to write


# ---------------------------------------------------------------- id-mapped mounts

def idmapped_doc(mount: dict[str, Any], userns_type: str | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(defaults.config(["sh"]))
    doc["mounts"] = [mount]
    if userns_type == "new":
        doc["linux"]["namespaces"].append({"type": "user"})
        doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
        doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 10}]
    elif userns_type == "joined":
        doc["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    return doc


def plan(doc: dict[str, Any]) -> dict[int, idmap.Maps | None]:
    parsed = config.parse(doc)
    plans = [mounts.MountPlan(m, "/", f"/mounts/{i}") for i, m in enumerate(parsed.mounts)]
    return idmap.plan(plans, parsed)


MAPS = [{"containerID": 0, "hostID": 1000, "size": 5}]
BIND = {"destination": "/m", "type": "bind", "source": "/tmp"}


def test_own_mappings_win() -> None:
    doc = idmapped_doc(dict(BIND, options=["rbind", "idmap"], uidMappings=MAPS,
                            gidMappings=MAPS), "new")
    assert plan(doc) == {0: (((0, 1000, 5),), ((0, 1000, 5),))}


def test_idmap_alone_takes_the_new_user_namespace_mappings() -> None:
    doc = idmapped_doc(dict(BIND, options=["bind", "idmap"]), "new")
    assert plan(doc) == {0: (((0, 100000, 10),), ((0, 200000, 10),))}


def test_idmap_alone_with_a_joined_user_namespace() -> None:
    assert plan(idmapped_doc(dict(BIND, options=["bind", "ridmap"]), "joined")) == {0: None}


def test_idmap_alone_without_a_user_namespace() -> None:
    with pytest.raises(ConfigError) as info:
        plan(idmapped_doc(dict(BIND, options=["bind", "idmap"])))
    assert info.value.what == "/mounts/0/options"


def test_plain_mounts_are_not_idmapped() -> None:
    assert plan(idmapped_doc(dict(BIND, options=["rbind"]), "new")) == {}


@pytest.mark.parametrize("mount,ptr", [
    (dict(BIND, options=["bind"], uidMappings=MAPS), "/mounts/0/gidMappings"),
    (dict(BIND, options=["bind"], gidMappings=MAPS), "/mounts/0/uidMappings"),
    ({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "uidMappings": MAPS,
      "gidMappings": MAPS}, "/mounts/0"),
    ({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]},
     "/mounts/0"),
])
def test_bad_idmapped_mounts(mount: dict[str, Any], ptr: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan(idmapped_doc(mount, "new"))
    assert info.value.what == ptr


def test_ridmap_is_recursive_and_idmap_is_not() -> None:
    parsed = config.parse(idmapped_doc(dict(BIND, options=["rbind", "ridmap"]), "new"))
    m = mounts.MountPlan(parsed.mounts[0], "/", "/mounts/0")
    assert m.idmap and m.idmap_recursive and m.bind and m.data is None
    parsed = config.parse(idmapped_doc(dict(BIND, options=["rbind", "idmap"]), "new"))
    m = mounts.MountPlan(parsed.mounts[0], "/", "/mounts/0")
    assert m.idmap and not m.idmap_recursive
