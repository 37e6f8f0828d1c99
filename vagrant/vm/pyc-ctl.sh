#!/bin/sh
# Runs in a test VM booted with `pyc.ctl` (see image.sh): the host's script in, its exit status out.
mkdir -p /mnt/ctl
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 pyc-ctl /mnt/ctl; then
    /mnt/ctl/run.sh > /mnt/ctl/out.log 2>&1
    echo $? > /mnt/ctl/rc
    sync
fi
systemctl poweroff
