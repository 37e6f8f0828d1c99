#!/bin/bash
# The main job's second half (scripts/demo.sh runs it after the container): a pod. pyapiserver
# and pykubelet run on loopback in a directory of their own, kubectl creates the pod and shows
# it, and everything is removed at the end: pod, processes, bridge, cgroups, mounts, files.
# Needs what scripts/install.sh installs; run as root.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
VENV=${PYCONTAINER_VENV:-$PWD/.venv}
export PATH="$VENV/bin:$PATH"

work=$(mktemp -d /tmp/pyk-demo.XXXXXX)     # short: the shims' sockets live below it
node=pycontainer-demo
bridge=pycdemo$$
cgroup_root=/pycontainer/demo-$$
subnet=198.19.255.0/24   # a test network the tests never pick: nothing leaves this machine
api_pid="" kubelet_pid=""
export KUBECONFIG=$work/api/admin.kubeconfig

cleanup() {
    set +e
    if [ -n "$kubelet_pid" ]; then
        kubectl delete pod hello --ignore-not-found --wait --timeout 60s >/dev/null
        kill "$kubelet_pid"; wait "$kubelet_pid"
    fi
    [ -n "$api_pid" ] && { kill "$api_pid"; wait "$api_pid"; }
    # The shims' zygote outlives the kubelet, as the pods' shims do: ours name $work.
    for pid in $(pgrep -f -- "$work/"); do kill -KILL "$pid"; done
    for round in 1 2 3 4 5; do      # mounts stack (shared dirs): deepest first, until none
        mounts=$(awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
        [ -z "$mounts" ] && break
        for m in $mounts; do umount -l "$m"; done
    done
    ip link del "$bridge" 2>/dev/null
    for dir in /sys/fs/cgroup/*"$cgroup_root"; do
        [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} \;
    done
    rm -rf "$work"
}
trap cleanup EXIT

# wait_for_line FILE TEXT: the first line of FILE that holds TEXT, once it is there.
wait_for_line() {
    for _ in $(seq 100); do
        grep -m1 -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo-pod.sh: no \"$2\" in $1:" >&2; cat "$1" >&2; return 1
}

echo "+ an image without a registry: busybox:static"
./scripts/busybox-image.sh "$work/busybox-image"
PYCONTAINER_IMAGE_ROOT=$work/images pycontainer image import "$work/busybox-image" \
    --name busybox:static >/dev/null

echo "+ pyapiserver on 127.0.0.1, with a token for the node"
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "$token,system:node:$node,$node,\"system:nodes\"" > "$work/tokens.csv"
pyapiserver --bind-address 127.0.0.1 --port 0 --data-dir "$work/api" \
    --token-auth-file "$work/tokens.csv" > "$work/api.log" 2>&1 &
api_pid=$!
url=$(wait_for_line "$work/api.log" serving | awk '{print $3}' | tr -d ,)

echo "+ pykubelet, its pods on the bridge $bridge ($subnet)"
mkdir -p "$work/net.d"
cat > "$work/net.d/10-demo.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "demo", "plugins": [
  {"type": "pycni-bridge", "bridge": "$bridge", "isGateway": true,
   "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": "$subnet"}]],
            "dataDir": "$work/ipam"}}]}
EOF
cat > "$work/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "$url",
            certificate-authority-data: $(base64 -w0 "$work/api/pki/ca.crt")}}]
users: [{name: $node, user: {token: $token}}]
contexts: [{name: demo, context: {cluster: demo, user: $node}}]
current-context: demo
EOF
cat > "$work/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podLogsDir: $work/pods
cgroupRoot: $cgroup_root
address: 127.0.0.1
port: 0
EOF
pykubelet --config "$work/kubelet.yaml" --kubeconfig "$work/kubelet.kubeconfig" \
    --hostname-override "$node" --node-ip 127.0.0.1 --root-dir "$work/root" \
    --cni-conf-dir "$work/net.d" --cni-bin-dir "$VENV/bin,/usr/lib/cni" \
    --cni-cache-dir "$work/cni-cache" --image-root "$work/images" > "$work/kubelet.out" \
    2> "$work/kubelet.log" &
kubelet_pid=$!
wait_for_line "$work/kubelet.out" "serving on port" >/dev/null
for _ in $(seq 100); do
    kubectl get node "$node" >/dev/null 2>&1 && break
    sleep 0.2
done
kubectl get nodes -o wide

echo "+ kubectl apply: a pod with limits, an env var from the downward API, a readiness probe"
kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hello, labels: {app: demo}}
spec:
  nodeName: $node
  restartPolicy: Never
  containers:
  - name: hello
    image: busybox:static
    imagePullPolicy: Never
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    command: [sh, -c]
    args:
    - echo "hello from pod \$(hostname), address \$POD_IP";
      echo "memory limit \$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null
      || cat /sys/fs/cgroup/memory.max)"; touch /tmp/ready; sleep 3
    readinessProbe: {exec: {command: [test, -e, /tmp/ready]}, periodSeconds: 1}
    resources: {limits: {memory: 64Mi, cpu: 500m}}
EOF
for _ in $(seq 150); do
    phase=$(kubectl get pod hello -o jsonpath='{.status.phase}')
    [ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
    sleep 0.2
done
echo "+ kubectl get pod hello -o wide"
kubectl get pod hello -o wide
echo "+ kubectl logs hello"
kubectl logs hello
echo "+ kubectl get events"
kubectl get events --field-selector involvedObject.name=hello \
    -o custom-columns=REASON:.reason,MESSAGE:.message
[ "$phase" = Succeeded ]
