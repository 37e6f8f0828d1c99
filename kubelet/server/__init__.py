"""The kubelet's HTTPS endpoint (pkg/kubelet/server): authentication and the /containerLogs
handler (server), reading CRI log files for it (log_reader), and its serving certificate
(serving_cert)."""
