"""The one door to the kernel: `syscalls.Syscalls` (one cffi module, `_native`, built from
`_build.py`), the numbers it takes (`constants`), and `fake.RecordingSyscalls`, which stands in
for it in root-free unit tests."""
