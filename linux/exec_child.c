/*
 * pyc_exec_spawn: an exec's process made from a prepared plan (runtime/exec_plan.py), with no
 * fork of the calling interpreter. The child shares the caller's memory (CLONE_VM|CLONE_VFORK,
 * the caller waits until the child's execve) and runs only this file's code on a stack of its
 * own: the container's cgroup v1 hierarchies, its namespaces, rlimits, cwd, HOME, the
 * executable, seccomp, user, groups, capabilities and no_new_privs, then the execve through the
 * sealed exec stub (runtime/exec_stub.py). Errors go to the report descriptor as the sync
 * protocol's "error <message>" lines (runtime/sync.py), warnings as "warning <message>".
 *
 * The child touches nothing of the caller's but the plan and its own stack, and calls only
 * system calls (raw where glibc's wrapper would act for every thread of the caller: setuid and
 * friends, setgroups), never malloc or stdio.
 *
 * Part of linux._native: linux/_build.py compiles it into that module, after its _GNU_SOURCE.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pyc_exec {
    int stdio[3];               /* become 0, 1, 2 */
    int report_fd;              /* the sync pipe's write end */
    int stub_fd;                /* the sealed exec stub */
    int pid_ns_fd;              /* the PID namespace to be born in; -1: ours */
    int cgroup_fd;              /* cgroup2 directory to be born in (CLONE_INTO_CGROUP); -1: none */
    const char *const *cgroup_files;  /* v1 "tasks" files to write "0" to, NULL-terminated */
    const int *cgroup_required; /* per file: a failure is an error (else skipped) */
    const char *const *ns_kinds;      /* namespaces to join, in join order, NULL-terminated */
    const char *const *ns_paths;
    const char *const *ns_own;  /* our own namespace of that kind: joined only if different */
    const int *ns_types;
    int userns;                 /* index of the user namespace in ns_*, -1: none */
    char **argv;                /* "3", NULL (the executable, filled in), args..., NULL */
    char **envp;                /* with one free slot before its NULL, for HOME */
    char *home;                 /* room for "HOME=" and a path (home_size bytes) */
    int home_size;
    const char *cwd;
    int nrlimits;
    const int *rlimit_kinds;
    const uint64_t *rlimit_values;  /* soft, hard per kind */
    uint32_t uid, gid;
    int ngroups;
    const uint32_t *groups;
    int umask;                  /* -1: unchanged */
    int has_caps;
    uint64_t bounding, effective, permitted, inheritable;
    int last_cap;
    const int *ambient;         /* -1-terminated */
    const char *const *ambient_names;
    int no_new_privs;
    const void *seccomp;        /* struct sock_filter[], NULL: none */
    int seccomp_len;            /* instructions */
    unsigned int seccomp_flags;
};

#define REPORT 3
#define STUB 4
#define MOVED 10  /* where our descriptors wait while 0-4 are filled */
#define CHILD_STACK (256 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* clone3 whose child runs fn(arg) on the stack the arguments give and exits with its value:
 * the C library has no clone3 wrapper, and a child on a stack of its own cannot return into
 * the caller's frames. */
long pyc_clone3_run(void *args, unsigned long size, int (*fn)(void *), void *arg)
    __attribute__((visibility("hidden")));
#if defined(__x86_64__)
__asm__(".text\n.hidden pyc_clone3_run\n.type pyc_clone3_run,@function\npyc_clone3_run:\n"
        "\tmov %rdx, %r8\n\tmov %rcx, %r9\n\tmov $435, %eax\n\tsyscall\n"
        "\ttest %rax, %rax\n\tjnz 1f\n"
        "\txor %ebp, %ebp\n\tmov %r9, %rdi\n\tcall *%r8\n"
        "\tmov %eax, %edi\n\tmov $231, %eax\n\tsyscall\n\thlt\n"
        "1:\tret\n");
#elif defined(__aarch64__)
__asm__(".text\n.hidden pyc_clone3_run\n.type pyc_clone3_run,%function\npyc_clone3_run:\n"
        "\tmov x10, x2\n\tmov x11, x3\n\tmov x8, #435\n\tsvc #0\n\tcbnz x0, 1f\n"
        "\tmov x29, #0\n\tmov x0, x11\n\tblr x10\n\tmov x8, #94\n\tsvc #0\n"
        "1:\tret\n");
#else
#error "exec_child: no clone3 glue for this architecture"
#endif

struct pyc_clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
             set_tid, set_tid_size, cgroup;
};

/* --- the child's report ------------------------------------------------------------------- */

