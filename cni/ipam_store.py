"""host-local's allocation store, in the reference plugin's on-disk layout so that either plugin
can read the other's: <dataDir>/<network>/<ip> holds "<container id>\\r\\n<ifname>",
last_reserved_ip.<range set index> the last address handed out, and every change happens under
flock(2) of <dataDir>/<network>/lock."""
from __future__ import annotations

import fcntl
import ipaddress
import os

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LAST_IP_PREFIX = "last_reserved_ip."
LINE_BREAK = "\r\n"


class Store:
    """Use as a context manager: holds the network's lock while open."""

    __slots__ = ("dir", "_lock_fd")

    def __init__(self, network: str, data_dir: str = "") -> None:
        self.dir = os.path.join(data_dir or DEFAULT_DATA_DIR, network)
        self._lock_fd = -1

    def __enter__(self) -> "Store":
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        self._lock_fd = os.open(os.path.join(self.dir, "lock"),
                                os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._lock_fd)  # closing drops the flock
        self._lock_fd = -1

    def reserve(self, container_id: str, ifname: str, address, range_index: int) -> bool:
        """Claims `address`; False if someone holds it already."""
        path = os.path.join(self.dir, str(address))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, f"{container_id.strip()}{LINE_BREAK}{ifname}".encode())
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        # os-level calls under the lock: each system call of a file object (fstat, ioctl,
        # lseek) is one more wait for the interpreter lock among the kubelet's pod workers
        fd = os.open(os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_index}"),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(address).encode())
        finally:
            os.close(fd)
        return True

    def last_reserved(self, range_index: int):
        try:
            fd = os.open(os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_index}"),
                         os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return ipaddress.ip_address(os.read(fd, 64).decode().strip())
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)

    def allocations(self) -> dict:
        """{address: (container id, ifname)} of every allocation (ifname '' for the old format
        that held the container ID only)."""
        out = {}
        for name in os.listdir(self.dir):
            try:
                address = ipaddress.ip_address(name)
            except ValueError:
                continue  # lock, last_reserved_ip.N
            # os-level: a file object's open costs four system calls more (fstat, ioctl,
            # lseek), for each allocation of the network, on every ADD's duplicate check
            try:
                fd = os.open(os.path.join(self.dir, name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
            owner, _, ifname = data.decode().strip().partition(LINE_BREAK)
            out[address] = (owner.strip(), ifname.strip())
        return out

    def find(self, container_id: str, ifname: str) -> list:
        return [a for a, (cid, ifn) in self.allocations().items()
                if cid == container_id and ifn in (ifname, "")]

    def release(self, address) -> None:
        try:
            os.unlink(os.path.join(self.dir, str(address)))
        except FileNotFoundError:
            pass
