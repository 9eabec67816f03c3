"""What the container must not reach of the host: the caller's fds and its cwd."""

from __future__ import annotations

import os
import subprocess

from rthelpers import describe

OPEN_FDS = "for fd in $(seq 3 64); do [ -e /proc/$$/fd/$fd ] && echo $fd; done; true"


def test_no_fd_leaks_from_the_caller(rt, make_bundle, tmp_path):
    """Inheritable fds of the caller (not passed with --preserve-fds) stay outside."""
    b = make_bundle(("sh", "-c", OPEN_FDS))
    secret = tmp_path / "host-secret"
    secret.write_text("host")
    with open(secret) as f:
        os.set_inheritable(f.fileno(), True)
        res = subprocess.run(rt.argv("run", "--bundle", str(b.path), b.id),
                             capture_output=True, text=True, timeout=20,
                             close_fds=False)
    assert res.returncode == 0, describe(res)
    assert res.stdout.split() == [], "fds leaked into the container" + describe(res)


def test_cwd_is_inside_the_container(run_sh):
    res = run_sh("cd /tmp && cd / && readlink /proc/$$/cwd; ls /proc/$$/cwd/..",
                 lambda b: b.config["process"].__setitem__("cwd", "/tmp"))
    lines = res.stdout.split()
    assert res.returncode == 0 and lines[0] == "/", describe(res)
    assert "bin" in lines and "proc" in lines, describe(res)


def test_initial_cwd_is_the_configured_one(run_sh):
    res = run_sh("readlink /proc/$$/cwd",
                 lambda b: b.config["process"].__setitem__("cwd", "/etc"))
    assert res.returncode == 0 and res.stdout.strip() == "/etc", describe(res)
