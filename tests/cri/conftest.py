"""Fixtures of the CRI daemon's tests (tests/cri): names prefixed cri_ so that they never clash
with tests/kubelet's."""
