"""User namespaces whose uidMappings/gidMappings have several ranges (the runtime, as
root, writes them to /proc/<pid>/uid_map and gid_map itself)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

# container ids 0..999 are host 100000..100999, container 1000..1999 are host 300000..
FIRST = {"containerID": 0, "hostID": 100000, "size": 1000}
SECOND = {"containerID": 1000, "hostID": 300000, "size": 1000}
UNMAPPED_HOST_ID = 200000
OVERFLOW = 65534  # what the kernel shows for an id the namespace does not map


@pytest.fixture
def crossable():
    with h.crossable_dir() as d:
        yield d


def _multi_range(b: h.Bundle, crossable: Path, uid_maps=(FIRST, SECOND),
                 gid_maps=(FIRST, SECOND), owner: int | None = None) -> None:
    """A new user namespace with these maps; the rootfs moved where its root (not host
    root) can reach it, as a copy owned by `owner` when one is given."""
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [dict(m) for m in uid_maps]
    b.config["linux"]["gidMappings"] = [dict(m) for m in gid_maps]
    # a cgroup v1 mount needs privileges over the host's cgroups that a userns lacks
    b.config["mounts"] = [m for m in b.config["mounts"] if m.get("type") != "cgroup"]
    rootfs = h.move_rootfs(b, crossable, copy=owner is not None)
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            for name in (*dirnames, *filenames):
                os.lchown(os.path.join(dirpath, name), owner, owner)
        os.lchown(rootfs, owner, owner)


def test_every_range_is_written(crossable, run_sh):
    res = assert_ok(run_sh("cat /proc/self/uid_map; echo --; cat /proc/self/gid_map",
                           lambda b: _multi_range(b, crossable)))
    uid_part, gid_part = res.stdout.split("--\n")
    want = [["0", "100000", "1000"], ["1000", "300000", "1000"]]
    assert [line.split() for line in uid_part.splitlines()] == want, describe(res)
    assert [line.split() for line in gid_part.splitlines()] == want, describe(res)


def test_owner_in_the_second_range(crossable, rt, make_bundle):
    """A file of host uid 300005 is 1005 inside, an unmapped one is the overflow id, and
    what the container chowns to 1500:1600 is host 300500:300600's."""
    b = make_bundle(("sh", "-ec", "stat -c %u:%g /data/second /data/unmapped; "
                     "chown 1500:1600 /tmp/made; id -u"), write=False)
    _multi_range(b, crossable, owner=FIRST["hostID"])
    for caps in b.config["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
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


def test_process_user_from_the_second_range(crossable, rt, make_bundle):
    """process.user 1005:1007 is host 300005:300007: what it makes is theirs."""
    b = make_bundle(("sh", "-ec", "id -u; id -g; touch /tmp/by-user"), write=False)
    _multi_range(b, crossable, owner=FIRST["hostID"])
    b.config["process"]["user"] = {"uid": 1005, "gid": 1007}
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["1005", "1007"], describe(res)
    made = os.stat(b.rootfs / "tmp" / "by-user")
    assert (made.st_uid, made.st_gid) == (300005, 300007)


def test_uid_and_gid_maps_may_differ(crossable, run_sh):
    gid_maps = ({"containerID": 0, "hostID": 100000, "size": 10},
                {"containerID": 10, "hostID": 400000, "size": 5},
                {"containerID": 100, "hostID": 500000, "size": 1})
    res = assert_ok(run_sh("cat /proc/self/gid_map",
                           lambda b: _multi_range(b, crossable, gid_maps=gid_maps)))
    assert [line.split() for line in res.stdout.splitlines()] == \
        [["0", "100000", "10"], ["10", "400000", "5"], ["100", "500000", "1"]], describe(res)


def test_overlapping_ranges_refused(crossable, rt, make_bundle):
    """The kernel refuses ranges that overlap: create fails and leaves nothing."""
    b = make_bundle(("true",), write=False)
    overlapping = {"containerID": 500, "hostID": 300000, "size": 1000}
    _multi_range(b, crossable, uid_maps=(FIRST, overlapping))
    b.write()
    assert_fails(rt.create(b), 1)
    assert b.id not in rt.list_ids()
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
