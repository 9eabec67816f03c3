"""Namespaces: new ones differ from the host's, unconfigured ones are shared, `path`
joins an existing namespace, bad namespace lists are refused."""

from __future__ import annotations

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

# config type -> /proc/PID/ns name
NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
            "cgroup": "cgroup", "user": "user", "time": "time"}


def test_configured_namespaces_are_new(rt, bundle):
    pid = rt.create_started(bundle)["pid"]
    configured = {n["type"] for n in bundle.namespaces()}
    assert configured >= {"pid", "network", "ipc", "uts", "mount"}
    for t in configured:
        f = NS_FILES[t]
        assert h.ns_inode(pid, f) != h.ns_inode("self", f), f"{t} namespace not unshared"
    for t in set(NS_FILES) - configured:
        f = NS_FILES[t]
        try:
            host = h.ns_inode("self", f)
        except FileNotFoundError:
            continue
        assert h.ns_inode(pid, f) == host, f"{t} namespace is not configured but differs"


@pytest.mark.parametrize("dropped", ["network", "ipc", "uts"])
def test_unconfigured_namespace_is_shared(rt, make_bundle, dropped):
    b = make_bundle(write=False)
    if dropped == "uts":
        b.config.pop("hostname")  # a hostname needs a private uts namespace
    b.remove_namespace(dropped)
    pid = rt.create_started(b)["pid"]
    f = NS_FILES[dropped]
    assert h.ns_inode(pid, f) == h.ns_inode("self", f), f"{dropped} should be the host's"
    assert h.ns_inode(pid, "pid") != h.ns_inode("self", "pid")


def test_join_network_namespace_by_path(rt, make_bundle):
    a = make_bundle()
    apid = rt.create_started(a)["pid"]
    b = make_bundle(write=False)
    b.set_namespace("network", f"/proc/{apid}/ns/net")
    bpid = rt.create_started(b)["pid"]
    assert h.ns_inode(bpid, "net") == h.ns_inode(apid, "net")
    assert h.ns_inode(bpid, "net") != h.ns_inode("self", "net")
    assert h.ns_inode(bpid, "uts") != h.ns_inode(apid, "uts"), "only net was to be shared"


def test_join_ipc_and_uts_by_path(rt, make_bundle):
    a = make_bundle()
    apid = rt.create_started(a)["pid"]
    b = make_bundle(write=False)
    b.set_namespace("ipc", f"/proc/{apid}/ns/ipc")
    b.set_namespace("uts", f"/proc/{apid}/ns/uts")
    b.config.pop("hostname")  # a joined uts namespace keeps its hostname
    b.write()
    bpid = rt.create_started(b)["pid"]
    assert h.ns_inode(bpid, "ipc") == h.ns_inode(apid, "ipc")
    assert h.ns_inode(bpid, "uts") == h.ns_inode(apid, "uts")


def test_cgroup_namespace_root(run_sh):
    res = assert_ok(run_sh("cat /proc/self/cgroup"))
    for line in res.stdout.splitlines():
        assert line.split(":", 2)[2] == "/", f"cgroup ns root is not the container cgroup: {line}"


@pytest.mark.pyrt_only
def test_time_namespace_offsets(rt, make_bundle):
    # pyrt-only: runc 1.1.5 has no time namespace ('namespace {"time" ""} does not exist').
    b = make_bundle(("sh", "-c", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime"),
                    write=False)
    b.set_namespace("time")
    year = 86400 * 365
    b.config["linux"]["timeOffsets"] = {
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": year, "nanosecs": 0},
    }
    b.write()
    res = assert_ok(rt.run(b))
    lines = res.stdout.split("\n")
    offsets = {ln.split()[0]: ln.split()[1:] for ln in lines[:2]}
    assert offsets == {"monotonic": ["86400", "0"], "boottime": [str(year), "0"]}, describe(res)
    assert int(lines[2]) >= year, describe(res)


# ----------------------------------------------------------------- bad input


def _refused(rt, b, msg_has=None):
    res = rt.create(b)
    assert_fails(res, 1, msg_has)
    assert b.id not in rt.list_ids(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
    return res


def test_duplicate_namespace_type(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["linux"]["namespaces"].append({"type": "ipc"})
    b.write()
    _refused(rt, b)


def test_unknown_namespace_type(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["linux"]["namespaces"].append({"type": "bogus"})
    b.write()
    _refused(rt, b)


def test_namespace_path_of_wrong_type(rt, make_bundle):
    a = make_bundle()
    apid = rt.create_started(a)["pid"]
    b = make_bundle(write=False)
    b.set_namespace("ipc", f"/proc/{apid}/ns/net")
    _refused(rt, b)
    assert rt.status(a.id) == "running"


def test_namespace_path_missing(rt, make_bundle):
    b = make_bundle(write=False)
    b.set_namespace("ipc", "/nonexistent/ns/ipc")
    _refused(rt, b)


def test_hostname_without_uts_namespace(rt, make_bundle):
    b = make_bundle(write=False)
    b.remove_namespace("uts")
    _refused(rt, b)
