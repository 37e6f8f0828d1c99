"""Which NAT backend a host uses: nftables where libnftables is installed, else iptables (both
rule sets named and shaped as netns.nat describes)."""
from __future__ import annotations


def host_backend(choice: str = ""):
    """The NAT backend to use: `choice` ('nftables' or 'iptables') if given, else nftables when
    libnftables is installed, else iptables. Imported on demand: a plugin loads one of them."""
    from netns import nftables

    if choice == "nftables" or (not choice and nftables.available()):
        from netns.nat_nftables import NftBackend

        return NftBackend()
    if choice in ("", "iptables"):
        from netns.nat_iptables import IptablesBackend

        return IptablesBackend()
    raise ValueError(f"unknown NAT backend {choice!r} (nftables or iptables)")
