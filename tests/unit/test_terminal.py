"""linux/terminal.py: the pty slave is taken from the master, or opened by name only
when it is that master's slave (a symlink planted at /dev/pts/N is refused)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrt.errors import PyrtError
from pyrt.linux import syscalls as sc
from pyrt.linux import terminal


@pytest.fixture
def pty():
    """(master fd, slave number) of a fresh pty of this host."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        pytest.skip(f"no /dev/ptmx here: {e}")
    sc.ioctl_int(master, sc.TIOCSPTLCK, 0)
    yield master, sc.ioctl_int(master, sc.TIOCGPTN)
    os.close(master)


def _same_tty(a: int, b: int) -> bool:
    return os.fstat(a).st_rdev == os.fstat(b).st_rdev


def test_slave_from_the_master(pty):
    master, number = pty
    slave = terminal._open_slave(master, "/nonexistent", number)  # the name is not used
    try:
        assert os.isatty(slave)
        by_name = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
        assert _same_tty(slave, by_name)
        os.close(by_name)
    finally:
        os.close(slave)


def test_by_name_when_the_kernel_cannot(pty, monkeypatch):
    master, number = pty
    monkeypatch.setattr(terminal, "TIOCGPTPEER", 0)  # ENOTTY, as before Linux 4.13
    slave = terminal._open_slave(master, f"/dev/pts/{number}", number)
    assert os.isatty(slave)
    os.close(slave)


def test_by_name_refuses_a_symlink_or_another_device(pty, monkeypatch, tmp_path: Path):
    master, number = pty
    monkeypatch.setattr(terminal, "TIOCGPTPEER", 0)
    link = tmp_path / str(number)
    link.symlink_to(f"/dev/pts/{number}")
    with pytest.raises(OSError):  # ELOOP: never followed
        terminal._open_slave(master, str(link), number)
    with pytest.raises(PyrtError):
        terminal._open_slave(master, "/dev/null", number)
