#!/bin/bash
# vagrant/vm/box.sh IMAGE.qcow2 OUT.box [KERNEL_VERSION]: a vagrant-libvirt box from an image of
# image.sh, for this host only: the box boots the host's kernel and initrd (from /boot) with QEMU
# software emulation (driver "qemu"), and its management network is 198.18.255.0/24.
set -euo pipefail
image=${1:?usage: box.sh IMAGE.qcow2 OUT.box [KERNEL_VERSION]}
out=${2:?usage: box.sh IMAGE.qcow2 OUT.box [KERNEL_VERSION]}
kver=${3:-$(ls /boot/vmlinuz-* | sed 's|/boot/vmlinuz-||' | sort -V | tail -1)}
work=$(mktemp -d /var/tmp/pyc-box.XXXXXX)
trap 'rm -rf "$work"' EXIT

cp "$image" "$work/box.img"
size=$(qemu-img info --output=json "$image" | python3 -c 'import json,sys; print(-(-json.load(sys.stdin)["virtual-size"] // 2**30))')
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$size" > "$work/metadata.json"
cat > "$work/Vagrantfile" <<VAGRANTFILE
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
    libvirt.kernel = "/boot/vmlinuz-$kver"
    libvirt.initrd = "/boot/initrd.img-$kver"
    libvirt.cmd_line = "root=/dev/vda rw console=ttyS0"
    libvirt.disk_bus = "virtio"
    libvirt.management_network_address = "198.18.255.0/24"
  end
end
VAGRANTFILE
tar -C "$work" -cf "$out.tmp" metadata.json Vagrantfile box.img
mv "$out.tmp" "$out"