struct line {
    char text[4096];
    unsigned long used;
};

static void put(struct line *l, const char *text)
{
    while (*text && l->used < sizeof l->text - 1)
        l->text[l->used++] = *text++;
}

static void put_number(struct line *l, unsigned long value)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n && l->used < sizeof l->text - 1)
        l->text[l->used++] = digits[--n];
}

static const char *error_text(int error)
{
    const char *text = strerrordesc_np(error);
    return text ? text : "Unknown error";
}

/* One sync message, one write; newlines in it (from a path) become spaces. */
static void report(struct line *l)
{
    for (unsigned long i = 0; i < l->used; i++)
        if (l->text[i] == '\n')
            l->text[i] = ' ';
    l->text[l->used++] = '\n';
    (void)!write(REPORT, l->text, l->used);
}

/* "error <a><b><c><d>: <strerror(error)>" (no ": ..." for error 0); returns 1, the child's
 * exit status. */
static int fail(int error, const char *a, const char *b, const char *c, const char *d)
{
    struct line l = {.used = 0};
    put(&l, "error ");
    put(&l, a);
    put(&l, b);
    put(&l, c);
    put(&l, d);
    if (error) {
        put(&l, ": ");
        put(&l, error_text(error));
    }
    report(&l);
    return 1;
}

/* --- the steps ------------------------------------------------------------------------------ */

/* Our descriptors to 0-4, every other one closed: nothing of the caller's reaches the
 * container, and the cwd is looked up with no host descriptor open (CVE-2024-21626). */
static int place_descriptors(const struct pyc_exec *x)
{
    int moved[5];
    int from[5] = {x->stdio[0], x->stdio[1], x->stdio[2], x->report_fd, x->stub_fd};
    for (int i = 0; i < 5; i++) {
        moved[i] = fcntl(from[i], F_DUPFD, MOVED);
        if (moved[i] < 0)
            return -1;
    }
    for (int i = 0; i < 5; i++)
        if (dup3(moved[i], i, i == STUB ? O_CLOEXEC : 0) < 0)
            return -1;
    return syscall(SYS_close_range, 5, ~0U, 0);
}

static int join_cgroups(const struct pyc_exec *x)
{
    for (int i = 0; x->cgroup_files[i]; i++) {
        int fd = open(x->cgroup_files[i], O_WRONLY | O_CLOEXEC);
        int error = fd < 0 ? errno : 0;
        if (fd >= 0) {
            if (write(fd, "0", 1) < 0)  /* "0": the writing thread itself */
                error = errno;
            close(fd);
        }
        if (error && x->cgroup_required[i])
            return fail(error, "exec: cannot join ", x->cgroup_files[i], "", "");
    }
    return 0;
}

/* All opened before the first setns: once in the container's user namespace, the init's
 * (non-dumpable) /proc/PID/ns files may no longer be opened. */
static int join_namespaces(const struct pyc_exec *x, int *joined_userns)
{
    int fds[16];
    int n = 0;
    struct stat theirs, ours;
    for (; x->ns_paths[n] && n < 16; n++) {
        fds[n] = open(x->ns_paths[n], O_RDONLY | O_CLOEXEC);
        if (fds[n] < 0)
            return fail(errno, "exec: linux.namespaces: ", x->ns_kinds[n], " ", x->ns_paths[n]);
        if (fstat(fds[n], &theirs) == 0 && stat(x->ns_own[n], &ours) == 0 &&
            theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
            close(fds[n]);
            fds[n] = -1;  /* ours already: joining is refused for some kinds, pointless for all */
        }
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (setns(fds[i], x->ns_types[i]) < 0)
            return fail(errno, "exec: linux.namespaces: join ", x->ns_kinds[i], " ",
                        x->ns_paths[i]);
        close(fds[i]);
        if (i == x->userns)
            *joined_userns = 1;
    }
    return 0;
}

static int has_home(char **envp)
{
    for (int i = 0; envp[i]; i++)
        if (strncmp(envp[i], "HOME=", 5) == 0)
            return 1;
    return 0;
}

