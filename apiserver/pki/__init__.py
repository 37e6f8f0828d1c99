"""The server's keys and what it signs with them: the CA and certificates (certificates.py),
the admin kubeconfig, and service account tokens."""
