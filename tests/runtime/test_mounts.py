"""The container's filesystem: mounts, /dev, masked and read-only paths, root.readonly,
tmpfs/bind mounts, and symlinks in the rootfs that point outside of it."""

from __future__ import annotations

import os

import pytest
import rthelpers as h
from rthelpers import assert_ok, describe


def mountinfo(text: str) -> dict[str, dict]:
    """mount point -> {fstype, options, super} from `cat /proc/self/mountinfo` output."""
    mounts = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 3:
            continue
        mounts[lf[4]] = {"fstype": rf[0], "options": set(lf[5].split(",")),
                         "super": set(rf[2].split(",")), "source": rf[1]}
    return mounts


def test_standard_mounts_present(run_sh):
    res = assert_ok(run_sh("cat /proc/self/mountinfo"))
    m = mountinfo(res.stdout)
    want = {"/": None, "/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts",
            "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs"}
    for point, fstype in want.items():
        assert point in m, f"{point} not mounted:" + describe(res)
        if fstype:
            assert m[point]["fstype"] == fstype, f"{point}: {m[point]}" + describe(res)
    assert "ro" in m["/sys"]["options"], f"/sys must be read-only: {m['/sys']}"
    assert "nosuid" in m["/dev"]["options"]
    assert not any(p.startswith(str(h.Path("/tmp/pytest-of-root"))) for p in m), (
        "host paths visible in the container's mount table:" + describe(res)
    )


def test_proc_is_container_proc(run_sh):
    res = assert_ok(run_sh("ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/1/comm"))
    n, comm = res.stdout.split()
    assert int(n) < 10, "/proc shows host processes (not a new proc for the pid ns)" + describe(res)
    assert comm == "cat" or comm == "sh", describe(res)


DEVICES = {  # name -> (major, minor)
    "null": (1, 3), "zero": (1, 5), "full": (1, 7),
    "random": (1, 8), "urandom": (1, 9), "tty": (5, 0),
}


def test_dev_contents(run_sh):
    script = "; ".join(
        f"stat -c '{d} %F %t %T %a' /dev/{d}" for d in DEVICES
    ) + (
        "; for l in fd stdin stdout stderr; do readlink /dev/$l; done"
        "; test -e /dev/ptmx && echo ptmx-ok"
        "; test -d /dev/pts && echo pts-ok; test -d /dev/shm && echo shm-ok"
        "; ls /dev/pts"
    )
    res = assert_ok(run_sh(script))
    lines = res.stdout.splitlines()
    for d, (major, minor) in DEVICES.items():
        line = next((ln for ln in lines if ln.startswith(d + " ")), None)
        assert line is not None, f"/dev/{d} missing:" + describe(res)
        _, rest = line.split(" ", 1)
        assert rest.startswith("character special file"), line
        ftype_len = len("character special file ")
        tmaj, tmin, mode = rest[ftype_len:].split()
        assert (int(tmaj, 16), int(tmin, 16)) == (major, minor), line
        assert mode == "666", f"/dev/{d} mode {mode}, runc makes it 0666"
    for want in ("/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2",
                 "ptmx-ok", "pts-ok", "shm-ok"):
        assert want in lines, f"{want!r} missing:" + describe(res)
    assert "ptmx" in lines, "/dev/pts must be a devpts with a ptmx:" + describe(res)


def test_dev_devices_usable(run_sh):
    res = assert_ok(run_sh(
        "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; "
        "head -c 8 /dev/urandom | wc -c; echo x > /dev/full || echo full-enospc"
    ))
    assert res.stdout.split() == ["null-ok", "4", "8", "full-enospc"], describe(res)


