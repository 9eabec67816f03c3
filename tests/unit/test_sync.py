"""The parent <-> init channel (linux/sync.py) on a real socketpair."""

from __future__ import annotations

import pytest

from pyrt.errors import PyrtError
from pyrt.linux.sync import Channel


def test_message_round_trip() -> None:
    parent, child = Channel.pair()
    child.send("pid", pid=42)
    assert parent.recv(("hooks", "pid")) == {"type": "pid", "pid": 42}
    parent.close()
    child.close()


def test_error_of_a_peer_that_left_our_message_unread() -> None:
    """The init may fail before it reads a "go" sent ahead of time; closing its end
    with that message unread makes the kernel report ECONNRESET once. Its error message,
    queued before, must still be what the parent raises."""
    parent, child = Channel.pair()
    parent.send("go")
    child.send("error", what="mount /proc", why="refused")
    child.close()
    with pytest.raises(PyrtError) as e:
        parent.recv("ready")
    assert (e.value.what, e.value.why) == ("mount /proc", "refused")
    parent.close()


def test_peer_gone_without_a_word() -> None:
    parent, child = Channel.pair()
    parent.send("go")
    child.close()
    with pytest.raises(PyrtError, match="exited before it was ready"):
        parent.recv("ready")
    parent.close()


def test_unexpected_message() -> None:
    parent, child = Channel.pair()
    child.send("ready")
    with pytest.raises(PyrtError, match="sent 'ready' while 'pid' was due"):
        parent.recv("pid")
    parent.close()
    child.close()
