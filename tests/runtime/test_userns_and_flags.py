"""User namespaces, oomScoreAdj, and the create flags --no-pivot and --preserve-fds."""

from __future__ import annotations

import os
import subprocess

import rthelpers as h
from rthelpers import assert_ok, describe

HOST_BASE = 100000


def _userns(b: h.Bundle, host_base: int, size: int = 65536) -> None:
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_base, "size": size}]
    # a cgroup v1 mount needs privileges over the host's cgroups that a userns lacks
    b.config["mounts"] = [m for m in b.config["mounts"] if m.get("type") != "cgroup"]


def _chown_tree(path: os.PathLike[str] | str, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), uid, uid)
    os.lchown(path, uid, uid)


def test_new_user_namespace_identity_map(run_sh):
    res = run_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user",
                 lambda b: _userns(b, 0))
    lines = assert_ok(res).stdout.split("\n")
    assert lines[0].split() == ["0", "0", "65536"], describe(res)
    assert lines[1].split() == ["0", "0", "65536"], describe(res)
    assert lines[2] == "0", describe(res)
    assert lines[3] != os.readlink("/proc/self/ns/user"), "no new user namespace" + describe(res)


def test_new_user_namespace_shifted_map(rt, make_bundle):
    """Container root is host uid 100000: files it makes belong to that uid on the host."""
    b = make_bundle(("sh", "-c", "id -u; touch /tmp/made-inside; echo $$"), write=False)
    _userns(b, HOST_BASE)
    b.config["root"]["readonly"] = False
    with h.crossable_dir() as crossable:
        # where the container's root (host uid 100000) can reach it; a real copy, as the
        # chown must not reach the session's template through hardlinks
        _chown_tree(h.move_rootfs(b, crossable, copy=True), HOST_BASE)
        b.write()
        res = assert_ok(rt.run(b))
        assert res.stdout.split() == ["0", "1"], describe(res)
        assert os.stat(b.rootfs / "tmp" / "made-inside").st_uid == HOST_BASE


def test_join_user_namespace_by_path(rt, make_bundle):
    first = make_bundle(("sleep", "100"), write=False)
    _userns(first, 0)
    first.write()
    pid = rt.create_started(first)["pid"]
    second = make_bundle(("readlink", "/proc/self/ns/user"), write=False)
    second.config["mounts"] = [m for m in second.config["mounts"] if m.get("type") != "cgroup"]
    # runc 1.1.5 wants the mappings even when it joins (they must match the namespace's)
    second.config["linux"]["uidMappings"] = first.config["linux"]["uidMappings"]
    second.config["linux"]["gidMappings"] = first.config["linux"]["gidMappings"]
    second.set_namespace("user", f"/proc/{pid}/ns/user")
    res = assert_ok(rt.run(second))
    assert res.stdout.strip() == os.readlink(f"/proc/{pid}/ns/user"), describe(res)


def test_oom_score_adj(run_sh):
    res = run_sh("cat /proc/self/oom_score_adj",
                 lambda b: b.config["process"].__setitem__("oomScoreAdj", 432))
    assert assert_ok(res).stdout.strip() == "432", describe(res)


def test_no_pivot(rt, make_bundle):
    b = make_bundle(("sh", "-c", "echo $$; ls /"))
    res = assert_ok(rt.run(b, "--no-pivot"))
    lines = res.stdout.split()
    assert lines[0] == "1" and "bin" in lines and "proc" in lines, describe(res)


def test_preserve_fds(rt, make_bundle, tmp_path):
    """fd 3 passed with --preserve-fds 1 is open in the container; fd 4 (not passed) is not."""
    script = "echo through-fd3 >&3; for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo $fd; done"
    b = make_bundle(("sh", "-c", script + "; true"))
    extra = tmp_path / "extra"
    with open(extra, "w") as f3, open(os.devnull) as f4:
        os.dup2(f3.fileno(), 100)
        os.dup2(f4.fileno(), 101)
        argv = rt.argv("run", "--bundle", str(b.path), "--preserve-fds", "1", b.id)
        # the child gets our fd 100 as its 3 and fd 101 as its 4
        res = subprocess.run(
            ["bash", "-c", 'exec 3>&100 4<&101 100>&- 101>&-; exec "$@"', "bash", *argv],
            capture_output=True, text=True, timeout=20, pass_fds=(100, 101),
        )
        os.close(100)
        os.close(101)
    assert res.returncode == 0, describe(res)
    assert extra.read_text() == "through-fd3\n"
    assert res.stdout.split() == ["3"], describe(res)
