/* See shim.h. Kept deliberately tiny: each wrapper is one syscall. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>

#include "shim.h"

static int ret(long r) { return r < 0 ? -errno : (int)r; }

int pyrt_unshare(int flags) { return ret(unshare(flags)); }

int pyrt_setns(int fd, int nstype) { return ret(setns(fd, nstype)); }

int pyrt_ns_type(int fd) { return ret(ioctl(fd, NS_GET_NSTYPE)); }

int pyrt_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data)
{
    return ret(mount(source, target, fstype, flags, data));
}

int pyrt_umount2(const char *target, int flags) { return ret(umount2(target, flags)); }

int pyrt_pivot_root(const char *new_root, const char *put_old)
{
    return ret(syscall(SYS_pivot_root, new_root, put_old));
}

int pyrt_sethostname(const char *name, size_t len) { return ret(sethostname(name, len)); }

int pyrt_setdomainname(const char *name, size_t len) { return ret(setdomainname(name, len)); }

int pyrt_openat2(int dirfd, const char *path, unsigned long long flags,
                 unsigned long long mode, unsigned long long resolve)
{
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    return ret(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

int pyrt_prctl(int option, unsigned long arg2, unsigned long arg3,
               unsigned long arg4, unsigned long arg5)
{
    return ret(prctl(option, arg2, arg3, arg4, arg5));
}

int pyrt_join_session_keyring(const char *name)
{
    return ret(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name));
}

int pyrt_ioctl_int(int fd, unsigned long request, int *value)
{
    return ret(ioctl(fd, request, value));
}

int pyrt_bpf(int cmd, void *attr, unsigned int size)
{
    return ret(syscall(SYS_bpf, cmd, attr, size));
}

int pyrt_madvise(unsigned long addr, unsigned long len, int advice)
{
    return ret(madvise((void *)addr, len, advice));
}

int pyrt_open_tree(int dirfd, const char *path, unsigned int flags)
{
    return ret(syscall(SYS_open_tree, dirfd, path, flags));
}

int pyrt_mount_setattr(int dirfd, const char *path, unsigned int flags,
                       unsigned long long attr_set, unsigned long long attr_clr,
                       unsigned long long propagation, int userns_fd)
{
    struct mount_attr attr = { .attr_set = attr_set, .attr_clr = attr_clr,
                               .propagation = propagation, .userns_fd = userns_fd };
    return ret(syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr)));
}

int pyrt_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                    unsigned int flags)
{
    return ret(syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags));
}
