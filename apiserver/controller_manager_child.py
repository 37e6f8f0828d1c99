"""`pyapiserver --controllers`: the controller manager run beside the API server as a child
process, as k3s runs kube-controller-manager with its server. A child and not a thread: the
controllers/ package sits below apiserver/ in the import order, and a manager that loses its
lease exits, as kube-controller-manager does; the server then starts it again (after 1 s,
doubling to 30 s while it keeps failing) until the server stops, which ends it with SIGTERM (as
does the server's death, whatever the signal)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

# The child gets SIGTERM when the server dies, even by SIGKILL (PR_SET_PDEATHSIG), and does not
# start at all when the server is already gone; then it is pycontroller-manager.
_BOOT = ("import os, signal, sys, prctl\n"
         "prctl.set_pdeathsig(signal.SIGTERM)\n"
         "if os.getppid() != int(sys.argv.pop(1)):\n"
         "    sys.exit(0)\n"
         "from controllers.cli import main\n"
         "sys.argv[0] = 'pycontroller-manager'\n"
         "sys.exit(main(sys.argv[1:]))\n")
RESTART_START = 1.0
RESTART_MAX = 30.0
STOP_TIMEOUT = 20.0
HEALTHY_AFTER = 60.0  # a child that ran this long restarts without the back-off it had


class ControllerManagerChild:
    def __init__(self, controllers: str, kubeconfig: str, extra_args: list[str]) -> None:
        self.argv = [sys.executable, "-c", _BOOT, str(os.getpid()), "--kubeconfig", kubeconfig,
                     f"--controllers={controllers}", *extra_args]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._supervise, name="controller-manager",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        delay = RESTART_START
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                # Its log (stderr) goes where the server's own stderr goes.
                self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL)
            started = time.monotonic()
            code = self._proc.wait()
            if self._stop.is_set():
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                delay = RESTART_START
            print(f"pyapiserver: controller manager exited with {code}; restarting in "
                  f"{delay:.0f}s", file=sys.stderr, flush=True)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX)

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(STOP_TIMEOUT)
