#!/bin/bash
# vagrant/vm/libvirt-up.sh [IMAGE.qcow2]: once, by hand, as root: a real `vagrant up` of
# vagrant/Vagrantfile with vagrant-libvirt, on a box built from image.sh's image (built now unless
# given), provisioning offline from a wheelhouse. For a host without systemd and where nothing may
# leave the machine: virtlogd and libvirtd are started here, inside a network namespace of their
# own (the management bridge, its dnsmasq and NAT rules never touch the host's network) and a
# private mount namespace (their /etc/libvirt, /run, /var/{lib,log,cache}/libvirt, /etc/passwd are
# temporary),
# with a qemu.conf that makes libvirt create no cgroups. Everything started is stopped at the end.
# PYCONTAINER_NODES (default 1) nodes; prints what each stage took.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
repo=$(dirname "$(dirname "$here")")
BOX=pycontainer/debian12-local

if [ "${1:-}" = --inside ]; then
    work=$2
    stop() {
        local rc=$?
        if [ $rc != 0 ] && [ -S /run/libvirt/libvirt-sock ]; then   # what the domains were doing
            virsh list --all
            tail -n 15 /var/log/libvirt/qemu/*.log
        fi
        for p in "$work"/libvirtd.pid "$work"/virtlogd.pid; do
            [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
        done
        true
    }
    trap stop EXIT
    mount -t tmpfs tmpfs /run
    for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
        mkdir -p "$work/libvirt$d"
        mount --bind "$work/libvirt$d" "$d"
    done
    # libvirtd looks its default QEMU user up before it reads qemu.conf: a user in this
    # namespace's view of /etc/passwd only.
    cp /etc/passwd "$work/passwd"
    cp /etc/group "$work/group"
    echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >> "$work/passwd"
    printf 'libvirt-qemu:x:64055:\nkvm:x:64056:\n' >> "$work/group"
    mount --bind "$work/passwd" /etc/passwd
    mount --bind "$work/group" /etc/group
    cat > /etc/libvirt/qemu.conf <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
CONF
    ip link set lo up
    virtlogd -d -p "$work/virtlogd.pid"
    libvirtd -d -p "$work/libvirtd.pid"
    for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.2; done
    export VAGRANT_HOME=$work/vagrant.d VAGRANT_DOTFILE_PATH=$work/dotfile
    export VAGRANT_DEFAULT_PROVIDER=libvirt PYCONTAINER_BOX=$BOX PYCONTAINER_WHEELHOUSE=$work/wheels
    vagrant box add -f --name "$BOX" "$work/pycontainer.box" >/dev/null
    cd "$repo/vagrant"
    start=$SECONDS
    vagrant up --no-parallel
    echo "figure vagrant_up $((SECONDS - start))"
    vagrant ssh node1 -c 'kubectl get nodes -o wide'
    vagrant ssh node1 -c 'kubectl run hello --image=busybox:static --restart=Never -- sh -c "echo hello from \$(hostname); sleep 3600" &&
        kubectl wait --for=jsonpath={.status.phase}=Running pod/hello --timeout=300s &&
        kubectl get pods -o wide && kubectl logs hello'
    echo "figure pod_running $((SECONDS - start))"
    vagrant destroy -f
    virsh net-list --all
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "libvirt-up.sh: run as root" >&2; exit 1; }
# The run's cluster secrets go where the Vagrantfile keeps them, and are removed at the end.
[ ! -e "$repo/vagrant/.cluster" ] ||
    { echo "libvirt-up.sh: $repo/vagrant/.cluster exists (a cluster of yours?): move it away first" >&2; exit 1; }
packages=(vagrant vagrant-libvirt libvirt-daemon libvirt-clients dnsmasq-base debootstrap qemu-utils
          qemu-system-x86 linux-image-amd64 rsync)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} = 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

work=$(mktemp -d /var/tmp/pyc-libvirt.XXXXXX)
ns=pyc-vagrant-$$
# The mount points of libvirt's directories: made here if absent, and removed at the end.
made=()
for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
    [ -d "$d" ] || { mkdir -p "$d"; made+=("$d"); }
done
cleanup() {
    # Everything in the namespace was started by this script: libvirtd, virtlogd, dnsmasq, QEMU.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    [ ${#made[@]} = 0 ] || rmdir "${made[@]}" 2>/dev/null || true
    rm -rf "$work" "$repo/vagrant/.cluster"
}
trap cleanup EXIT

start=$SECONDS
image=${1:-}
if [ -z "$image" ]; then
    image=$work/image.qcow2
    "$here/image.sh" "$image"
    echo "figure image $((SECONDS - start))"
fi
start=$SECONDS
"$here/box.sh" "$image" "$work/pycontainer.box"
echo "figure box $((SECONDS - start))"
start=$SECONDS
mkdir "$work/src"   # a clean copy: no stale build/ in the wheel
tar -C "$repo" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' \
    --exclude=vagrant/.cluster -cf - . | tar -C "$work/src" -xf -
python=$repo/.venv/bin/python
[ -x "$python" ] || python=python3
"$python" -m pip wheel -q --disable-pip-version-check --use-pep517 --wheel-dir "$work/wheels" "$work/src[node]"
echo "figure wheelhouse $((SECONDS - start))"

ip netns add "$ns"
ip netns exec "$ns" unshare --mount --propagation private "$0" --inside "$work"
