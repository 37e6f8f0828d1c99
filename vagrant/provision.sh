#!/bin/bash
# provision.sh: makes this Debian/Ubuntu machine a pycontainer node, as root. Idempotent: run it
# again (after a change of the checkout, say) and it converges, restarting only what changed.
#
#   node 1 (control plane): pyapiserver, pycontroller-manager, pykube-dns, pykubelet, pykube-proxy,
#                           pycni-hostgw              provision.sh [--node-ip IP]
#   another node (joins):   pykubelet, pykube-proxy, pycni-hostgw
#                                                     provision.sh --api-server URL --token T --ca-cert F
#
# What it installs: the apt packages, a virtualenv in /opt/pycontainer with the package and kubectl,
# a CNI network (our bridge plugin on --pod-cidr, ports hairpinning so that a pod reaches itself
# through a Service) in /etc/cni/net.d, br_netfilter with bridge-nf-call-iptables=1 (replies between
# pods of one bridge pass the Service rules' conntrack), a busybox image (busybox:static, from
# busybox-static, no registry), the systemd units pyapiserver.service, pycontroller-manager.service
# and pykube-dns.service (control plane), pykubelet.service, pykube-proxy.service and
# pycni-hostgw.service (the other nodes' pods reached through --route-backend, pod traffic leaving
# --cluster-cidr masqueraded; the node's podCIDR is written on its Node for it), the kube-dns
# Service (--service-cidr's tenth address: the kubelets' clusterDNS; pykube-dns runs on the control
# plane only, so the Service sends every node's pods there: internalTrafficPolicy Cluster), an admin
# kubeconfig (control plane: root and --admin-user). It ends when the node is Ready.
#
# Options:
#   --node-name NAME      the Node's name (default: the host name)
#   --node-ip IP          the node's address (default: the default route's source, else 127.0.0.1);
#                         the control plane serves the API on it (port 6443)
#   --pod-cidr CIDR       this node's pod network (default 198.18.1.0/24; one per node)
#   --cluster-cidr CIDR   every node's pod networks (default 198.18.0.0/16): pykube-proxy
#                         masquerades Service traffic from outside it, pycni-hostgw pod traffic
#                         to outside it
#   --route-backend B     how pods reach the other nodes' pods: host-gw (default; the nodes share
#                         one L2 network) or vxlan (the nodes are routed to each other)
#   --service-cidr CIDR   the Services' ClusterIPs (default 198.19.128.0/20; the same on every node)
#   --api-server URL      join the cluster of this API server instead of running one
#   --token TOKEN         this node's bearer token; the control plane accepts it for --node-name
#                         (default there: a random one, kept across runs)
#   --ca-cert FILE        the cluster's CA certificate: a joining node trusts it; the control plane
#   --ca-key FILE         seeds its PKI with it and this key (so nodes can trust it beforehand)
#   --node-token NAME=T   control plane: also accept token T for node NAME (repeatable)
#   --admin-user USER     also give USER the admin kubeconfig (default: vagrant, if it exists)
#   --source DIR          the pycontainer checkout (default: this script's repository)
#   --wheelhouse DIR      install the package and its dependencies from these wheels only
#                         (no index, no compiler: offline machines)
set -euo pipefail

VENV=/opt/pycontainer
CONF=/etc/pycontainer
APISERVER_DATA=/var/lib/pyapiserver
API_PORT=6443
IMAGE=busybox:static
READY_TIMEOUT=${PYCONTAINER_READY_TIMEOUT:-300}

die() { echo "provision.sh: $*" >&2; exit 1; }
step() { echo "== [${SECONDS}s] $*"; }

