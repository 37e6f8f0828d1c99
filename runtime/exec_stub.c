/*
 * The last hop into a container's process (runtime/exec_stub.py says why it exists).
 *
 * argv[0] is the descriptor to report a failed execve on ("-1": stderr, as the container's
 * own output), argv[1] the executable, argv[2...] the process's own argv.
 *
 * Built without the C library (-nostdlib, see setup.py): a static glibc program is 670 KiB,
 * copied into a memfd and mapped by execve for every container process and every exec; this
 * one is a few pages. So it makes its system calls itself and carries the messages of the
 * errors execve can return.
 */
#include <asm/unistd.h>
#include <errno.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>

#define FD_CLOEXEC 1

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n"
	"\tand $-16, %rsp\n\tcall stub_main\n\thlt\n");

static long sys(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n\tmov x29, #0\n\tmov x30, #0\n\tmov x0, sp\n"
	"\tbl stub_main\n");

static long sys(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
#else
#error "exec_stub: no system call glue for this architecture"
#endif

static const struct {
	int number;
	const char *text;
} messages[] = {
	{EPERM, "Operation not permitted"}, {ENOENT, "No such file or directory"},
	{EIO, "Input/output error"}, {E2BIG, "Argument list too long"},
	{ENOEXEC, "Exec format error"}, {EAGAIN, "Resource temporarily unavailable"},
	{ENOMEM, "Cannot allocate memory"}, {EACCES, "Permission denied"},
	{EFAULT, "Bad address"}, {ENOTDIR, "Not a directory"}, {EISDIR, "Is a directory"},
	{EINVAL, "Invalid argument"}, {ENFILE, "Too many open files in system"},
	{EMFILE, "Too many open files"}, {ETXTBSY, "Text file busy"},
	{ENAMETOOLONG, "File name too long"}, {ELOOP, "Too many levels of symbolic links"},
	{ELIBBAD, "Accessing a corrupted shared library"},
};

/* Appends `text` to the line at *used (of `size` bytes), as much as fits. */
static void append(char *line, unsigned long size, unsigned long *used, const char *text)
{
	while (*text && *used < size)
		line[(*used)++] = *text++;
}

static void append_number(char *line, unsigned long size, unsigned long *used, long value)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value && n < (int)sizeof digits);
	while (n && *used < size)
		line[(*used)++] = digits[--n];
}

/* argv[0] as the descriptor number, -1 to 1023; -2 when it is not one. */
static long report_fd(const char *text)
{
	long value = 0;
	int negative = *text == '-';
	if (negative)
		text++;
	if (!*text)
		return -2;
	for (; *text; text++) {
		if (*text < '0' || *text > '9' || value > 1023)
			return -2;
		value = value * 10 + (*text - '0');
	}
	if (negative)
		return value == 1 ? -1 : -2;
	return value <= 1023 ? value : -2;
}

__attribute__((noreturn, used)) void stub_main(long *stack)
{
	long argc = stack[0];
	char **argv = (char **)(stack + 1);
	char **envp = argv + argc + 1;
	long report = argc >= 3 ? report_fd(argv[0]) : -2;
	/* Run any other way (as the interpreter of a "#!/proc/self/exe" script): do nothing. */
	if (report < -1)
		for (;;)
			sys(__NR_exit_group, 127, 0, 0);
	/* execve made us dumpable again; the container's own execve will do that anyway, but
	 * until then nothing in the container needs to reach into us. */
	sys(__NR_prctl, PR_SET_DUMPABLE, 0, 0);
	/* The runtime learns of success by this descriptor closing at execve. */
	if (report >= 0)
		sys(__NR_fcntl, report, F_SETFD, FD_CLOEXEC);
	long error = -sys(__NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
	/* One write per line: the sync protocol's "error <message>" or a line on stderr. */
	char line[4096];
	unsigned long used = 0;
	append(line, sizeof line - 1, &used, report >= 0 ? "error exec " : "pycontainer: exec ");
	append(line, sizeof line - 1, &used, argv[1]);
	append(line, sizeof line - 1, &used, ": ");
	const char *text = 0;
	for (unsigned long i = 0; i < sizeof messages / sizeof messages[0]; i++)
		if (messages[i].number == error)
			text = messages[i].text;
	if (text) {
		append(line, sizeof line - 1, &used, text);
	} else {
		append(line, sizeof line - 1, &used, "Unknown error ");
		append_number(line, sizeof line - 1, &used, error);
	}
	line[used++] = '\n';
	sys(__NR_write, report >= 0 ? report : 2, (long)line, (long)used);
	for (;;)
		sys(__NR_exit_group, 127, 0, 0);
}
