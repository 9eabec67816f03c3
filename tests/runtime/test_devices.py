"""linux.devices entries and the devices cgroup (v1 here; deny-all + runc defaults)."""

from __future__ import annotations

import rthelpers as h
from rthelpers import assert_ok, describe


def test_char_device_created(run_sh):
    def mutate(b):
        b.config["linux"]["devices"] = [{
            "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
            "fileMode": 0o646, "uid": h.TESTER_UID, "gid": 2000,
        }]

    res = assert_ok(run_sh(
        "stat -c '%F|%t|%T|%a|%u|%g' /dev/mynull; echo x > /dev/mynull && echo write-ok", mutate))
    lines = res.stdout.splitlines()
    assert lines[0] == f"character special file|1|3|646|{h.TESTER_UID}|2000", describe(res)
    assert lines[1] == "write-ok", (
        "configured device not allowed by the devices cgroup" + describe(res))


def test_device_in_subdirectory_and_fifo(run_sh):
    def mutate(b):
        b.config["linux"]["devices"] = [
            {"path": "/dev/sub/dir/myzero", "type": "c", "major": 1, "minor": 5,
             "fileMode": 0o666, "uid": 0, "gid": 0},
            {"path": "/dev/myfifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0},
        ]

    res = assert_ok(run_sh(
        "stat -c '%F|%t|%T' /dev/sub/dir/myzero; stat -c '%F|%a' /dev/myfifo; "
        "head -c 3 /dev/sub/dir/myzero | wc -c", mutate))
    assert res.stdout.splitlines() == ["character special file|1|5", "fifo|600", "3"], describe(res)


def test_devices_cgroup_denies_unlisted_device(run_sh):
    """With deny-all in resources.devices, a node the container makes itself for a
    device that is not allowed cannot be opened (mknod needs CAP_MKNOD: give it)."""

    def mutate(b):
        caps = [*h.RUNC_SPEC_CAPS, "CAP_MKNOD"]
        b.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective",
                                                                  "permitted")}

    # 1:1 is /dev/mem: never in runc's default allow list.
    res = assert_ok(run_sh(
        "mknod /tmp/mem c 1 1 && echo made; head -c 1 /tmp/mem >/dev/null 2>&1 && echo OPENED "
        "|| echo denied", mutate))
    assert res.stdout.split() == ["made", "denied"], describe(res)
