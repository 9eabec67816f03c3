"""`tmpcopyup`: fill a fresh tmpfs with what the directory it covers held (as runc).

The covered directory is read through a descriptor opened before the tmpfs was
mounted over it, so no temporary mount point is needed. Entries are copied with
their type, mode, owner and times; nothing is followed out of either tree.
"""

from __future__ import annotations

import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src_fd: int, dst_fd: int) -> None:
    """Copy every entry of the directory src_fd into the (empty) directory dst_fd."""
    for entry in os.scandir(src_fd):
        name = entry.name
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            sub_src = os.open(name, _DIR, dir_fd=src_fd)
            try:
                sub_dst = os.open(name, _DIR, dir_fd=dst_fd)
                try:
                    copy_tree(sub_src, sub_dst)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(mode):
            _copy_file(src_fd, dst_fd, name, st.st_size)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        else:  # fifo, socket, device node
            os.mknod(name, mode, st.st_rdev, dir_fd=dst_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_fd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd,
                 follow_symlinks=False)


def _copy_file(src_fd: int, dst_fd: int, name: str, size: int) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600,
                      dir_fd=dst_fd)
        try:
            left = size
            while left > 0:
                n = os.sendfile(dst, src, None, left)
                if n == 0:
                    break
                left -= n
        finally:
            os.close(dst)
    finally:
        os.close(src)
