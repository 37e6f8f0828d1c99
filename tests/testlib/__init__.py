"""What the test directories (and bench/) share: polling, processes, the pyapiserver process,
kubeconfigs, the reference binaries, the busybox image store, and the cleanup of what a CRI
runtime's state directory leaves. A package on the path of every test (tests/ itself), so
that no test directory puts another one on sys.path to borrow its helpers."""
