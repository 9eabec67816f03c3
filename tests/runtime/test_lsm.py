"""AppArmor and SELinux on a host that has neither (this VM: CONFIG_SECURITY_APPARMOR is
not set; SELinux is built in but not among the active LSMs, and no selinuxfs is
mounted): what runc 1.1.5 does, pyrt must do.

- process.apparmorProfile: runc fails in its init (the kernel rejects the write to
  /proc/self/attr/exec); pyrt refuses before making anything. Either way: exit 1,
  nothing left.
- process.selinuxLabel: both refuse before making anything.
- linux.mountLabel: both pass context="..." to the mounts runc labels (tmpfs, devpts,
  masked directories, ...), which this kernel rejects, and to no others.
- `exec --apparmor/--process-label` and a --process file with either: exit 255, nothing
  runs; empty values keep the container's (none).

Applying them where the host has the LSM is unit-tested with a fake /proc
(tests/unit/test_lsm.py): this machine cannot have it.
"""

from __future__ import annotations

import json
import os

import cghelpers as cg
import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

PROFILE = "docker-default"
LABEL = "system_u:system_r:container_t:s0:c1,c2"
MOUNT_LABEL = "system_u:object_r:container_file_t:s0:c1,c2"


def _apparmor_enabled() -> bool:
    return h.read("/sys/module/apparmor/parameters/enabled").startswith("Y")


def _selinux_enabled() -> bool:
    return os.path.isdir("/sys/fs/selinux") and bool(os.listdir("/sys/fs/selinux"))


no_apparmor = pytest.mark.skipif(_apparmor_enabled(), reason="this host has AppArmor")
no_selinux = pytest.mark.skipif(_selinux_enabled(), reason="this host has SELinux")


@no_apparmor
def test_apparmor_profile_without_apparmor_is_refused(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["apparmorProfile"] = PROFILE
    b.write()
    res = cg.assert_refused(rt, b, rt.create(b))
    assert "apparmor" in res.stderr.lower(), describe(res)


@no_selinux
def test_selinux_label_without_selinux_is_refused(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["selinuxLabel"] = LABEL
    b.write()
    res = cg.assert_refused(rt, b, rt.create(b))
    assert "selinux" in res.stderr.lower(), describe(res)


@no_selinux
def test_mount_label_goes_to_tmpfs_mounts(rt, make_bundle):
    """The default mounts have tmpfs on /dev: the label there makes the kernel fail it."""
    b = make_bundle(write=False)
    b.config["linux"]["mountLabel"] = MOUNT_LABEL
    b.write()
    cg.assert_refused(rt, b, rt.create(b))


def _unlabelled_only(b: h.Bundle) -> None:
    """Only mounts runc never labels: proc, sysfs, mqueue, a bind; masks on files."""
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if m["type"] in ("proc", "sysfs", "mqueue")]
    b.config["linux"]["maskedPaths"] = ["/proc/keys", "/proc/timer_list"]
    b.config["linux"]["mountLabel"] = MOUNT_LABEL


@no_selinux
def test_mount_label_is_not_put_on_the_mounts_runc_does_not_label(rt, make_bundle,
                                                                  tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("bound\n")
    b = make_bundle(("sh", "-c", "cat /vol/f; stat -f -c %T /proc /sys; "
                     "grep -c ' /dev/mqueue mqueue ' /proc/self/mounts"), write=False)
    _unlabelled_only(b)
    b.add_mount("/vol", "bind", str(vol), ["rbind"])
    res = assert_ok(rt.run(b))
    assert res.stdout.split() == ["bound", "proc", "sysfs", "1"], describe(res)


@no_selinux
@pytest.mark.parametrize("what", ["masked-directory", "devpts", "tmpfs"])
def test_mount_label_on_each_labelled_kind(rt, make_bundle, what):
    """Each kind of mount runc labels, alone among unlabelled ones, fails on this host."""
    b = make_bundle(write=False)
    _unlabelled_only(b)
    if what == "masked-directory":
        b.config["linux"]["maskedPaths"].append("/sys/firmware")
    elif what == "devpts":
        b.add_mount("/dev/pts", "devpts", "devpts", ["newinstance", "ptmxmode=0666"])
    else:
        b.add_mount("/tmp", "tmpfs", "tmpfs", ["size=64k"])
    b.write()
    cg.assert_refused(rt, b, rt.create(b))


# --------------------------------------------------------------------------- exec


def _exec_refused(rt: h.Runtime, b: h.Bundle, res, word: str) -> None:
    """exit 255 (runc's exec errors), a message naming the LSM, nothing ran."""
    assert_fails(res, 255)
    assert word in res.stderr.lower(), describe(res)
    assert rt.status(b.id) == "running"
    assert h.cgroup_procs(b.cgroup_path) == {rt.state(b.id)["pid"]}


@no_apparmor
def test_exec_apparmor_without_apparmor(rt, bundle):
    rt.create_started(bundle)
    res = rt("exec", "--apparmor", PROFILE, bundle.id, "sh", "-c", "echo ran")
    _exec_refused(rt, bundle, res, "apparmor")
    assert "ran" not in res.stdout


@no_selinux
def test_exec_process_label_without_selinux(rt, bundle):
    rt.create_started(bundle)
    res = rt("exec", "--process-label", LABEL, bundle.id, "sh", "-c", "echo ran")
    _exec_refused(rt, bundle, res, "selinux")
    assert "ran" not in res.stdout


@pytest.mark.parametrize("field,word", [("apparmorProfile", "apparmor"),
                                        ("selinuxLabel", "selinux")])
def test_exec_process_file_with_an_lsm(rt, bundle, tmp_path, field, word):
    if (word == "apparmor" and _apparmor_enabled()) or (word == "selinux"
                                                        and _selinux_enabled()):
        pytest.skip(f"this host has {word}")
    rt.create_started(bundle)
    proc = {"args": ["sh", "-c", "echo ran"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": [f"PATH={h.DEFAULT_PATH}"], field: PROFILE if word == "apparmor" else LABEL}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    res = rt("exec", "--process", str(pf), bundle.id)
    _exec_refused(rt, bundle, res, word)


def test_exec_empty_lsm_flags_change_nothing(rt, bundle):
    rt.create_started(bundle)
    res = assert_ok(rt("exec", "--apparmor", "", "--process-label", "", bundle.id,
                       "sh", "-c", "echo ran"))
    assert res.stdout == "ran\n", describe(res)


def test_features_report_compiled_in_support(rt):
    """features.md: `enabled` is whether the runtime supports the LSM, not the host."""
    doc = json.loads(assert_ok(rt("features")).stdout)
    assert doc["linux"]["apparmor"] == {"enabled": True}
    assert doc["linux"]["selinux"] == {"enabled": True}

