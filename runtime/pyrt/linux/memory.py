"""Keeping the runtime's own memory out of the container's memory cgroup.

A forked init shares its pages with `pyrt create` copy-on-write. Each page it writes once
inside the container's memory cgroup is copied and charged there, so a Python init would
need a few hundred KiB of the container's limit for the runtime's own objects. So
`pyrt create`, right after the fork, copies every anonymous page it still shares: its
copies are charged to the caller, as the runtime's memory should be, and the init's pages
become its own, written in place from then on. That runs on the other CPU while the init
sets up, and the init joins memory only after it; what the init charges there is only
what it newly allocates.
"""

from __future__ import annotations

import os
import sys

from pyrt.linux import syscalls as sc

PAGE = os.sysconf("SC_PAGE_SIZE")
# /proc/self/pagemap: one 64-bit entry per page, its flags in the top byte: present
# (bit 63), a file's page (bit 61) and mapped by this process alone (bit 56). We copy an
# anonymous page that is present and not exclusive. A file's page (of a private mapping
# never written, such as part of python's .data) is left: the init's write would copy it
# whatever we do. _SHARED maps each top byte to 1 for a page to copy, else 0.
_TOP_BYTE = 7 if sys.byteorder == "little" else 0
_SHARED = bytes(1 if top & 0xA1 == 0x80 else 0 for top in range(256))


def _private_writable() -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields[1].startswith("rw") and fields[1][3] == "p":
                start, end = fields[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


def unshare_pages() -> int:
    """Copy every anonymous page this process still shares (with the init it forked);
    returns how many pages.

    Nothing is copied where /proc/self/pagemap is closed to us (a non-dumpable process
    of an unprivileged user: the file is then host root's)."""
    copied = 0
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        return 0
    try:
        for start, end in _private_writable():
            pagemap = os.pread(fd, (end - start) // PAGE * 8, start // PAGE * 8)
            for first, stop in _shared_runs(pagemap):
                copied += _populate(start, first, stop)
    finally:
        os.close(fd)
    return copied


def _shared_runs(pagemap: bytes) -> list[tuple[int, int]]:
    """(first, stop) page indexes of each run of shared pages."""
    shared = pagemap[_TOP_BYTE::8].translate(_SHARED)
    runs = []
    first = shared.find(1)
    while first >= 0:
        stop = shared.find(0, first)
        if stop < 0:
            stop = len(shared)
        runs.append((first, stop))
        first = shared.find(1, stop)
    return runs


def _populate(base: int, first: int, stop: int) -> int:
    try:
        sc.madvise(base + first * PAGE, (stop - first) * PAGE, sc.MADV_POPULATE_WRITE)
    except OSError:  # a kernel without MADV_POPULATE_WRITE (< 5.14): nothing to do then
        return 0
    return stop - first
