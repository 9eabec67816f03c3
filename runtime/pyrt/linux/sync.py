"""The parent <-> init channel: a SOCK_SEQPACKET socketpair carrying small JSON messages.

Each message is one dict with a "type"; an init that fails sends {"type": "error",
"what": ..., "why": ...} and exits, and the parent raises it as a PyrtError.
A message may carry one fd (the pty master) with SCM_RIGHTS.
"""

from __future__ import annotations

import _socket
import os

from pyrt import jsonio
from pyrt.errors import PyrtError, oserror

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_MAX = 1 << 16


class Channel:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, msg_type: str, fd: int = -1, **fields: Any) -> None:
        """Send one message; if the peer has gone, raise the error it left behind."""
        data = jsonio.dumps({"type": msg_type, **fields}, compact=True).encode()
        try:
            if fd >= 0:
                anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, "little"))]
                self.sock.sendmsg([data], anc)
            else:
                self.sock.send(data)
        except (BrokenPipeError, ConnectionResetError):
            self.recv(f"sent {msg_type!r}")
            raise

    def fail(self, what: str, error: BaseException) -> NoReturn:
        """In a forked child: report `error` to the parent as one message, and exit."""
        err = error if isinstance(error, PyrtError) else (
            oserror(what, error) if isinstance(error, OSError)
            else PyrtError(what, f"{type(error).__name__}: {error}"))
        try:
            self.send("error", what=err.what, why=err.why)
        finally:
            os._exit(1)

    def recv(self, expect: str | tuple[str, ...]) -> dict[str, Any]:
        """Receive one message of the type (or one of the types) expected; raise on an
        error message, EOF, or anything else."""
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4))
        except ConnectionResetError:
            # the peer exited with a message of ours unread: the kernel reports that
            # once, and what the peer sent before it left is still queued
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4))
        if not data:
            raise PyrtError("container init", f"exited before it was {expect}")
        msg: dict[str, Any] = jsonio.loads(data.decode())
        for level, kind, payload in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                msg["fd"] = int.from_bytes(payload[:4], "little")
        if msg["type"] == "error":
            raise PyrtError(msg["what"], msg["why"])
        if msg["type"] != expect and msg["type"] not in expect:
            raise PyrtError("container init", f"sent {msg['type']!r} while {expect!r} was due")
        return msg
