"""What a component's process shares, as k8s.io/component-base: its --config file, its log
set-up, an HTTP server of its own."""
