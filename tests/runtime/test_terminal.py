"""process.terminal with --console-socket (CALLERS.md 2.4, 2.7): the runtime connects
during create and sends exactly one SCM_RIGHTS message carrying the pty master."""

from __future__ import annotations

import os

import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe, read_until, recv_master


def test_console_socket_create_start(rt, make_bundle, console_socket):
    srv, path = console_socket
    b = make_bundle(("sh", "-c", "tty; test -c /dev/console && echo console-ok; "
                     "read line; echo got:$line; sleep 100"), write=False)
    b.config["process"]["terminal"] = True
    b.write()
    assert_ok(rt.create(b, "--console-socket", path))
    _name, master = recv_master(srv)
    try:
        assert os.isatty(master), "received fd is not a terminal"
        assert rt.status(b.id) == "created"
        assert_ok(rt.start(b.id))
        out = read_until(master, b"console-ok")
        assert b"/dev/pts/0" in out, out
        os.write(master, b"hello-pty\n")
        read_until(master, b"got:hello-pty")
        assert rt.status(b.id) == "running"
    finally:
        os.close(master)


def test_console_socket_run_detached(rt, make_bundle, console_socket):
    srv, path = console_socket
    b = make_bundle(("sh", "-c", "echo detached-tty-ok; sleep 100"), write=False)
    b.config["process"]["terminal"] = True
    b.write()
    assert_ok(rt.run(b, "-d", "--console-socket", path))
    _, master = recv_master(srv)
    try:
        read_until(master, b"detached-tty-ok")
        assert rt.status(b.id) == "running"
    finally:
        os.close(master)


def test_terminal_requires_console_socket(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["terminal"] = True
    b.write()
    res = assert_fails(rt.create(b), 1)
    assert b.id not in rt.list_ids(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_console_socket_missing_path(rt, make_bundle, tmp_path):
    b = make_bundle(write=False)
    b.config["process"]["terminal"] = True
    b.write()
    res = assert_fails(rt.create(b, "--console-socket", str(tmp_path / "nope.sock")), 1)
    assert b.id not in rt.list_ids(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
