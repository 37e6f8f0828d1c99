"""What the API server proxies to kubelets: pods/log, and the upgraded connections of
pods/exec, attach and portforward."""
