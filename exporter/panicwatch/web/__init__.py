"""The HTTP side of `serve`: the application (app), the command that starts it with the
background threads (serve), the server on a bounded pool with deadlines (http_server, pool,
socket_io), and node_exporter's web config file (config, config_watch, tls, auth)."""
