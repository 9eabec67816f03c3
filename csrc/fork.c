/* os.fork() by clone3, into a cgroup2 cgroup and held: see shim.h. The one function
 * here that works with the interpreter: it takes the same steps around the fork as
 * CPython's os.fork(). */
#include <Python.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

/* struct clone_args of <linux/sched.h>, up to `cgroup` (CLONE_ARGS_SIZE_VER2) */
struct pyrt_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};
#define PYRT_CLONE_INTO_CGROUP 0x200000000ULL

int pyrt_fork(int cgroup_fd, int hold_fd, int release_fd)
{
    struct pyrt_clone_args args = { .exit_signal = SIGCHLD };
    if (cgroup_fd >= 0) {
        args.flags = PYRT_CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    /* cffi calls us without the GIL; the interpreter's fork hooks need it */
    PyGILState_STATE gil = PyGILState_Ensure();
    PyOS_BeforeFork();
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    int err = errno;
    if (pid == 0) {
        if (hold_fd >= 0) {  /* see shim.h: nothing written yet but the stack */
            char byte;
            close(release_fd);
            while (read(hold_fd, &byte, 1) < 0 && errno == EINTR)
                ;
        }
        PyOS_AfterFork_Child();
    } else {
        PyOS_AfterFork_Parent();
    }
    PyGILState_Release(gil);
    return pid < 0 ? -err : (int)pid;
}
