"""linux/memory.py: finding the pages still shared with a forked child, and copying them
(on this machine's kernel, through /proc/self/pagemap and MADV_POPULATE_WRITE)."""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import struct
from collections.abc import Callable
from pathlib import Path

from pyrt.linux import memory

PRESENT = 1 << 63
FILE = 1 << 61
EXCLUSIVE = 1 << 56


def pagemap(*entries: int) -> bytes:
    return struct.pack(f"={len(entries)}Q", *entries)


def test_shared_runs() -> None:
    shared, own, absent = PRESENT | 0x1234, PRESENT | EXCLUSIVE | 0x1234, 0
    assert memory._shared_runs(b"") == []
    assert memory._shared_runs(pagemap(own, absent, EXCLUSIVE)) == []
    assert memory._shared_runs(pagemap(shared, shared, own, absent, shared)) == [(0, 2), (4, 5)]
    assert memory._shared_runs(pagemap(absent, shared, shared, shared)) == [(1, 4)]
    file_page = PRESENT | FILE | 0x1234  # the init's write copies it whatever we do
    assert memory._shared_runs(pagemap(shared, file_page, shared)) == [(0, 1), (2, 3)]


def _entries(address: int, pages: int) -> tuple[int, ...]:
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        data = os.pread(fd, pages * 8, address // mmap.PAGESIZE * 8)
    finally:
        os.close(fd)
    return struct.unpack(f"={pages}Q", data)


def _exclusive(address: int, pages: int) -> list[bool]:
    return [bool(e & PRESENT and e & EXCLUSIVE) for e in _entries(address, pages)]


def _forked(test: Callable[[], None]) -> None:
    """Run test() while a forked child holds its copy-on-write view of our pages."""
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(hold_w)
        os.read(hold_r, 1)
        os._exit(0)
    os.close(hold_r)
    try:
        test()
    finally:
        os.close(hold_w)
        os.waitpid(pid, 0)


def test_unshare_pages_copies_what_a_child_shares() -> None:
    pages = 64
    area = mmap.mmap(-1, pages * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf = ctypes.c_char.from_buffer(area)
    try:
        address = ctypes.addressof(buf)
        for i in range(pages):
            area[i * mmap.PAGESIZE] = 1
        assert all(_exclusive(address, pages))

        def test() -> None:
            assert not any(_exclusive(address, pages))
            assert memory.unshare_pages() >= pages
            assert all(_exclusive(address, pages))
            assert memory.unshare_pages() == 0  # nothing is shared any more

        _forked(test)
    finally:
        del buf
        area.close()


def test_unshare_pages_leaves_a_private_file_mapping_unwritten(tmp_path: Path) -> None:
    """A page read from a private file mapping stays the file's page: copying it would not
    spare the child a copy of its own."""
    pages = 16
    path = tmp_path / "data"
    path.write_bytes(b"x" * (pages + 1) * mmap.PAGESIZE)
    with open(path, "rb") as f:
        area = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE,
                         prot=mmap.PROT_READ | mmap.PROT_WRITE)
    buf = ctypes.c_char.from_buffer(area)
    try:
        address = ctypes.addressof(buf)
        # one page written (so the fork copies this mapping's page table, as it does for
        # python's .data), the others only read: the child shares them with us
        area[pages * mmap.PAGESIZE] = ord("y")
        assert sum(area[i * mmap.PAGESIZE] for i in range(pages)) == pages * ord("x")

        def test() -> None:
            assert all(e & PRESENT and e & FILE and not e & EXCLUSIVE
                       for e in _entries(address, pages))
            memory.unshare_pages()
            assert all(e & PRESENT and e & FILE for e in _entries(address, pages))

        _forked(test)
    finally:
        del buf
        area.close()


def test_fork_holds_the_child_until_every_write_end_is_closed() -> None:
    """syscalls.fork(hold=...): the child waits in the shim, before the interpreter runs
    again (so it copies none of the pages it shares with us), until no one holds the
    pipe's write end: the init's child waits so for the init to exit (init.py)."""
    from pyrt.linux import syscalls as sc

    hold_r, hold_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = sc.fork(hold=(hold_r, hold_w))
    if pid == 0:
        try:
            os.write(out_w, b"ran")
        finally:
            os._exit(0)
    os.close(hold_r)
    os.close(out_w)
    try:
        assert not select.select([out_r], [], [], 0.5)[0]
        with open(f"/proc/{pid}/syscall") as f:
            assert f.read().split()[0] == "0"  # read(2) on x86_64, on the hold pipe
        os.close(hold_w)  # as the init's exit closes its copy
        hold_w = -1
        assert os.read(out_r, 8) == b"ran"
    finally:
        if hold_w >= 0:
            os.close(hold_w)
        os.close(out_r)
        os.waitpid(pid, 0)
