"""Id-mapped bind mounts: mounts with uidMappings/gidMappings and the idmap/ridmap options
(runtime-spec config.md, mount_setattr(MOUNT_ATTR_IDMAP)).

pyrt-only: runc 1.1.5 has no id-mapped mounts (they came with runc 1.2).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

pytestmark = pytest.mark.pyrt_only

OVERFLOW = 65534


def _source(tmp_path: Path) -> Path:
    """A host directory with files of uid:gid 1000:1000 and 0:0."""
    src = tmp_path / "src"
    src.mkdir()
    for name, owner in (("f1000", 1000), ("f0", 0)):
        (src / name).write_text(name)
        os.chown(src / name, owner, owner)
    return src


def _idmapped(b: h.Bundle, source: Path, options=("bind", "idmap"), uid_maps=None,
              gid_maps=None, destination="/mnt") -> dict:
    m = {"destination": destination, "type": "bind", "source": str(source),
         "options": list(options)}
    if uid_maps is not None:
        m["uidMappings"] = uid_maps
    if gid_maps is not None:
        m["gidMappings"] = gid_maps
    b.config["mounts"].append(m)
    # made here: a container root that is not host root could not make it in the rootfs
    (b.rootfs / destination.lstrip("/")).mkdir(exist_ok=True)
    return m


def _userns(b: h.Bundle, crossable: Path, host_base: int = 100000) -> None:
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_base, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_base, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m.get("type") != "cgroup"]
    h.move_rootfs(b, crossable)  # where the init (host uid 100000) can reach it


@pytest.fixture
def crossable():
    with h.crossable_dir() as d:
        yield d


def _refused(rt, b, res, msg_has):
    assert_fails(res, 1, msg_has)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyrt: "), describe(res)
    assert b.id not in rt.list_ids()
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_mappings_shift_owners_without_a_user_namespace(rt, make_bundle, tmp_path):
    """On-disk 1000 shows as 2000:3000, on-disk 0 as 5; the host sees the files unchanged."""
    src = _source(tmp_path)
    b = make_bundle(("stat", "-c", "%n %u:%g", "/mnt/f1000", "/mnt/f0"), write=False)
    _idmapped(b, src, uid_maps=[{"containerID": 1000, "hostID": 2000, "size": 1},
                                {"containerID": 0, "hostID": 5, "size": 1}],
              gid_maps=[{"containerID": 1000, "hostID": 3000, "size": 1},
                        {"containerID": 0, "hostID": 5, "size": 1}])
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.splitlines() == ["/mnt/f1000 2000:3000", "/mnt/f0 5:5"], describe(res)
    assert (os.stat(src / "f1000").st_uid, os.stat(src / "f0").st_uid) == (1000, 0)


def test_unmapped_ids_show_as_overflow_and_cannot_be_created(rt, make_bundle, tmp_path):
    src = _source(tmp_path)
    b = make_bundle(("sh", "-c", "stat -c %u:%g /mnt/f0; touch /mnt/new || echo refused"),
                    write=False)
    maps = [{"containerID": 1000, "hostID": 2000, "size": 1}]
    _idmapped(b, src, uid_maps=maps, gid_maps=maps)
    b.write()
    res = assert_ok(rt.run(b))
    # root (0) is not in the mount's mapping: its new file would have no on-disk owner
    assert res.stdout.split() == [f"{OVERFLOW}:{OVERFLOW}", "refused"], describe(res)
    assert not (src / "new").exists()


def test_idmap_alone_uses_the_container_user_namespace(crossable, rt, make_bundle):
    """Container root (host 100000) sees the host's root-owned files as its own and
    writes through the mount as on-disk root."""
    src = _source(crossable)
    b = make_bundle(("sh", "-ec", "stat -c %u:%g /mnt/f0 /mnt/f1000; echo hi > /mnt/made"),
                    write=False)
    _userns(b, crossable)
    _idmapped(b, src)
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["0:0", "1000:1000"], describe(res)
    made = os.stat(src / "made")
    assert (made.st_uid, made.st_gid) == (0, 0)


def test_without_idmap_the_same_mount_is_foreign(crossable, rt, make_bundle):
    """The control for the test above: a plain bind shows the host's root as overflow."""
    src = _source(crossable)
    b = make_bundle(("stat", "-c", "%u:%g", "/mnt/f0"), write=False)
    _userns(b, crossable)
    _idmapped(b, src, options=("bind",))
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == [f"{OVERFLOW}:{OVERFLOW}"], describe(res)