def test_masked_paths(run_sh):
    checks = ["wc -c < /proc/keys", "ls -A /sys/firmware | wc -l"]
    if os.path.exists("/proc/kcore"):
        checks.append("wc -c < /proc/kcore")
    res = run_sh("; ".join(c + " 2>/dev/null || echo fail" for c in checks))
    assert_ok(res)
    outs = res.stdout.split()
    assert len(outs) == len(checks), describe(res)
    for check, out in zip(checks, outs, strict=True):
        assert out in ("0", "fail"), f"masked path readable: {check} -> {out}" + describe(res)
    assert os.listdir("/sys/firmware"), "host /sys/firmware is empty: test would prove nothing"


def test_masked_paths_missing_on_host_are_ignored(run_sh):
    def mutate(b):
        b.config["linux"]["maskedPaths"].append("/proc/does-not-exist-anywhere")
        b.config["linux"]["readonlyPaths"].append("/proc/also-missing")

    assert assert_ok(run_sh("echo ok", mutate)).stdout == "ok\n"


def test_readonly_paths(run_sh):
    res = run_sh(
        "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo WROTE || echo ro-ok; "
        "cat /proc/self/mountinfo"
    )
    assert_ok(res)
    assert res.stdout.splitlines()[0] == "ro-ok", "/proc/sys is writable:" + describe(res)
    m = mountinfo(res.stdout)
    assert "/proc/sys" in m and "ro" in m["/proc/sys"]["options"], describe(res)


def test_root_readonly(run_sh):
    def mutate(b):
        b.config["root"]["readonly"] = True

    res = run_sh(
        "touch /x 2>/dev/null && echo WROTE || echo ro-ok; "
        "touch /tmp/y 2>/dev/null && echo WROTE || echo ro-ok; "
        "touch /dev/shm/z && echo shm-rw", mutate)
    assert_ok(res)
    assert res.stdout.split() == ["ro-ok", "ro-ok", "shm-rw"], describe(res)


def test_root_writable_by_default(run_sh, tmp_path):
    res = assert_ok(run_sh("touch /made-inside && echo ok"))
    assert res.stdout == "ok\n", describe(res)


def test_tmpfs_mount_with_options_and_missing_destination(rt, make_bundle):
    b = make_bundle(("sh", "-c", "grep ' /mnt/scratch ' /proc/mounts; stat -c %a /mnt/scratch"),
                    write=False)
    assert not (b.rootfs / "mnt").exists()
    b.add_mount("/mnt/scratch", "tmpfs", "tmpfs", ["nosuid", "size=1m", "mode=700"])
    res = assert_ok(rt.run(b))
    lines = res.stdout.splitlines()
    assert len(lines) == 2, describe(res)
    fields = lines[0].split()
    assert fields[2] == "tmpfs", describe(res)
    opts = set(fields[3].split(","))
    assert {"size=1024k", "mode=700", "nosuid"} <= opts, describe(res)
    assert lines[1] == "700", describe(res)
    assert (b.rootfs / "mnt" / "scratch").is_dir(), "destination was not created in the rootfs"


@pytest.mark.parametrize("readonly", [False, True], ids=["rw", "ro"])
def test_tmpfs_tmpcopyup_starts_with_the_covered_dir(rt, make_bundle, readonly):
    """runc's `tmpcopyup` (podman adds it to --tmpfs and --read-only's tmpfs mounts)."""
    b = make_bundle(("sh", "-c", "grep ' /etc/seed ' /proc/mounts; "
                     "stat -c '%a %u:%g %N' /etc/seed/dir /etc/seed/dir/file /etc/seed/link; "
                     "cat /etc/seed/dir/file; echo new > /etc/seed/new 2>&1; echo rc=$?"),
                    write=False)
    seed = b.rootfs / "etc" / "seed"
    (seed / "dir").mkdir(parents=True)
    (seed / "dir" / "file").write_text("seeded\n")
    os.chmod(seed / "dir", 0o750)
    os.chmod(seed / "dir" / "file", 0o604)
    os.chown(seed / "dir" / "file", h.TESTER_UID, h.TESTER_GID)
    os.symlink("dir/file", seed / "link")
    opts = ["nosuid", "size=1m", "tmpcopyup", *(["ro"] if readonly else [])]
    b.add_mount("/etc/seed", "tmpfs", "tmpfs", opts)
    res = assert_ok(rt.run(b))
    lines = res.stdout.splitlines()
    assert lines[0].split()[2] == "tmpfs", describe(res)
    assert ("ro" if readonly else "rw") in lines[0].split()[3].split(","), describe(res)
    assert lines[1] == "750 0:0 /etc/seed/dir", describe(res)
    assert lines[2] == f"604 {h.TESTER_UID}:{h.TESTER_GID} /etc/seed/dir/file", describe(res)
    assert lines[3] == "777 0:0 '/etc/seed/link' -> 'dir/file'", describe(res)
    assert lines[4] == "seeded", describe(res)
    if readonly:
        assert lines[5] == "rc=1" and "Read-only file system" in res.stderr, describe(res)
    else:
        assert lines[5] == "rc=0", describe(res)
    assert sorted(os.listdir(seed)) == ["dir", "link"], "the copy leaked into the rootfs"


