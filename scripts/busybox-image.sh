#!/bin/bash
# busybox-image.sh DIR: an OCI image layout of one single-layer image, the root filesystem of
# busybox-rootfs.sh (Debian's busybox-static), so a node has an image without any registry:
#   pycontainer image import DIR --name busybox:static
# The layer is reproducible (sorted, owner 0, mtime 0): the same busybox gives the same digests.
set -euo pipefail
dir=${1:?usage: busybox-image.sh DIR}
here=$(dirname "$(readlink -f "$0")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$here/busybox-rootfs.sh" "$work/rootfs"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$work/rootfs" -cf "$work/layer.tar" .

mkdir -p "$dir/blobs/sha256"
# blob FILE -> prints "sha256:<hex> <size>" and stores FILE under blobs/sha256/<hex>
blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    cp "$1" "$dir/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}
read -r layer_digest layer_size < <(blob "$work/layer.tar")
printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$(dpkg --print-architecture 2>/dev/null || echo amd64)" "$layer_digest" > "$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s}]}' \
    "$manifest_digest" "$manifest_size" > "$dir/index.json"