/* As runc: HOME from the container's /etc/passwd, "/" when the user has no entry. */
static void add_home(const struct pyc_exec *x)
{
    char buf[65536];
    long size = 0, got;
    const char *home = "/";
    unsigned long home_len = 1;
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        while (size < (long)sizeof buf - 1 &&
               (got = read(fd, buf + size, sizeof buf - 1 - size)) > 0)
            size += got;
        close(fd);
    }
    char uid[24];
    struct line number = {.used = 0};
    put_number(&number, x->uid);
    memcpy(uid, number.text, number.used);
    uid[number.used] = 0;
    for (long start = 0; start < size;) {
        long end = start;
        while (end < size && buf[end] != '\n')
            end++;
        /* name:password:uid:gid:gecos:home:shell */
        long field[7], count = 0;
        field[count++] = start;
        for (long i = start; i < end && count < 7; i++)
            if (buf[i] == ':')
                field[count++] = i + 1;
        if (count >= 6) {
            long uid_len = field[3] - 1 - field[2];
            long home_end = count >= 7 ? field[6] - 1 : end;
            if (uid_len == (long)number.used && memcmp(buf + field[2], uid, uid_len) == 0) {
                if (home_end > field[5]) {
                    home = buf + field[5];
                    home_len = home_end - field[5];
                }
                break;
            }
        }
        start = end + 1;
    }
    if (home_len + 6 > (unsigned long)x->home_size)
        home = "/", home_len = 1;
    memcpy(x->home, "HOME=", 5);
    memcpy(x->home + 5, home, home_len);
    x->home[5 + home_len] = 0;
    int n = 0;
    while (x->envp[n])
        n++;
    x->envp[n] = x->home;
    x->envp[n + 1] = NULL;
}

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* args[0] resolved in the container's filesystem, as execvp would; into `found`. */
static int find_executable(const struct pyc_exec *x, char *found, unsigned long size)
{
    const char *name = x->argv[2];
    if (strchr(name, '/')) {
        if (strlen(name) < size && executable(name)) {
            strcpy(found, name);
            return 0;
        }
        return fail(0, "process.args[0]: executable ", name, " not found in the container", "");
    }
    const char *path = DEFAULT_PATH;
    for (int i = 0; x->envp[i]; i++)
        if (strncmp(x->envp[i], "PATH=", 5) == 0)
            path = x->envp[i] + 5;
    unsigned long name_len = strlen(name);
    for (const char *dir = path;; dir++) {
        const char *end = strchrnul(dir, ':');
        unsigned long dir_len = end - dir;
        if (dir_len == 0)
            dir = ".", dir_len = 1;
        if (dir_len + 1 + name_len < size) {
            memcpy(found, dir, dir_len);
            found[dir_len] = '/';
            memcpy(found + dir_len + 1, name, name_len + 1);
            if (executable(found))
                return 0;
        }
        if (!*end)
            break;
        dir = end;
    }
    return fail(0, "process.args[0]: executable '", name, "' in $PATH not found in the container",
                "");
}

static int load_seccomp(const struct pyc_exec *x)
{
    struct sock_fprog prog = {.len = (unsigned short)x->seccomp_len,
                              .filter = (struct sock_filter *)x->seccomp};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, x->seccomp_flags, &prog) < 0)
        return fail(errno, "seccomp: load", "", "", "");
    return 0;
}

static int setgroups_allowed(void)
{
    char text[16] = {0};
    int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    (void)!read(fd, text, sizeof text - 1);
    close(fd);
    return strncmp(text, "allow", 5) == 0;
}

/* The bounding set, the user keeping its capabilities, then the exact sets
 * (runtime/init/process_setup.switch_user does the same for the init). */