def test_bind_mount_rw(rt, make_bundle, tmp_path):
    host = tmp_path / "hostdir-rw"
    host.mkdir()
    (host / "hello").write_text("from-host\n")
    b = make_bundle(("sh", "-c", "cat /data/hello; echo from-container > /data/new"),
                    write=False)
    b.add_mount("/data", None, str(host), ["rbind", "rw"])
    res = assert_ok(rt.run(b))
    assert res.stdout == "from-host\n", describe(res)
    assert (host / "new").read_text() == "from-container\n"


def test_bind_mount_ro(rt, make_bundle, tmp_path):
    host = tmp_path / "hostdir-ro"
    host.mkdir()
    (host / "hello").write_text("from-host\n")
    b = make_bundle(
        ("sh", "-c", "cat /data/hello; echo x > /data/new 2>/dev/null && echo WROTE || echo ro-ok"),
        write=False)
    b.add_mount("/data", "bind", str(host), ["bind", "ro"])
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["from-host", "ro-ok"], describe(res)
    assert not (host / "new").exists()


def test_bind_mount_file(rt, make_bundle, tmp_path):
    src = tmp_path / "resolv.conf"
    src.write_text("nameserver 192.0.2.1\n")
    b = make_bundle(("cat", "/etc/resolv.conf"), write=False)
    b.add_mount("/etc/resolv.conf", "bind", str(src), ["rbind", "ro"])
    res = assert_ok(rt.run(b))
    assert res.stdout == "nameserver 192.0.2.1\n", describe(res)


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_symlink_destination_stays_in_rootfs(rt, make_bundle, tmp_path, link):
    """rootfs/evil -> <host dir> used as a mount destination must not touch the host."""
    host = tmp_path / f"hostdir-{link}"
    host.mkdir()
    b = make_bundle(("sleep", "100"), write=False)
    target = str(host) if link == "absolute" else "../../../../../../../../.." + str(host)
    os.symlink(target, b.rootfs / "evil")
    b.add_mount("/evil/sub", "tmpfs", "tmpfs", ["size=64k"])
    res = rt.create(b)
    try:
        assert os.listdir(host) == [], f"runtime created {os.listdir(host)} in the host dir"
        with open("/proc/self/mountinfo") as f:
            assert str(host) not in f.read(), "host dir got a mount in the host namespace"
        if res.returncode == 0:
            # Not refused: then it must have been mounted inside the rootfs.
            pid = rt.state(b.id)["pid"]
            with open(f"/proc/{pid}/mountinfo") as f:
                points = [ln.split()[4] for ln in f]
            inside = str(host) + "/sub"
            assert inside in points, (
                f"mount neither refused nor placed at {inside} inside the rootfs: {points}"
            )
            assert (b.rootfs / str(host).lstrip("/") / "sub").is_dir()
        else:
            assert res.returncode == 1 and res.stderr.strip(), describe(res)
    finally:
        rt.delete(b.id, force=True)
    assert os.listdir(host) == []
