/* See seccomp.cdef: the one wrapper that is not libseccomp's own. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

int pyrt_seccomp_set_filter(unsigned int flags, const void *insns, unsigned int count);

int pyrt_seccomp_set_filter(unsigned int flags, const void *insns, unsigned int count)
{
    struct sock_fprog prog = { .len = (unsigned short)count,
                               .filter = (struct sock_filter *)insns };
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, insns ? &prog : NULL);
    return r < 0 ? -errno : (int)r;
}
