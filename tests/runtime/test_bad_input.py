"""Bad input: exit status 1, a message on stderr, nothing left behind (CALLERS 3.3)."""

from __future__ import annotations

import os

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe


def refused(rt, b, res, msg_has=None, cid=None):
    cid = cid or b.id
    assert_fails(res, 1, msg_has)
    assert cid not in rt.list_ids(), "refused container is listed:" + describe(res)
    assert_fails(rt("state", cid), 1, "does not exist")
    h.reap_zombies()
    h.assert_no_leftovers(cid, rt.root, b.cgroup_path, b.path)
    return res


def test_missing_bundle_dir(rt, bundle, tmp_path):
    res = rt("create", "--bundle", str(tmp_path / "no-such-bundle"), bundle.id)
    refused(rt, bundle, res)


def test_config_missing(rt, bundle):
    os.unlink(bundle.config_path)
    refused(rt, bundle, rt.create(bundle), "config.json")


@pytest.mark.parametrize("text", ["{not json", "", "[]", '"a string"', '{"ociVersion": "1.0.2"'])
def test_invalid_json(rt, bundle, text):
    bundle.config_path.write_text(text)
    refused(rt, bundle, rt.create(bundle))


def test_root_path_missing(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["root"]["path"] = "no-such-rootfs"
    b.write()
    refused(rt, b, rt.create(b))


def test_root_path_is_a_file(rt, make_bundle):
    b = make_bundle(write=False)
    (b.path / "afile").write_text("x")
    b.config["root"]["path"] = "afile"
    b.write()
    refused(rt, b, rt.create(b))


def test_duplicate_id(rt, make_bundle):
    a = make_bundle()
    assert_ok(rt.create(a))
    before = rt.state(a.id)
    other = make_bundle(cid=a.id)  # same id, different bundle and cgroup
    res = assert_fails(rt.create(other), 1)
    after = rt.state(a.id)
    assert after == before, "the first container changed:" + describe(res)
    assert h.pid_alive(before["pid"])
    assert rt.list_ids() == [a.id]
    assert not h.cgroup_dirs(other.cgroup_path), "failed create left a cgroup"
    assert_ok(rt.start(a.id))
    assert rt.status(a.id) == "running"


@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "../escape", "", "with space", "x/../y"])
def test_bad_container_id(rt, bundle, tmp_path, bad_id):
    before = set(os.listdir(tmp_path))
    res = rt("create", "--bundle", str(bundle.path), bad_id)
    assert_fails(res, 1)
    assert set(os.listdir(tmp_path)) <= before | {"root"}, "something was created outside --root"
    if rt.root.exists():
        assert os.listdir(rt.root) == [], f"state left in root: {os.listdir(rt.root)}"
    assert rt.list_ids() == []
    h.reap_zombies()
    # (the root listing above covers the state dir; the id itself is not a path)
    h.assert_no_leftovers("placeholder-id", rt.root, bundle.cgroup_path, bundle.path)


@pytest.mark.parametrize("cmd", ["state", "start", "kill", "delete"])
@pytest.mark.parametrize("bad_id", ["../x", "a/b"])
def test_bad_id_other_commands(rt, cmd, bad_id):
    assert_fails(rt(cmd, bad_id), 1)


def test_args0_missing_binary(rt, make_bundle):
    b = make_bundle(("no-such-binary", "arg"))
    res = refused(rt, b, rt.create(b))
    # podman maps these phrases to exit 127 (CALLERS 2.5).
    low = res.stderr.lower()
    assert "executable file not found" in low or "no such file or directory" in low, describe(res)


def test_args0_missing_absolute(rt, make_bundle):
    b = make_bundle(("/bin/no-such-binary",))
    res = refused(rt, b, rt.create(b))
    low = res.stderr.lower()
    assert "no such file or directory" in low or "not found" in low, describe(res)


@pytest.mark.parametrize("target", ["/etc/passwd", "/tmp"])
def test_args0_not_executable(rt, make_bundle, target):
    b = make_bundle((target,))
    res = refused(rt, b, rt.create(b))
    assert "permission denied" in res.stderr.lower(), describe(res)  # podman: exit 126


def test_run_missing_binary(rt, make_bundle):
    b = make_bundle(("no-such-binary",))
    res = rt.run(b)
    refused(rt, b, res)


@pytest.mark.parametrize("args", [None, []])
def test_args_missing_or_empty(rt, make_bundle, args):
    b = make_bundle(write=False)
    if args is None:
        del b.config["process"]["args"]
    else:
        b.config["process"]["args"] = args
    b.write()
    refused(rt, b, rt.create(b))


def test_relative_cwd(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["cwd"] = "relative/dir"
    b.write()
    refused(rt, b, rt.create(b))


def test_terminal_without_console_socket(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["terminal"] = True
    b.write()
    refused(rt, b, rt.create(b))


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2", "1.2.0"])
def test_oci_versions_accepted(rt, make_bundle, version):
    b = make_bundle(write=False)
    b.config["ociVersion"] = version
    b.write()
    assert_ok(rt.create(b))
    assert rt.status(b.id) == "created"


def test_failed_create_runs_nothing(rt, make_bundle, tmp_path):
    """A create that fails late (bad args[0]) must not leave the process around."""
    b = make_bundle(("no-such-binary",))
    refused(rt, b, rt.create(b, "--pid-file", str(tmp_path / "p.pid")))
