"""Build-time description of every libc function and raw syscall the project calls through cffi
(linux.syscalls wraps them; runtime.seccomp uses libseccomp directly).

Compiled once at install (API mode): at run time `linux._native` is a plain extension module, so
nothing parses C declarations on the container start path.
"""
import os

from cffi import FFI

ffibuilder = FFI()
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_child.c")) as f:
    EXEC_CHILD = f.read()

ffibuilder.cdef(
    """
    int mount(const char *source, const char *target, const char *filesystemtype,
              unsigned long mountflags, const void *data);
    int umount2(const char *target, int flags);
    long pyc_clone(unsigned long flags);
    long pyc_clone_into(unsigned long flags, int cgroup_fd);
    int unshare(int flags);
    int setns(int fd, int nstype);
    int pyc_pivot_root(const char *new_root, const char *put_old);
    int sethostname(const char *name, size_t len);
    int setdomainname(const char *name, size_t len);
    long pyc_join_session_keyring(const char *name);
    int pyc_prctl(int option, unsigned long arg2, unsigned long arg3);
    int pyc_send_fd(int sock, int fd, const char *name);

    /* Paths resolved and mounts made through descriptors (runtime.init.securejoin, mountfd) */
    int pyc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
    int pyc_open_tree(int dirfd, const char *path, unsigned int flags);
    int pyc_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                       unsigned int flags);
    int pyc_fsopen(const char *fs_name, unsigned int flags);
    int pyc_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
    int pyc_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
    int pyc_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set,
                          uint64_t attr_clr, uint64_t propagation);
    long pyc_fstatfs_type(int fd);
    int pyc_mount_id(int fd, uint64_t *mount_id);

    /* libseccomp, for runtime.seccomp (the config's linux.seccomp) */
    typedef void *scmp_filter_ctx;
    enum scmp_compare { SCMP_CMP_NE = 1, SCMP_CMP_LT = 2, SCMP_CMP_LE = 3, SCMP_CMP_EQ = 4,
                        SCMP_CMP_GE = 5, SCMP_CMP_GT = 6, SCMP_CMP_MASKED_EQ = 7 };
    enum scmp_filter_attr { SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_CTL_LOG,
                            SCMP_FLTATR_CTL_SSB, ... };
    struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; uint64_t datum_a;
                          uint64_t datum_b; };
    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    uint32_t seccomp_arch_resolve_name(const char *arch_name);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
    int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
    int seccomp_load(const scmp_filter_ctx ctx);
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
    /* A compiled program (struct sock_filter[len]) loaded with seccomp(2). */
    int pyc_seccomp_set_filter(const void *program, unsigned int len, unsigned int flags);

    /* An exec's process from a prepared plan (linux/exec_child.c) */
    struct pyc_exec {
        int stdio[3];
        int report_fd;
        int stub_fd;
        int pid_ns_fd;
        int cgroup_fd;
        const char *const *cgroup_files;
        const int *cgroup_required;
        const char *const *ns_kinds;
        const char *const *ns_paths;
        const char *const *ns_own;
        const int *ns_types;
        int userns;
        char **argv;
        char **envp;
        char *home;
        int home_size;
        const char *cwd;
        int nrlimits;
        const int *rlimit_kinds;
        const uint64_t *rlimit_values;
        uint32_t uid, gid;
        int ngroups;
        const uint32_t *groups;
        int umask;
        int has_caps;
        uint64_t bounding, effective, permitted, inheritable;
        int last_cap;
        const int *ambient;
        const char *const *ambient_names;
        int no_new_privs;
        const void *seccomp;
        int seccomp_len;
        unsigned int seccomp_flags;
    };
    long pyc_exec_spawn(const struct pyc_exec *plan);
    """
)

