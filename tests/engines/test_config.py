"""podman and docker: what ``run`` flags put in config.json reaches the process.

env, workdir, --user, --hostname, --read-only, bind mounts rw/ro, --tmpfs; each with
pyrt and with runc as the runtime.
"""

from __future__ import annotations

from pathlib import Path

import ehelpers as eh
from edrivers import Engine
from eimage import IMAGE, TESTER_GID, TESTER_UID


def test_env_workdir_user_hostname(eng: Engine) -> None:
    res = eng.run("--rm", "--env", "FOO=bar baz", "--workdir", "/home/tester",
                  "--user", f"{TESTER_UID}:{TESTER_GID}", "--hostname", "engine-host",
                  IMAGE, "sh", "-c", 'echo "$FOO"; pwd; id -u; id -g; hostname; echo "$PATH"')
    eh.ok(res)
    foo, cwd, uid, gid, host, path = res.stdout.splitlines()
    assert (foo, cwd, uid, gid, host) == ("bar baz", "/home/tester", str(TESTER_UID),
                                         str(TESTER_GID), "engine-host")
    assert "/bin" in path.split(":")


def test_user_by_name(eng: Engine) -> None:
    res = eng.run("--rm", "--user", "tester", IMAGE, "sh", "-c", "id -un; id -u; echo $HOME")
    eh.ok(res)
    assert res.stdout.splitlines() == ["tester", str(TESTER_UID), "/home/tester"]


def test_read_only_rootfs(eng: Engine) -> None:
    res = eng.run("--rm", "--read-only", IMAGE, "sh", "-c",
                  "touch /etc/x 2>&1; echo rc=$?; grep ' / ' /proc/mounts | head -1")
    eh.ok(res)
    lines = res.stdout.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1] == "rc=1"
    assert " ro," in lines[2] or " ro " in lines[2], lines[2]


def test_bind_mounts_rw_and_ro(eng: Engine, tmp_path: Path) -> None:
    rw = tmp_path / "rw"
    ro = tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given").write_text("from the host\n")
    res = eng.run("--rm", "--volume", f"{rw}:/rw", "--volume", f"{ro}:/ro:ro", IMAGE,
                  "sh", "-c", "echo written > /rw/out; cat /ro/given; "
                  "touch /ro/nope 2>&1; echo rc=$?")
    eh.ok(res)
    assert (rw / "out").read_text() == "written\n"
    lines = res.stdout.splitlines()
    assert lines[0] == "from the host"
    assert "Read-only file system" in lines[1]
    assert lines[2] == "rc=1"
    assert not (ro / "nope").exists()


def test_tmpfs(eng: Engine) -> None:
    res = eng.run("--rm", "--tmpfs", "/scratch:rw,size=1m,mode=1770", IMAGE, "sh", "-c",
                  "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; "
                  "echo hi > /scratch/f && cat /scratch/f")
    eh.ok(res)
    mount, mode, content = res.stdout.splitlines()
    fields = mount.split()
    assert fields[2] == "tmpfs", mount
    assert "size=1024k" in fields[3], mount
    assert mode == "1770"
    assert content == "hi"
