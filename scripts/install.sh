#!/bin/bash
# Installs everything pycontainer needs on a fresh Debian/Ubuntu machine, as root: the apt
# packages, a virtualenv ($PYCONTAINER_VENV, default .venv in this checkout) and the package in it.
# Idempotent: a second run only re-installs the package.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
VENV=${PYCONTAINER_VENV:-$PWD/.venv}

APT_PACKAGES=(
    python3 python3-venv python3-dev build-essential  # the virtualenv; cffi and python-prctl compile
    libcap-dev                                         # python-prctl
    libseccomp-dev                                     # the runtime's seccomp filters (cffi)
    runc                                               # the reference runtime, for bench/
    podman conmon containerd                           # real clients of the runtime (tests)
    busybox-static                                     # root filesystems for demos and tests
    nftables                                           # netns NAT rules (libnftables), issue 6
    iptables containernetworking-plugins               # reference CNI plugins for cni tests/bench
    linux-image-amd64 qemu-system-x86                  # cgroups: the cgroup v2 VM test stage (virtme-ng)
    docker-registry skopeo apache2-utils openssl       # overlay tests: a real registry, pushes, htpasswd, token keys
    vagrant debootstrap qemu-utils                     # vagrant: `vagrant validate`, the VM image of its test stage
    golang-go make                                     # tests/conformance: builds the OCI runtime-tools suite
    dnsutils                                           # tests/dns: dig, the reference DNS client
    etcd-server                                        # apiserver on etcd (issue 25): tests run their own members
)

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    # Another apt (unattended-upgrades, a parallel job) may hold the lock for a while.
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
    # The package starts a registry on :5000 for everyone; the overlay tests run their own.
    if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    # Likewise etcd's member on :2379: the apiserver tests start their own clusters.
    if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
        if command -v systemctl >/dev/null; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
        update-rc.d etcd disable >/dev/null 2>&1 || true
    fi
fi

[ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]" --config-settings editable_mode=compat
# pip writes `#!<venv>/bin/python3` whatever the script says; bin/pycontainer wants -IS (no
# PYTHON* variables, no site: it finds the venv's packages itself), 3 ms of every command.
sed -i "1s|^#!\(/.*python[0-9.]*\)\$|#!\1 -IS|" "$VENV/bin/pycontainer"
# The CNI plugins too: one starts for every command on every pod, and site is a fifth of its
# VERSION. A plugin needs only the folder that holds the cni package, written in here (-I also
# keeps a caller's PYTHON* variables out of a plugin that runs as root).
"$VENV/bin/python" - "$VENV"/bin/pycni-{bridge,host-local,loopback,portmap} <<'PY'
import os
import sys

import cni

home = os.path.dirname(os.path.dirname(os.path.abspath(cni.__file__)))
for script in sys.argv[1:]:
    with open(script) as f:
        shebang, rest = f.readline().rstrip("\n"), f.read()
    if not shebang.endswith(" -IS"):  # pip rewrote it: a bare `#!<venv>/bin/python3`
        with open(script, "w") as f:
            f.write(f"{shebang} -IS\nimport sys; sys.path.append({home!r})\n{rest}")
PY
# `sudo pycontainer ...` as with runc; the venv stays where it is.
ln -sf "$VENV/bin/pycontainer" /usr/local/sbin/pycontainer
ln -sf "$VENV/bin/pycontainer-shim" /usr/local/sbin/pycontainer-shim  # the shim (issue 4)
# Bytecode now, not at the first run: `pycontainer` start-up time is a feature.
"$VENV/bin/python" -m compileall -q -j 0 -x '/(\.venv|\.git|build)/' . >/dev/null