static int switch_user(const struct pyc_exec *x, int joined_userns)
{
    if (x->has_caps)
        for (int cap = 0; cap <= x->last_cap; cap++)
            if (!(x->bounding >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                return fail(errno, "process.capabilities.bounding: drop", "", "", "");
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return fail(errno, "prctl PR_SET_KEEPCAPS", "", "", "");
    if ((!joined_userns || setgroups_allowed()) &&
        syscall(SYS_setgroups, x->ngroups, x->groups) < 0)
        return fail(errno, "process.user.additionalGids", "", "", "");
    if (syscall(SYS_setresgid, x->gid, x->gid, x->gid) < 0)
        return fail(errno, "process.user.gid", "", "", "");
    if (syscall(SYS_setresuid, x->uid, x->uid, x->uid) < 0)
        return fail(errno, "process.user.uid", "", "", "");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return fail(errno, "prctl PR_SET_KEEPCAPS", "", "", "");
    if (x->has_caps) {
        struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        for (int i = 0; i < 2; i++) {
            data[i].effective = (uint32_t)(x->effective >> (32 * i));
            data[i].permitted = (uint32_t)(x->permitted >> (32 * i));
            data[i].inheritable = (uint32_t)(x->inheritable >> (32 * i));
        }
        if (syscall(SYS_capset, &header, data) < 0)
            return fail(errno, "process.capabilities: the kernel refused the sets", "", "", "");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            return fail(errno, "clear ambient capabilities", "", "", "");
        for (int i = 0; x->ambient[i] >= 0; i++) {
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, x->ambient[i], 0, 0) == 0)
                continue;
            /* As runc: reported, not a failure. */
            struct line l = {.used = 0};
            put(&l, "warning process.capabilities.ambient: ");
            put(&l, x->ambient_names[i]);
            put(&l, " not raised (");
            put(&l, error_text(errno));
            put(&l, "): an ambient capability must also be permitted and inheritable");
            report(&l);
        }
    }
    if (x->umask >= 0)
        umask(x->umask);
    if (x->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return fail(errno, "prctl PR_SET_NO_NEW_PRIVS", "", "", "");
    return 0;
}

static int child(void *arg)
{
    const struct pyc_exec *x = arg;
    char found[4096];
    int joined_userns = 0;
    /* Default dispositions (the caller's handlers are its interpreter's); signals stay
     * blocked, as the caller blocked them for the clone, until just before the execve. */
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = {0};
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
    if (place_descriptors(x) < 0)
        return 1;  /* no report descriptor to tell on: the caller sees exit status 1 */
    if (join_cgroups(x) || join_namespaces(x, &joined_userns))
        return 1;
    for (int i = 0; i < x->nrlimits; i++) {
        struct { uint64_t soft, hard; } limit = {x->rlimit_values[2 * i],
                                                x->rlimit_values[2 * i + 1]};
        if (syscall(SYS_prlimit64, 0, x->rlimit_kinds[i], &limit, NULL) < 0)
            return fail(errno, "process.rlimits: setrlimit", "", "", "");
    }
    int in_cwd = 1;
    if (chdir(x->cwd) < 0) {
        if (errno != EACCES)  /* root may need to chdir before the user switch, the user after */
            return fail(errno, "process.cwd: ", x->cwd, "", "");
        in_cwd = 0;
    }
    if (!has_home(x->envp))
        add_home(x);
    if (find_executable(x, found, sizeof found))
        return 1;
    x->argv[1] = found;
    /* With no_new_privs the kernel lets an unprivileged process load a filter, so it goes
     * last; without, it must go in while we still hold CAP_SYS_ADMIN (runc's order). */
    if (x->seccomp && !x->no_new_privs && load_seccomp(x))
        return 1;
    if (switch_user(x, joined_userns))
        return 1;
    if (!in_cwd && chdir(x->cwd) < 0)
        return fail(0, "process.cwd: ", x->cwd, ": permission denied", "");
    /* getcwd fails (ENOENT) for a cwd reached from outside the container's root. */
    if (syscall(SYS_getcwd, found + 2048, 2048) < 0 || found[2048] != '/')
        return fail(0, "process.cwd: ", x->cwd, ": is outside the container's root filesystem",
                    "");
    if (x->seccomp && x->no_new_privs && load_seccomp(x))
        return 1;
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    syscall(SYS_execveat, STUB, "", x->argv, x->envp, AT_EMPTY_PATH);
    return fail(errno, "exec ", found, "", "");
}

/* Returns the child's PID, or -1 with errno when it could not be made (then nothing of ours
 * changed). The child's own failures reach the report descriptor. */
long pyc_exec_spawn(const struct pyc_exec *x)
{
    struct pyc_clone3_args args;
    sigset_t all, old;
    long pid = -1;
    int error = 0, own_pid_ns = -1;
    void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    if (x->pid_ns_fd >= 0) {
        own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pid_ns < 0 || setns(x->pid_ns_fd, CLONE_NEWPID) < 0) {
            error = errno;
            goto out;
        }
    }
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VM | CLONE_VFORK | (x->cgroup_fd >= 0 ? 0x200000000ULL : 0);
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = CHILD_STACK;
    args.cgroup = x->cgroup_fd >= 0 ? (uint64_t)x->cgroup_fd : 0;
    /* Until its execve the child shares our memory, so our dumpability: nothing in the
     * container may ptrace it or open its /proc files meanwhile (CVE-2016-9962). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    pid = pyc_clone3_run(&args, sizeof args, child, (void *)x);
    if (pid < 0) {
        error = -pid;
        pid = -1;
    }
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (own_pid_ns >= 0)
        (void)setns(own_pid_ns, CLONE_NEWPID);  /* back into our own: it cannot refuse that */
out:
    if (own_pid_ns >= 0)
        close(own_pid_ns);
    munmap(stack, CHILD_STACK);
    if (pid < 0)
        errno = error;
    return pid;
}
