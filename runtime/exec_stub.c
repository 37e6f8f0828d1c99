/*
 * The last hop into a container's process (runtime/exec_stub.py says why it exists).
 *
 * argv[0] is the descriptor to report a failed execve on ("-1": stderr, as the container's
 * own output), argv[1] the executable, argv[2...] the process's own argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
	char *end;
	long report = argc >= 3 ? strtol(argv[0], &end, 10) : 0;
	/* Run any other way (as the interpreter of a "#!/proc/self/exe" script): do nothing. */
	if (argc < 3 || end == argv[0] || *end != '\0' || report < -1 || report > 1023)
		return 127;
	/* execve made us dumpable again; the container's own execve will do that anyway, but
	 * until then nothing in the container needs to reach into us. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* The runtime learns of success by this descriptor closing at execve. */
	if (report >= 0)
		fcntl((int)report, F_SETFD, FD_CLOEXEC);
	execve(argv[1], argv + 2, envp);
	const char *why = strerror(errno);
	int fd = report >= 0 ? (int)report : 2;
	/* One write per line: the sync protocol's "error <message>" or a line on stderr. */
	char line[4096];
	size_t n = (size_t)snprintf(line, sizeof line, "%s%s: %s\n",
				    report >= 0 ? "error exec " : "pycontainer: exec ", argv[1], why);
	(void)!write(fd, line, n < sizeof line ? n : sizeof line - 1);
	return 127;
}
