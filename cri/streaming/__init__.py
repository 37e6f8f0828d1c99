"""The streaming server of exec, attach and port-forward: the protocols kubectl and the API
server speak (WebSocket channel protocols v1-v5 and SPDY/3.1 remotecommand; SPDY/3.1 and
WebSocket port-forward, and SPDY tunnelled in WebSocket as kubectl >= 1.31 sends it), over an
HTTP connection that a server hands over after reading the request's head.

One implementation, used by the kubelet's HTTPS server (/exec, /attach, /portForward) and by
the CRI's Exec, Attach and PortForward URLs. What runs the command, attaches to the container or
dials the port is a backend (cri.streaming.backend), so the protocols know nothing of shims or
namespaces.

Entry points: remotecommand.options + remotecommand.serve (exec, attach), portforward.serve.
Beneath them: upgrade (what both do alike: the protocol agreed on, the WebSocket handshake, the
connection served), channels (the WebSocket channel framing both speak), websocket (RFC 6455 by
wsproto), spdy (our SPDY/3.1 framer and server connection), loop (one I/O thread per connection,
TLS-safe), status (the error stream's Status), handover (taking the connection from
http.server)."""
