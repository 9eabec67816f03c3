"""process.terminal with --console-socket (CALLERS.md 2.4, 2.7): the runtime connects
during create and sends exactly one SCM_RIGHTS message carrying the pty master."""

from __future__ import annotations

import array
import os
import select
import shutil
import socket
import tempfile
import time

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe


@pytest.fixture
def console_socket():
    d = tempfile.mkdtemp(prefix="pyrt-cs-", dir="/tmp")  # short path: sun_path <= 108
    path = os.path.join(d, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(15)
    yield srv, path
    srv.close()
    shutil.rmtree(d, ignore_errors=True)


def recv_master(srv: socket.socket) -> tuple[bytes, int]:
    """Accept (after create returned, like the containerd shim) and take one fd."""
    conn, _ = srv.accept()
    conn.settimeout(10)
    with conn:
        fds = array.array("i")
        msg, ancdata, flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
        assert not flags & socket.MSG_CTRUNC, "control data truncated"
        rights = [(lvl, typ, data) for lvl, typ, data in ancdata
                  if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS]
        assert len(ancdata) == 1 and len(rights) == 1, f"want one SCM_RIGHTS message: {ancdata}"
        fds.frombytes(rights[0][2][: len(rights[0][2]) - len(rights[0][2]) % fds.itemsize])
        assert len(fds) == 1, f"want exactly one fd, got {list(fds)}"
        assert msg, "the name payload must be non-empty on a SOCK_STREAM socket"
        assert len(msg) < 4096
        # Nothing else follows: the runtime closes its end.
        rest = conn.recv(4096)
        assert rest == b"", f"unexpected extra data on the console socket: {rest!r}"
        return msg, fds[0]


def read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"did not see {needle!r} on the pty; got {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: slave side closed
                break
            if not chunk:
                break
            buf += chunk
    assert needle in buf, f"did not see {needle!r} on the pty; got {buf!r}"
    return buf


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
