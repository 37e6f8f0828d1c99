"""fsGroup on a volume's directory (the kubelet's SetVolumeOwnership): every file and
directory gets the group and group read (write too unless the volume is read-only, as
configMap, secret, downwardAPI and projected are), execute where the owner has it, and the
directories setgid so that what is created later inherits the group."""
from __future__ import annotations

import os
import stat


def _own(path: str, gid: int, is_dir: bool, readonly: bool) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    os.chown(path, -1, gid)
    mode = stat.S_IMODE(st.st_mode) | stat.S_IRGRP
    if not readonly:
        mode |= stat.S_IWGRP
    if is_dir:
        mode |= stat.S_IXGRP | stat.S_ISGID
    elif st.st_mode & stat.S_IXUSR:
        mode |= stat.S_IXGRP
    os.chmod(path, mode)


def apply_fs_group(path: str, gid: int, readonly: bool) -> None:
    """Gives the tree at path to group gid (symlinks are left as they are)."""
    _own(path, gid, True, readonly)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames:
            _own(os.path.join(dirpath, name), gid, True, readonly)
        for name in filenames:
            _own(os.path.join(dirpath, name), gid, False, readonly)
