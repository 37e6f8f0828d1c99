#!/bin/bash
# Runs inside ../shared/sandbox.sh: one runtime-tools validation file against one runtime.
# usage: run_tap_file.sh FILE.t, from the suite's directory (runtimetest, rootfs tarball)
# env: RTT_WORK (this run's state/, tmp/ and runtime.log), RTT_RUNTIME (the runtime under test),
#      RTT_CGROUP_PROCS (cgroup.procs files, one a line)
# The run's cgroups are joined first so that the suite's relative cgroupsPath lands in them, not
# in the caller's. Containers the file leaves are force-deleted here, while their PIDs still mean
# something, and named in $RTT_WORK/leftovers; the sandbox's PID namespace ends their processes.
set -u
while IFS= read -r procs; do
    [ -z "$procs" ] || echo 0 2>/dev/null > "$procs" || { echo "cannot join $procs" >&2; exit 125; }
done <<< "$RTT_CGROUP_PROCS"
# linux_cgroups_network sets priorities on the second network interface it finds (it panics
# without one); the sandbox's network namespace starts with lo alone.
ip link add eth0 type veth peer name eth1 || exit 125
export RUNTIME="$(dirname "$(readlink -f "$0")")/runtime_wrapper.sh" TMPDIR="$RTT_WORK/tmp"
unshare --mount --propagation private "$1"
status=$?
for state in "$RTT_WORK"/state/*/; do
    [ -d "$state" ] || continue
    id=$(basename "$state")
    echo "container $id (state $state)" >> "$RTT_WORK/leftovers"
    "$RTT_RUNTIME" --root "$RTT_WORK/state" delete --force "$id" >/dev/null 2>&1
done
exit $status
