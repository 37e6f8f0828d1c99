"""Images and root filesystems: a content-addressed store (store, blobs, images, gc), image
import (importer) and registry pull (pull, registry, docker_auth), layer unpacking with
whiteouts (unpack, layers), overlayfs snapshots (snapshots, mount), and the image config ->
runtime config conversion (image_config)."""
