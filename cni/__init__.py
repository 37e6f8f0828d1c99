"""CNI: our plugins (bridge, host-local, loopback, portmap; each one module and one console
script) and the invoker library that runs any CNI plugin from a network configuration list."""