def test_idmap_with_a_joined_user_namespace(crossable, rt, make_bundle):
    first = make_bundle(("sleep", "100"), write=False)
    _userns(first, crossable)
    first.write()
    pid = rt.create_started(first)["pid"]
    src = _source(crossable)
    second = make_bundle(("stat", "-c", "%u:%g", "/mnt/f0", "/mnt/f1000"), write=False)
    second.config["mounts"] = [m for m in second.config["mounts"] if m.get("type") != "cgroup"]
    second.set_namespace("user", f"/proc/{pid}/ns/user")
    h.move_rootfs(second, crossable)
    _idmapped(second, src)
    second.write()
    res = assert_ok(rt.run(second))
    assert res.stdout.split() == ["0:0", "1000:1000"], describe(res)


def test_ridmap_maps_submounts_and_idmap_does_not(rt, make_bundle, tmp_path):
    src = _source(tmp_path)
    sub = src / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(sub)], check=True)
    try:
        (sub / "g").write_text("g")
        os.chown(sub / "g", 1000, 1000)
        maps = [{"containerID": 1000, "hostID": 2000, "size": 1}]
        b = make_bundle(("stat", "-c", "%u", "/r/f1000", "/r/sub/g", "/i/f1000", "/i/sub/g"),
                        write=False)
        _idmapped(b, src, options=("rbind", "ridmap"), uid_maps=maps, gid_maps=maps,
                  destination="/r")
        _idmapped(b, src, options=("rbind", "idmap"), uid_maps=maps, gid_maps=maps,
                  destination="/i")
        b.write()
        res = assert_ok(rt.run(b))
        assert res.stdout.split() == ["2000", "2000", "2000", "1000"], describe(res)
    finally:
        subprocess.run(["umount", str(sub)], check=True)


def test_readonly_idmapped_mount(rt, make_bundle, tmp_path):
    src = _source(tmp_path)
    b = make_bundle(("sh", "-c", "stat -c %u /mnt/f1000; touch /mnt/x || echo read-only"),
                    write=False)
    maps = [{"containerID": 0, "hostID": 0, "size": 2000}]
    _idmapped(b, src, options=("bind", "ro", "idmap"), uid_maps=maps, gid_maps=maps)
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["1000", "read-only"], describe(res)
    assert not (src / "x").exists()


# ------------------------------------------------------------- refused


def test_filesystem_without_idmap_support_is_a_clear_error(rt, make_bundle):
    """sysfs has no id-mapped mounts: one line naming it, and nothing made."""
    b = make_bundle(("true",), write=False)
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    _idmapped(b, Path("/sys"), uid_maps=maps, gid_maps=maps)
    b.write()
    _refused(rt, b, rt.create(b), "does not support id-mapped mounts")


def test_uid_mappings_without_gid_mappings(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    _idmapped(b, _source(tmp_path), uid_maps=[{"containerID": 0, "hostID": 1, "size": 1}])
    b.write()
    _refused(rt, b, rt.create(b), "gidMappings")


def test_idmapped_mount_must_be_a_bind(rt, make_bundle):
    b = make_bundle(("true",), write=False)
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    b.config["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                               "uidMappings": maps, "gidMappings": maps})
    b.write()
    _refused(rt, b, rt.create(b), "bind")


def test_idmap_alone_needs_a_user_namespace(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    _idmapped(b, _source(tmp_path))
    b.write()
    _refused(rt, b, rt.create(b), "user namespace")


def test_features_report_idmap(rt):
    import json

    doc = json.loads(assert_ok(rt("features", global_args=[])).stdout)
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(doc["mountOptions"])