node_name=$(hostname | tr '[:upper:]' '[:lower:]')
node_ip="" pod_cidr=198.18.1.0/24 cluster_cidr=198.18.0.0/16 service_cidr=198.19.128.0/20
route_backend=host-gw
api_server="" token="" ca_cert="" ca_key="" admin_user=""
wheelhouse="" node_tokens=()
source_dir=$(dirname "$(dirname "$(readlink -f "$0")")")
while [ $# -gt 0 ]; do
    if [ "$1" = --help ] || [ "$1" = -h ]; then
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
        exit 0
    fi
    [ $# -ge 2 ] || die "$1: needs a value"
    case $1 in
        --node-name) node_name=$2 ;;
        --node-ip) node_ip=$2 ;;
        --pod-cidr) pod_cidr=$2 ;;
        --cluster-cidr) cluster_cidr=$2 ;;
        --service-cidr) service_cidr=$2 ;;
        --route-backend) route_backend=$2 ;;
        --api-server) api_server=$2 ;;
        --token) token=$2 ;;
        --ca-cert) ca_cert=$(readlink -m "$2") ;;
        --ca-key) ca_key=$(readlink -m "$2") ;;
        --node-token) node_tokens+=("$2") ;;
        --admin-user) admin_user=$2 ;;
        --source) source_dir=$(readlink -m "$2") ;;
        --wheelhouse) wheelhouse=$(readlink -m "$2") ;;
        *) die "$1: unknown option (see the comment at the top of this script)" ;;
    esac
    shift 2
done

