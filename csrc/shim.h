/* pyrt's C shim: thin wrappers over the syscalls Python's os module lacks.
 * Every function returns its result (>= 0) or -errno; the logic lives in Python. */
int pyrt_unshare(int flags);
int pyrt_setns(int fd, int nstype);
int pyrt_ns_type(int fd);
int pyrt_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data);
int pyrt_umount2(const char *target, int flags);
int pyrt_pivot_root(const char *new_root, const char *put_old);
int pyrt_sethostname(const char *name, size_t len);
int pyrt_setdomainname(const char *name, size_t len);
int pyrt_openat2(int dirfd, const char *path, unsigned long long flags,
                 unsigned long long mode, unsigned long long resolve);
int pyrt_prctl(int option, unsigned long arg2, unsigned long arg3,
               unsigned long arg4, unsigned long arg5);
int pyrt_join_session_keyring(const char *name);
int pyrt_ioctl_int(int fd, unsigned long request, int *value);
int pyrt_bpf(int cmd, void *attr, unsigned int size);
int pyrt_madvise(unsigned long addr, unsigned long len, int advice);
int pyrt_open_tree(int dirfd, const char *path, unsigned int flags);
int pyrt_mount_setattr(int dirfd, const char *path, unsigned int flags,
                       unsigned long long attr_set, unsigned long long attr_clr,
                       unsigned long long propagation, int userns_fd);
int pyrt_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                    unsigned int flags);
/* fork.c: os.fork() by clone3; 0 in the child, its pid in the parent, or -errno.
 * With cgroup_fd >= 0 the child is born in the cgroup2 cgroup open there
 * (CLONE_INTO_CGROUP). With a pipe's ends in hold_fd and release_fd (else -1), the child
 * closes release_fd and waits for EOF on hold_fd (every other copy of the write end is
 * closed: released, or its holder has exited) before the interpreter runs again: until
 * then it writes nothing but its stack, so it copies (and a memory cgroup charges it)
 * a page or two at most. */
int pyrt_fork(int cgroup_fd, int hold_fd, int release_fd);