ffibuilder.set_source(
    "linux._native",
    r"""
    #define _GNU_SOURCE
    #include <sched.h>
    #include <signal.h>
    #include <stdint.h>
    #include <string.h>
    #include <seccomp.h>
    #include <sys/mount.h>
    #include <sys/prctl.h>
    #include <sys/vfs.h>
    #include <sys/socket.h>
    #include <sys/syscall.h>
    #include <unistd.h>

    /* Like fork(), but with namespace flags: every new namespace is created in one step, owned by
       a new user namespace when CLONE_NEWUSER is among the flags, and the child is PID 1 of a new
       PID namespace. No CLONE_VM, so the child continues in a copy of the interpreter. */
    static long pyc_clone(unsigned long flags) {
        return syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    }

    /* clone3 with CLONE_INTO_CGROUP: the child is born in the cgroup given by a directory
       descriptor of a cgroup v2 hierarchy, so nobody has to move it there afterwards (a move
       costs an RCU grace period). The struct is spelled out: <linux/sched.h>, which has it,
       clashes with glibc's <sched.h>. */
    struct pyc_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
                 set_tid, set_tid_size, cgroup;
    };
    #ifndef SYS_clone3
    #define SYS_clone3 435
    #endif
    static long pyc_clone_into(unsigned long flags, int cgroup_fd) {
        struct pyc_clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = flags | 0x200000000ULL;  /* CLONE_INTO_CGROUP */
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)cgroup_fd;
        return syscall(SYS_clone3, &args, sizeof(args));
    }

    /* glibc has no wrapper for pivot_root. */
    static int pyc_pivot_root(const char *new_root, const char *put_old) {
        return syscall(SYS_pivot_root, new_root, put_old);
    }

    /* KEYCTL_JOIN_SESSION_KEYRING: a fresh session keyring keeps the host's keys out of reach. */
    static long pyc_join_session_keyring(const char *name) {
        return syscall(SYS_keyctl, 1, name);
    }

    /* prctl with the three arguments the ambient capability calls need (prctl is variadic). */
    static int pyc_prctl(int option, unsigned long arg2, unsigned long arg3) {
        return prctl(option, arg2, arg3, 0, 0);
    }

    /* Sends one file descriptor with SCM_RIGHTS and `name` as the payload, the console-socket
       protocol runc's callers expect (the pty master and its name). */
    static int pyc_send_fd(int sock, int fd, const char *name) {
        char control[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
        struct msghdr msg = { 0 };
        struct cmsghdr *cmsg;
        memset(control, 0, sizeof(control));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
        return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
    }

    /* openat2(2): glibc has no wrapper; the struct is spelled out as <linux/openat2.h> has it. */
    struct pyc_open_how { uint64_t flags, mode, resolve; };
    static int pyc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                           uint64_t resolve) {
        struct pyc_open_how how = { flags, mode, resolve };
        return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    }

    /* The new mount API, called raw: glibc has wrappers only since 2.36, and <linux/mount.h>,
       which has the constants, clashes with <sys/mount.h>. */
    static int pyc_open_tree(int dirfd, const char *path, unsigned int flags) {
        return syscall(SYS_open_tree, dirfd, path, flags);
    }
    static int pyc_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                              const char *to_path, unsigned int flags) {
        return syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
    }
    static int pyc_fsopen(const char *fs_name, unsigned int flags) {
        return syscall(SYS_fsopen, fs_name, flags);
    }
    static int pyc_fsconfig(int fd, unsigned int cmd, const char *key, const char *value,
                            int aux) {
        return syscall(SYS_fsconfig, fd, cmd, key, value, aux);
    }
    static int pyc_fsmount(int fd, unsigned int flags, unsigned int attr_flags) {
        return syscall(SYS_fsmount, fd, flags, attr_flags);
    }
    struct pyc_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
    static int pyc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                                 uint64_t attr_set, uint64_t attr_clr, uint64_t propagation) {
        struct pyc_mount_attr attr = { attr_set, attr_clr, propagation, 0 };
        return syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
    }

    /* The filesystem's magic number, which os.fstatvfs does not report (PROC_SUPER_MAGIC...). */
    static long pyc_fstatfs_type(int fd) {
        struct statfs st;
        if (fstatfs(fd, &st) < 0)
            return -1;
        return (long)st.f_type;
    }

    /* statx's mount id of the file behind `fd` (glibc's struct statx lacks stx_mnt_id, at byte
       144 of the kernel's 256-byte struct). */
    static int pyc_mount_id(int fd, uint64_t *mount_id) {
        unsigned char buf[256];
        memset(buf, 0, sizeof(buf));
        if (syscall(SYS_statx, fd, "", 0x1000 /* AT_EMPTY_PATH */, 0x1000 /* STATX_MNT_ID */,
                    buf) < 0)
            return -1;
        memcpy(mount_id, buf + 144, sizeof(*mount_id));
        return 0;
    }

    /* seccomp(2) with a program compiled earlier (runtime.seccomp.compile). */
    static int pyc_seccomp_set_filter(const void *program, unsigned int len, unsigned int flags) {
        struct { unsigned short len; const void *filter; } prog = { (unsigned short)len, program };
        return syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &prog);
    }
    """ + EXEC_CHILD,
    libraries=["seccomp"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
