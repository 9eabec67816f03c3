"""User namespaces whose uidMappings/gidMappings have several ranges (the runtime, as
root, writes them to /proc/<pid>/uid_map and gid_map itself)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

# container ids 0..999 are host 100000..100999, container 1000..1999 are host 300000..
FIRST = {"containerID": 0, "hostID": 100000, "size": 1000}
SECOND = {"containerID": 1000, "hostID": 300000, "size": 1000}
UNMAPPED_HOST_ID = 200000
OVERFLOW = 65534  # what the kernel shows for an id the namespace does not map


def _multi_range(b: h.Bundle, uid_maps=(FIRST, SECOND), gid_maps=(FIRST, SECOND)) -> None:
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [dict(m) for m in uid_maps]
    b.config["linux"]["gidMappings"] = [dict(m) for m in gid_maps]
    # a cgroup v1 mount needs privileges over the host's cgroups that a userns lacks
    b.config["mounts"] = [m for m in b.config["mounts"] if m.get("type") != "cgroup"]
    # the init, root of a namespace that maps host root to nothing, must reach the rootfs
    for parent in b.path.parents:
        if str(parent) in ("/", "/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)


def _own_rootfs(b: h.Bundle, template: Path, owner: int) -> None:
    """A real copy of the rootfs (not hardlinks: chown would change the shared template)
    owned by `owner`."""
    shutil.copytree(template, b.rootfs, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(b.rootfs):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), owner, owner)
    os.lchown(b.rootfs, owner, owner)


def test_every_range_is_written(run_sh):
    res = assert_ok(run_sh("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map",
                           _multi_range))
    uid_part, gid_part = res.stdout.split("--\n")
    want = [["0", "100000", "1000"], ["1000", "300000", "1000"]]
    assert [line.split() for line in uid_part.splitlines()] == want, describe(res)
    assert [line.split() for line in gid_part.splitlines()] == want, describe(res)


def test_owner_in_the_second_range(rt, make_bundle, rootfs_template):
    """A file of host uid 300005 is 1005 inside, an unmapped one is the overflow id, and
    what the container chowns to 1500:1600 is host 300500:300600's."""
    b = make_bundle(("sh", "-ec", "stat -c %u:%g /data/second /data/unmapped; "
                     "chown 1500:1600 /tmp/made; id -u"), write=False, rootfs=False)
    _multi_range(b)
    for caps in b.config["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
    _own_rootfs(b, rootfs_template, FIRST["hostID"])
    (b.rootfs / "data").mkdir()
    for name, owner in (("second", (300005, 300007)), ("unmapped", (UNMAPPED_HOST_ID,) * 2),
                        ("../tmp/made", (100000, 100000))):
        path = b.rootfs / "data" / name
        path.write_text(name)
        os.chown(path, *owner)
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["1005:1007", f"{OVERFLOW}:{OVERFLOW}", "0"], describe(res)
    made = os.stat(b.rootfs / "tmp" / "made")
    assert (made.st_uid, made.st_gid) == (300500, 300600)


def test_process_user_from_the_second_range(rt, make_bundle, rootfs_template):
    """process.user 1005:1007 is host 300005:300007: what it makes is theirs."""
    b = make_bundle(("sh", "-ec", "id -u; id -g; touch /tmp/by-user"), write=False,
                    rootfs=False)
    _multi_range(b)
    b.config["process"]["user"] = {"uid": 1005, "gid": 1007}
    _own_rootfs(b, rootfs_template, FIRST["hostID"])
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["1005", "1007"], describe(res)
    made = os.stat(b.rootfs / "tmp" / "by-user")
    assert (made.st_uid, made.st_gid) == (300005, 300007)


def test_uid_and_gid_maps_may_differ(run_sh):
    gid_maps = ({"containerID": 0, "hostID": 100000, "size": 10},
                {"containerID": 10, "hostID": 400000, "size": 5},
                {"containerID": 100, "hostID": 500000, "size": 1})
    res = assert_ok(run_sh("cat /proc/self/gid_map",
                           lambda b: _multi_range(b, gid_maps=gid_maps)))
    assert [line.split() for line in res.stdout.splitlines()] == \
        [["0", "100000", "10"], ["10", "400000", "5"], ["100", "500000", "1"]], describe(res)


def test_overlapping_ranges_refused(rt, make_bundle):
    """The kernel refuses ranges that overlap: create fails and leaves nothing."""
    b = make_bundle(("true",), write=False)
    _multi_range(b, uid_maps=(FIRST, {"containerID": 500, "hostID": 300000, "size": 1000}))
    b.write()
    assert_fails(rt.create(b), 1)
    assert b.id not in rt.list_ids()
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