[ "$(id -u)" = 0 ] || die "run as root"
[[ $node_name =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "--node-name: $node_name is not a DNS name"
[[ $pod_cidr =~ ^[0-9.]+/[0-9]+$ ]] || die "--pod-cidr: $pod_cidr is not an IPv4 CIDR"
[[ $cluster_cidr =~ ^[0-9.]+/[0-9]+$ ]] || die "--cluster-cidr: $cluster_cidr is not an IPv4 CIDR"
[[ $route_backend =~ ^(host-gw|vxlan)$ ]] || die "--route-backend: $route_backend is not host-gw or vxlan"
[[ $service_cidr =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/(1[6-9]|2[0-8])$ ]] \
    || die "--service-cidr: $service_cidr is not an IPv4 CIDR from /16 to /28"
service_base=${service_cidr%/*}
# The Service range's tenth address, as kubeadm's kube-dns; the range is at least a /28.
cluster_dns="${service_base%.*}.$(( ${service_base##*.} + 10 ))"
if [ -n "$api_server" ]; then
    [[ $api_server == https://* ]] || die "--api-server: $api_server must be an https:// URL"
    [ -n "$token" ] || die "--token: a joining node needs its token"
    [ -f "$ca_cert" ] || die "--ca-cert: a joining node needs the cluster's CA certificate"
    [ ${#node_tokens[@]} = 0 ] || die "--node-token: only the control plane accepts tokens"
else
    [ -z "$ca_cert" ] || [ -f "$ca_cert" ] || die "--ca-cert: $ca_cert: no such file"
    if [ -n "$ca_cert$ca_key" ] && { [ -z "$ca_cert" ] || [ -z "$ca_key" ]; }; then
        die "--ca-cert and --ca-key: give both or neither"
    fi
    [ -z "$ca_key" ] || [ -f "$ca_key" ] || die "--ca-key: $ca_key: no such file"
fi
for entry in "${node_tokens[@]}"; do
    [[ $entry =~ ^[a-z0-9][-a-z0-9.]*=[A-Za-z0-9._-]+$ ]] || die "--node-token: $entry is not NAME=TOKEN"
done
[ -z "$wheelhouse" ] || [ -d "$wheelhouse" ] || die "--wheelhouse: $wheelhouse: no such directory"
[ -f "$source_dir/pyproject.toml" ] || die "--source: $source_dir is not a pycontainer checkout"
if [ -z "$node_ip" ]; then
    # Only looks the route up; nothing is sent. No route (no network at all): loopback.
    node_ip=$(ip -4 route get 198.51.100.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true)
    node_ip=${node_ip:-127.0.0.1}
fi
# Through VXLAN the pods' MTU is the tunnel's, 50 bytes below the node network's.
mtu=""
if [ "$route_backend" = vxlan ]; then
    node_link=$(ip -4 -o addr show | awk -v ip="$node_ip" 'index($4, ip "/") == 1 {print $2; exit}')
    [ -n "$node_link" ] || die "--route-backend: vxlan: no link holds the node address $node_ip"
    mtu="\"mtu\": $(( $(cat "/sys/class/net/$node_link/mtu") - 50 )), "
fi
if [ -z "$admin_user" ] && id vagrant >/dev/null 2>&1; then admin_user=vagrant; fi
[ -z "$admin_user" ] || id "$admin_user" >/dev/null 2>&1 || die "--admin-user: no user $admin_user"

# install_file SRC DEST MODE: copies when the content differs; returns 0 when it changed DEST.
install_file() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        chmod "$3" "$2"
        return 1
    fi
    install -D -m "$3" "$1" "$2"
}
# write_file DEST MODE < content: install_file from standard input.
write_file() {
    local tmp
    tmp=$(mktemp)
    cat > "$tmp"
    local rc=0
    install_file "$tmp" "$1" "$2" || rc=$?
    rm -f "$tmp"
    return $rc
}
# wait_until SECONDS WHAT COMMAND...: polls COMMAND every second.
wait_until() {
    local limit=$1 what=$2
    local deadline=$((SECONDS + limit))
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what: not after $limit s"
        sleep 1
    done
}
random_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

step "apt packages"
packages=(python3 python3-venv python3-pip iproute2 nftables iptables busybox-static ca-certificates kmod)
# Without wheels, the package's C extensions (cffi, python-prctl) are compiled here.
[ -n "$wheelhouse" ] || packages+=(python3-dev build-essential libcap-dev libseccomp-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
fi

step "the package in $VENV"
# Debian's own pip (already byte-compiled) installs into a venv without a pip of its own: creating
# one runs ensurepip, which under software emulation takes longer than the rest put together.
fresh_venv=1
[ -x "$VENV/bin/python" ] && fresh_venv=0 || python3 -m venv --without-pip "$VENV"
pip=(python3 -m pip --python "$VENV/bin/python" install -q --disable-pip-version-check --no-compile)
if [ -n "$wheelhouse" ]; then
    # The wheelhouse installed last (its names, the package's content): the same one again is
    # a no-op, not half a minute of pip under emulation.
    installed=$( (ls "$wheelhouse"; cat "$wheelhouse"/pycontainer-*.whl) | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$VENV/.wheelhouse" 2>/dev/null)" != "$installed" ]; then
        "${pip[@]}" --no-index --find-links "$wheelhouse" "pycontainer[node]"
        # Same version number, newer build: install the wheelhouse's package again.
        [ $fresh_venv = 1 ] || "${pip[@]}" --no-index --find-links "$wheelhouse" --no-deps \
            --force-reinstall pycontainer
        echo "$installed" > "$VENV/.wheelhouse"
    fi
else
    "${pip[@]}" "$source_dir[node]"
fi
# Bytecode now for what `pycontainer` and the shims import at every container start.
"$VENV/bin/python" -m compileall -q "$VENV"/lib/python3*/site-packages/{runtime,cgroups,overlay,netns,shim} \
    >/dev/null || true
ln -sf "$VENV/bin/pycontainer" /usr/local/sbin/pycontainer
ln -sf "$VENV/bin/kubectl" /usr/local/bin/kubectl

step "CNI network $pod_cidr"
# Pod to pod across nodes keeps its addresses: pycni-hostgw masquerades only what leaves the
# cluster CIDR, where the bridge's ipMasq would hide every pod behind its node.
write_file /etc/cni/net.d/10-pycontainer.conflist 0644 <<EOF || true
{
  "cniVersion": "1.0.0",
  "name": "pycontainer",
  "plugins": [
    {"type": "pycni-bridge", "bridge": "pyc0", "isGateway": true, "ipMasq": false, "hairpinMode": true, $mtu
     "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": "$pod_cidr"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "pycni-portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

step "bridge netfilter"
write_file /etc/modules-load.d/pycontainer.conf 0644 <<EOF || true
br_netfilter
EOF
write_file /etc/sysctl.d/90-pycontainer.conf 0644 <<EOF || true
net.bridge.bridge-nf-call-iptables = 1
EOF
modprobe br_netfilter 2>/dev/null || true
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    sysctl -q -p /etc/sysctl.d/90-pycontainer.conf
else
    echo "provision.sh: no br_netfilter in this kernel: ClusterIPs between pods of one node will not answer" >&2
fi

step "image $IMAGE"
if ! pycontainer image inspect "$IMAGE" >/dev/null 2>&1; then
    layout=$(mktemp -d)
    "$source_dir/scripts/busybox-image.sh" "$layout"
    pycontainer image import "$layout" --name "$IMAGE"
    rm -rf "$layout"
fi

mkdir -p "$CONF"
chmod 0755 "$CONF"
unit_changed() { install_file "$source_dir/vagrant/systemd/$1" "/etc/systemd/system/$1" 0644; }
# converge UNIT CHANGED: enabled, running, restarted when its files changed.
converge() {
    systemctl daemon-reload
    systemctl enable -q "$1"
    if [ "$2" = 1 ]; then systemctl restart "$1"; else systemctl start "$1"; fi
}

if [ -z "$api_server" ]; then
    step "pyapiserver on $node_ip:$API_PORT"
    api_server="https://$node_ip:$API_PORT"
    changed=0
    unit_changed pyapiserver.service && changed=1
    if [ -n "$ca_cert" ]; then
        install_file "$ca_cert" "$APISERVER_DATA/pki/ca.crt" 0644 && changed=1
        install_file "$ca_key" "$APISERVER_DATA/pki/ca.key" 0600 && changed=1
        chmod 0700 "$APISERVER_DATA" "$APISERVER_DATA/pki"
    fi
    # Token lines: those given now, then the ones of earlier runs for other nodes.
    tokens=$(mktemp)
    if [ -z "$token" ] && [ -f "$CONF/tokens.csv" ]; then
        token=$(awk -F, -v u="system:node:$node_name" '$2 == u {print $1; exit}' "$CONF/tokens.csv")
    fi
    token=${token:-$(random_token)}
    for entry in "$node_name=$token" "${node_tokens[@]}"; do
        name=${entry%%=*}
        echo "${entry#*=},system:node:$name,$name,\"system:nodes\"" >> "$tokens"
    done
    if [ -f "$CONF/tokens.csv" ]; then
        awk -F, 'NR == FNR {seen[$2] = 1; next} !($2 in seen)' "$tokens" "$CONF/tokens.csv" >> "$tokens"
    fi
    install_file "$tokens" "$CONF/tokens.csv" 0600 && changed=1
    rm -f "$tokens"
    write_file "$CONF/pyapiserver.env" 0644 <<EOF && changed=1
APISERVER_ARGS="--bind-address $node_ip --port $API_PORT --service-cluster-ip-range $service_cidr"
EOF
    converge pyapiserver.service $changed
    admin="$APISERVER_DATA/admin.kubeconfig"
    wait_until 120 "pyapiserver ($(systemctl is-active pyapiserver.service))" \
        kubectl --kubeconfig "$admin" get --raw /readyz
    ca_cert="$APISERVER_DATA/pki/ca.crt"
    install -D -m 0600 "$admin" /root/.kube/config
    if [ -n "$admin_user" ]; then
        home=$(getent passwd "$admin_user" | cut -d: -f6)
        install -D -m 0600 -o "$admin_user" -g "$(id -gn "$admin_user")" "$admin" "$home/.kube/config"
        chown "$admin_user:" "$home/.kube"
    fi

    step "pycontroller-manager"
    changed=0
    unit_changed pycontroller-manager.service && changed=1
    converge pycontroller-manager.service $changed

    step "the kube-dns Service on $cluster_dns, pykube-dns on $node_ip:53"
    kubectl --kubeconfig "$admin" apply -f - <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $cluster_dns
  internalTrafficPolicy: Cluster
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
    # pykube-dns forwards other names to the node's resolvers, and refuses to start without.
    if grep -q '^nameserver' /etc/resolv.conf 2>/dev/null; then
        changed=0
        unit_changed pykube-dns.service && changed=1
        write_file "$CONF/pykube-dns.env" 0644 <<EOF && changed=1
DNS_ARGS="--listen $node_ip:53 --advertise-address $node_ip --hostname-override $node_name"
EOF
        converge pykube-dns.service $changed
    else
        echo "provision.sh: /etc/resolv.conf names no nameserver to forward to: no pykube-dns" >&2
    fi
fi

step "pykubelet $node_name ($node_ip) joining $api_server"
changed=0
unit_changed pykubelet.service && changed=1
write_file "$CONF/kubelet.kubeconfig" 0600 <<EOF && changed=1
apiVersion: v1
kind: Config
clusters:
- name: pycontainer
  cluster:
    server: $api_server
    certificate-authority-data: $(base64 -w0 "$ca_cert")
users:
- name: system:node:$node_name
  user:
    token: $token
contexts:
- name: node
  context: {cluster: pycontainer, user: "system:node:$node_name"}
current-context: node
EOF
write_file "$CONF/kubelet.yaml" 0644 <<EOF && changed=1
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The pods' cgroups: <cgroupRoot>/kubepods/pod<uid>/<container>, beside systemd's slices, not in
# pykubelet.service: systemd would refuse to start the kubelet again in a cgroup whose controllers
# are delegated further (cgroup v2's no-internal-process rule), and would kill the pods with it.
cgroupRoot: /pycontainer
maxPods: 110
clusterDNS: [$cluster_dns]
clusterDomain: cluster.local
EOF
write_file "$CONF/pykubelet.env" 0644 <<EOF && changed=1
KUBELET_ARGS="--hostname-override $node_name --node-ip $node_ip"
EOF
converge pykubelet.service $changed

step "pykube-proxy"
changed=0
unit_changed pykube-proxy.service && changed=1
write_file "$CONF/pykube-proxy.env" 0644 <<EOF && changed=1
PROXY_ARGS="--hostname-override $node_name --cluster-cidr $cluster_cidr"
EOF
converge pykube-proxy.service $changed

step "pycni-hostgw ($route_backend)"
changed=0
unit_changed pycni-hostgw.service && changed=1
write_file "$CONF/pycni-hostgw.env" 0644 <<EOF && changed=1
HOSTGW_ARGS="--node-name $node_name --backend $route_backend --cluster-cidr $cluster_cidr"
EOF
converge pycni-hostgw.service $changed

step "node $node_name Ready"
ready() {
    [ "$(kubectl --kubeconfig "$CONF/kubelet.kubeconfig" get node "$node_name" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_until "$READY_TIMEOUT" "node $node_name Ready (pykubelet $(systemctl is-active pykubelet.service))" ready
# Nothing else here allocates podCIDRs (kube-controller-manager's --allocate-node-cidrs would):
# the other nodes' pycni-hostgw reads this node's from its Node.
if [ "$(kubectl --kubeconfig "$CONF/kubelet.kubeconfig" get node "$node_name" \
        -o 'jsonpath={.spec.podCIDR}')" != "$pod_cidr" ]; then
    kubectl --kubeconfig "$CONF/kubelet.kubeconfig" patch node "$node_name" --type merge \
        -p "{\"spec\": {\"podCIDR\": \"$pod_cidr\", \"podCIDRs\": [\"$pod_cidr\"]}}" >/dev/null
fi
kubectl --kubeconfig "$CONF/kubelet.kubeconfig" get node "$node_name" -o wide
if systemctl is-enabled -q pykube-dns.service 2>/dev/null; then
    step "pykube-dns registered"
    wait_until 60 "pykube-dns's EndpointSlice ($(systemctl is-active pykube-dns.service))" \
        kubectl --kubeconfig "$APISERVER_DATA/admin.kubeconfig" get endpointslice -n kube-system \
        "kube-dns-$node_name"
fi
step "done"
