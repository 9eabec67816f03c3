"""linux/memory.py: finding the pages still shared with a forked child, and copying them
(on this machine's kernel, through /proc/self/pagemap and MADV_POPULATE_WRITE)."""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

from pyrt.linux import memory

PRESENT = 1 << 63
EXCLUSIVE = 1 << 56


def pagemap(*entries: int) -> bytes:
    return struct.pack(f"={len(entries)}Q", *entries)


def test_shared_runs() -> None:
    shared, own, absent = PRESENT | 0x1234, PRESENT | EXCLUSIVE | 0x1234, 0
    assert memory._shared_runs(b"") == []
    assert memory._shared_runs(pagemap(own, absent, EXCLUSIVE)) == []
    assert memory._shared_runs(pagemap(shared, shared, own, absent, shared)) == [(0, 2), (4, 5)]
    assert memory._shared_runs(pagemap(absent, shared, shared, shared)) == [(1, 4)]


def _exclusive(address: int, pages: int) -> list[bool]:
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        data = os.pread(fd, pages * 8, address // mmap.PAGESIZE * 8)
    finally:
        os.close(fd)
    return [bool(e & PRESENT and e & EXCLUSIVE) for e in struct.unpack(f"={pages}Q", data)]


def test_unshare_pages_copies_what_a_child_shares() -> None:
    pages = 64
    area = mmap.mmap(-1, pages * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf = ctypes.c_char.from_buffer(area)
    try:
        address = ctypes.addressof(buf)
        for i in range(pages):
            area[i * mmap.PAGESIZE] = 1
        assert all(_exclusive(address, pages))
        hold_r, hold_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # holds its copy-on-write view of our pages until we are done
            os.close(hold_w)
            os.read(hold_r, 1)
            os._exit(0)
        os.close(hold_r)
        try:
            assert not any(_exclusive(address, pages))
            assert memory.unshare_pages() >= pages
            assert all(_exclusive(address, pages))
            assert memory.unshare_pages() == 0  # nothing is shared any more
        finally:
            os.close(hold_w)
            os.waitpid(pid, 0)
    finally:
        del buf
        area.close()
