"""linux/lsm.py where the host HAS AppArmor or SELinux: this machine has neither, so the
host's files (/sys/module/apparmor/parameters/enabled, mountinfo, /proc/self/attr/*)
are replaced by fakes under tmp_path. What a host without them does is tested for real
in tests/runtime/test_lsm.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrt import config
from pyrt.errors import ConfigError, PyrtError
from pyrt.linux import lsm, mounts

PROFILE = "docker-default"
LABEL = "system_u:system_r:container_t:s0:c1,c2"
SELINUXFS = "41 23 0:21 / /sys/fs/selinux {opts} shared:12 - selinuxfs selinuxfs {opts}\n"
OTHER = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"


@pytest.fixture
def fake_proc(tmp_path: Path):
    """fake_proc(apparmor_dir) -> fd of a directory shaped like /proc/<pid> (attr/)."""
    fds: list[int] = []

    def make(apparmor_dir: bool) -> int:
        attr = tmp_path / "pid" / "attr"
        (attr / "apparmor").mkdir(parents=True)
        for name in ("exec", "keycreate", "current"):
            (attr / name).write_text("")
        if apparmor_dir:
            (attr / "apparmor" / "exec").write_text("")
        fds.append(os.open(tmp_path / "pid", os.O_PATH | os.O_DIRECTORY))
        return fds[-1]

    yield make
    for fd in fds:
        os.close(fd)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fake host files: set(apparmor=..., mountinfo=..., current=...)."""
    paths = {"apparmor": tmp_path / "aa-enabled", "mountinfo": tmp_path / "mountinfo",
             "current": tmp_path / "current"}
    monkeypatch.setattr(lsm, "APPARMOR_ENABLED", str(paths["apparmor"]))
    monkeypatch.setattr(lsm, "MOUNTINFO", str(paths["mountinfo"]))
    monkeypatch.setattr(lsm, "CURRENT", str(paths["current"]))
    paths["mountinfo"].write_text(OTHER)

    def set_(**files: str) -> None:
        for name, text in files.items():
            paths[name].write_text(text)

    return set_


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("text,want", [("Y\n", True), ("N\n", False)])
def test_apparmor_enabled_reads_the_module_parameter(host, text, want):
    host(apparmor=text)
    assert lsm.apparmor_enabled() is want


def test_apparmor_not_built_in(host):
    assert lsm.apparmor_enabled() is False  # no parameter file at all


@pytest.mark.parametrize("opts,current,want", [
    ("rw,relatime", "system_u:system_r:unconfined_t:s0\0", True),
    ("rw,relatime", "kernel\0", False),  # SELinux kernel without a policy
    ("ro,relatime", "system_u:system_r:unconfined_t:s0", False),
])
def test_selinux_enabled_as_go_selinux(host, opts, current, want):
    host(mountinfo=OTHER + SELINUXFS.format(opts=opts), current=current)
    assert lsm.selinux_enabled() is want


def test_selinux_without_selinuxfs(host):
    host(current="system_u:system_r:unconfined_t:s0")
    assert lsm.selinux_enabled() is False


def test_check_refuses_what_the_host_lacks(host):
    with pytest.raises(ConfigError) as e:
        lsm.check("", LABEL, "/process/")
    assert e.value.what == "/process/selinuxLabel"
    with pytest.raises(ConfigError) as e:
        lsm.check(PROFILE, "", "/process/")
    assert e.value.what == "/process/apparmorProfile"
    lsm.check("", "", "/process/")  # nothing asked, nothing needed


def test_check_accepts_what_the_host_has(host):
    host(apparmor="Y", mountinfo=OTHER + SELINUXFS.format(opts="rw"), current="x_t\0")
    lsm.check(PROFILE, LABEL, "/process/")


# --------------------------------------------------------------------------- attrs


def test_apparmor_profile_goes_to_the_apparmor_directory(tmp_path, fake_proc):
    fd = fake_proc(apparmor_dir=True)
    lsm.apply_exec(fd, PROFILE, "")
    attr = tmp_path / "pid" / "attr"
    assert (attr / "apparmor" / "exec").read_text() == f"exec {PROFILE}"
    assert (attr / "exec").read_text() == ""


def test_apparmor_profile_on_an_old_kernel_goes_to_attr_exec(tmp_path, fake_proc):
    fd = fake_proc(apparmor_dir=False)
    lsm.apply_exec(fd, PROFILE, "")
    assert (tmp_path / "pid" / "attr" / "exec").read_text() == f"exec {PROFILE}"


def test_selinux_label_goes_to_attr_exec_and_keycreate(tmp_path, fake_proc):
    fd = fake_proc(apparmor_dir=True)
    lsm.apply_exec(fd, "", LABEL)
    lsm.set_key_label(fd, LABEL)
    attr = tmp_path / "pid" / "attr"
    assert (attr / "exec").read_text() == LABEL
    assert (attr / "keycreate").read_text() == LABEL
    assert (attr / "apparmor" / "exec").read_text() == ""


def test_nothing_asked_nothing_written(tmp_path, fake_proc):
    fd = fake_proc(apparmor_dir=True)
    lsm.apply_exec(fd, "", "")
    lsm.set_key_label(fd, "")
    attr = tmp_path / "pid" / "attr"
    assert [(attr / n).read_text() for n in ("exec", "keycreate")] == ["", ""]


def test_a_rejected_write_is_one_error(tmp_path, fake_proc):
    fd = fake_proc(apparmor_dir=False)
    (tmp_path / "pid" / "attr" / "exec").unlink()
    (tmp_path / "pid" / "attr" / "exec").mkdir()  # EISDIR, as the kernel's EINVAL
    with pytest.raises(PyrtError) as e:
        lsm.apply_exec(fd, "", LABEL)
    assert str(e.value).startswith(f"selinux label {LABEL}: attr/exec: ")


# --------------------------------------------------------------------------- mounts


@pytest.mark.parametrize("fstype,data,want", [
    ("tmpfs", "mode=755", f'mode=755,context="{LABEL}"'),
    ("tmpfs", None, f'context="{LABEL}"'),
    ("devpts", "newinstance", f'newinstance,context="{LABEL}"'),
    ("proc", None, None),
    ("sysfs", "ro", "ro"),
    ("mqueue", None, None),
    ("cgroup", None, None),
])
def test_mount_data_only_for_the_types_runc_labels(fstype, data, want):
    assert lsm.mount_data(data, fstype, LABEL) == want


def test_no_label_no_change():
    assert lsm.mount_data("mode=755", "tmpfs", "") == "mode=755"


def _plan(doc: dict[str, object], label: str) -> mounts.MountPlan:
    return mounts.MountPlan(config._mount(doc, "/mounts/0"), "/bundle", "/mounts/0", label)


def test_mount_plans_carry_the_label(tmp_path):
    tmpfs = _plan({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "size=64k"]}, LABEL)
    assert tmpfs.data == f'size=64k,context="{LABEL}"'
    bind = _plan({"destination": "/vol", "type": "bind", "source": str(tmp_path),
                  "options": ["rbind"]}, LABEL)
    assert bind.data is None
    assert _plan({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}, "").data is None
