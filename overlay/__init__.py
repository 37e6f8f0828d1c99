"""Images and root filesystems: mount(2), and (to come) the blob store, image import and pull,
layer unpacking and overlayfs snapshots."""
