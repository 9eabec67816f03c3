"""process.terminal: a pty from the container's own devpts, its master handed to the caller."""

from __future__ import annotations

import _socket
import os
import stat

from pyrt.errors import PyrtError, oserror
from pyrt.linux import syscalls as sc

TIOCSWINSZ = 0x5414
TIOCGPTPEER = 0x5441
PTY_SLAVE_MAJORS = range(136, 144)  # Unix98 pty slaves


def open_pty(size: dict[str, int] | None) -> tuple[int, int, str]:
    """In the container (after pivot_root): a new pty master, its slave already open,
    and the slave's path.

    The slave is taken from the master (TIOCGPTPEER), not opened by name: whoever
    controls /dev (a volume bound there) could make /dev/pts/N a symlink to anything,
    which would then be bound over /dev/console (CVE-2025-52565). Where the kernel
    cannot, the name is opened without following a symlink and checked to be the
    master's slave device.
    """
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        sc.ioctl_int(master, sc.TIOCSPTLCK, 0)
        number = sc.ioctl_int(master, sc.TIOCGPTN)
        name = f"/dev/pts/{number}"
        slave = _open_slave(master, name, number)
    except OSError as e:
        raise oserror("terminal", e) from None
    if size:
        set_size(master, size.get("height", 0), size.get("width", 0))
    return master, slave, name


def _open_slave(master: int, name: str, number: int) -> int:
    import fcntl

    flags = os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC
    try:
        return int(fcntl.ioctl(master, TIOCGPTPEER, flags))
    except OSError:
        pass  # before Linux 4.13, or the master is not from a devpts next to /dev/pts
    slave = os.open(name, flags | os.O_NOFOLLOW)
    rdev = os.fstat(slave).st_rdev
    major = os.major(rdev)
    if not stat.S_ISCHR(os.fstat(slave).st_mode) or major not in PTY_SLAVE_MAJORS or \
            (major - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(rdev) != number:
        os.close(slave)
        raise PyrtError("terminal", f"{name} is not the slave of the pty opened")
    return slave


def set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct

    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def become_session_leader(slave: int) -> None:
    """setsid, make the slave (an fd from open_pty, closed here) our controlling
    terminal, and put it on fds 0-2."""
    try:
        os.setsid()
        sc.ioctl_int(slave, sc.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
    except OSError as e:
        raise oserror("terminal", e) from None


def send_to_socket(socket_path: str, master: int, name: str) -> None:
    """One sendmsg on a SOCK_STREAM connection: the pty name, and the master fd."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, "little"))]
        sock.sendmsg([name.encode()], anc)
    except OSError as e:
        raise oserror(f"console socket {socket_path}", e) from None
    finally:
        sock.close()


def relay(master: int, done: object) -> None:
    """Copy between our stdio and the pty until the pty closes (foreground `run -t`).

    `done` is a callable telling whether the container has exited.
    """
    import select
    import termios
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        try:
            rows, cols = os.get_terminal_size(0)
            set_size(master, rows, cols)
        except OSError:
            pass
    try:
        fds = [master, 0]
        while True:
            try:
                ready, _, _ = select.select(fds, [], [], 0.2)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
            if callable(done) and done() and master not in ready:
                return
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def check(terminal: bool, console_socket: str, detach: bool) -> None:
    """runc's rules for --console-socket versus process.terminal."""
    if console_socket and not terminal:
        raise PyrtError("--console-socket", "needs process.terminal to be true")
    if console_socket and not detach:
        raise PyrtError("--console-socket", "only works when detached")
    if terminal and detach and not console_socket:
        raise PyrtError("process.terminal",
                        "cannot allocate a tty when detached without --console-socket")
