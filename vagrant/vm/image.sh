#!/bin/bash
# vagrant/vm/image.sh OUT.qcow2 [KERNEL_VERSION]: a small Debian 12 VM image, built with debootstrap
# from apt's configured Debian mirror, for the host's own kernel (from linux-image-amd64, booted
# with -kernel/-initrd; its modules are copied in). It holds every apt package that
# vagrant/provision.sh installs with --wheelhouse, so provisioning needs no network.
#
# Used by the VM test stage (tests/vagrant/test_vagrant_vm.py) and for a Vagrant box
# (vagrant/vm/box.sh): a `vagrant` user with Vagrant's insecure key and password-less sudo,
# sshd, DHCP on every Ethernet link with systemd-networkd. A boot whose kernel command line has
# `pyc.ctl` mounts the 9p share tagged pyc-ctl, runs its executable run.sh, writes rc beside it and powers off.
set -euo pipefail
out=${1:?usage: image.sh OUT.qcow2 [KERNEL_VERSION]}
kver=${2:-$(ls /boot/vmlinuz-* | sed 's|/boot/vmlinuz-||' | sort -V | tail -1)}
here=$(dirname "$(readlink -f "$0")")
DEB_CACHE=${PYCONTAINER_DEB_CACHE:-/var/cache/pycontainer/debootstrap}
SIZE=4G
PACKAGES=(
    systemd systemd-sysv udev dbus kmod procps iproute2    # a systemd guest
    python3 python3-venv python3-pip nftables iptables busybox-static ca-certificates  # provision.sh
    openssh-server sudo rsync                               # a Vagrant box
)
# Kernel modules the guest can load: 9p, overlayfs, bridges, veths, netfilter, virtio devices.
MODULE_DIRS=(kernel/arch kernel/crypto kernel/lib kernel/fs kernel/net kernel/block kernel/mm
             kernel/drivers/virtio kernel/drivers/block kernel/drivers/char/hw_random)

[ "$(id -u)" = 0 ] || { echo "image.sh: run as root" >&2; exit 1; }
[ -d "/lib/modules/$kver" ] || { echo "image.sh: no /lib/modules/$kver" >&2; exit 1; }
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(LABEL)' |
         awk '$2 == "bookworm" && $3 == "Debian" {print $1; exit}')
[ -n "$mirror" ] || { echo "image.sh: apt has no Debian bookworm source" >&2; exit 1; }
key=$(find /usr/share/rubygems-integration /opt/vagrant -path '*/keys/vagrant.pub' 2>/dev/null |
      head -1 || true)
[ -n "$key" ] || { echo "image.sh: Vagrant's insecure key (vagrant.pub) not found: apt install vagrant" >&2; exit 1; }

work=$(mktemp -d /var/tmp/pyc-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$DEB_CACHE"
debootstrap --variant=minbase --cache-dir="$DEB_CACHE" \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }

echo pycvm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 pycvm\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
: > "$root/etc/fstab"
chroot "$root" passwd -qd root                     # console login, for debugging a test VM
chroot "$root" useradd -m -s /bin/bash vagrant
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$key" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/80-dhcp.network"
chroot "$root" systemctl enable -q systemd-networkd
# Every machine made from this image gets host keys and a machine id of its own at its first
# boot (with one id, two VMs are one DHCP client: the second one's lease takes the first one's).
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"
chroot "$root" systemctl mask -q systemd-firstboot.service   # a first boot, but no questions on the console
mkdir -p "$root/etc/systemd/system/ssh.service.d"
# Before Debian's own `sshd -t`, which fails without host keys: the list is replaced, not appended to.
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > "$root/etc/systemd/system/ssh.service.d/host-keys.conf"
install -m 0755 "$here/pyc-ctl.sh" "$root/usr/local/sbin/pyc-ctl"
# Type=exec, not oneshot: a oneshot unit ordered after multi-user.target keeps the boot job
# running, and `systemctl is-system-running --wait` inside the script would wait for itself.
cat > "$root/etc/systemd/system/pyc-ctl.service" <<'UNIT'
[Unit]
Description=Run the script of the 9p share pyc-ctl, then power off
ConditionKernelCommandLine=pyc.ctl
After=multi-user.target

[Service]
Type=exec
ExecStart=/usr/local/sbin/pyc-ctl
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable -q pyc-ctl.service

for d in "${MODULE_DIRS[@]}"; do
    mkdir -p "$root/lib/modules/$kver/$d"
    cp -a "/lib/modules/$kver/$d/." "$root/lib/modules/$kver/$d/"
done
mkdir -p "$root/lib/modules/$kver/kernel/drivers/net"
cp -a /lib/modules/"$kver"/kernel/drivers/net/*.ko "$root/lib/modules/$kver/kernel/drivers/net/"
cp -a /lib/modules/"$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/log/*.log

truncate -s "$SIZE" "$work/root.img"
mkfs.ext4 -q -L pyc-root -d "$root" "$work/root.img"
qemu-img convert -c -O qcow2 "$work/root.img" "$out.tmp"
mv "$out.tmp" "$out"
