#!/bin/bash
# Runs inside the test VM (tests/vagrant/test_vagrant_vm.py): vagrant/provision.sh from the shared
# checkout and wheelhouse, then what a user checks with kubectl: the node is Ready, a pod with a
# memory limit is Running with that limit in its cgroup v2, and it is still running, the same
# process, after `systemctl restart pykubelet`. Prints "figure NAME SECONDS" lines for the test
# and "check NAME VALUE" lines that it asserts on.
set -euo pipefail
t0=$(cut -d' ' -f1 /proc/uptime)
figure() { echo "figure $1 $(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime)"; }
check() { echo "check $1 $2"; }
echo "figure boot $t0"

mkdir -p /mnt/repo /mnt/wheels
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro pyc-repo /mnt/repo
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro pyc-wheels /mnt/wheels
check system "$(systemctl is-system-running --wait || true)"
check cgroupfs "$(stat -f -c %T /sys/fs/cgroup)"

/mnt/repo/vagrant/provision.sh --wheelhouse /mnt/wheels
figure provision
services() { systemctl show -P MainPID pyapiserver pykubelet | tr '\n' ' '; }
before=$(services)
/mnt/repo/vagrant/provision.sh --wheelhouse /mnt/wheels
figure provision_again
check second_run_kept_services "$([ "$before" = "$(services)" ] && echo yes || echo no)"

export KUBECONFIG=/root/.kube/config
node=$(hostname)
kubectl apply -f - <<'POD'
apiVersion: v1
kind: Pod
metadata: {name: sleeper, namespace: default}
spec:
  containers:
  - name: main
    image: busybox:static
    command: [sh, -c, 'echo started; exec sleep 100000']
    resources: {limits: {memory: 64Mi, cpu: 500m}}
POD
kubectl wait --for=jsonpath='{.status.phase}'=Running pod/sleeper --timeout=180s
figure pod_running
check pod_node "$(kubectl get pod sleeper -o jsonpath='{.spec.nodeName}')"
uid=$(kubectl get pod sleeper -o jsonpath='{.metadata.uid}')
pod_cgroup=$(find /sys/fs/cgroup -type d -name "pod$uid" | head -1)
check pod_cgroup "${pod_cgroup#/sys/fs/cgroup}"
# The container's cgroup: the one below the pod's with processes in it.
container_cgroup=""
for procs in "$pod_cgroup"/*/cgroup.procs; do
    [ -n "$(cat "$procs")" ] && container_cgroup=$(dirname "$procs")
done
check container_cgroup "${container_cgroup#/sys/fs/cgroup}"
check memory_max "$(cat "$container_cgroup/memory.max")"
check cpu_max "$(cat "$container_cgroup/cpu.max")"
pid=$(head -1 "$container_cgroup/cgroup.procs")
check container_command "$(tr '\0' ' ' < "/proc/$pid/cmdline")"
check kubelet_cgroup "$(cut -d: -f3 "/proc/$(systemctl show -P MainPID pykubelet)/cgroup")"

restarted_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
old_kubelet=$(systemctl show -P MainPID pykubelet)
systemctl restart pykubelet
figure kubelet_restarted
check new_kubelet "$([ "$(systemctl show -P MainPID pykubelet)" != "$old_kubelet" ] && echo yes || echo no)"
# The new kubelet has reported the node and synced its pods: its heartbeat is newer than the restart.
heartbeat() {
    kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'
}
for _ in $(seq 120); do
    [[ "$(heartbeat)" > "$restarted_at" ]] && break
    sleep 1
done
sleep 5
figure kubelet_back
check heartbeat_after_restart "$([[ "$(heartbeat)" > "$restarted_at" ]] && echo yes || echo no)"
check node_ready "$(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
check phase_after_restart "$(kubectl get pod sleeper -o jsonpath='{.status.phase}')"
check restarts_after_restart "$(kubectl get pod sleeper -o jsonpath='{.status.containerStatuses[0].restartCount}')"
check same_process "$(grep -qx "$pid" "$container_cgroup/cgroup.procs" && echo yes || echo no)"
check logs_after_restart "$(kubectl logs sleeper)"
kubectl delete pod sleeper --grace-period=1 --timeout=120s
figure pod_deleted
check cgroup_after_delete "$([ -d "$pod_cgroup" ] && echo left || echo gone)"
