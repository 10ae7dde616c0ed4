"""The local API's HTTP server: Chalice's local server with a listen backlog for bursts.

chalice.local serves on http.server.HTTPServer, whose listen backlog (`request_queue_size`) is 5.
A burst of buyers (50 at once in a flash sale, `make hammer`) overflows it at once: Linux drops
the handshakes it has no room for, so clients wait for SYN retransmits (1 s, then 3 s, ...), and
connections the kernel completed with SYN cookies can be lost altogether, leaving the client
waiting for an answer that never comes, or reset. A backlog of 512 takes a few hundred
connections at once. The kernel caps it at net.core.somaxconn (4096 since Linux 5.4, 128 before).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from chalice import local

LISTEN_BACKLOG = 512
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


class BurstHTTPServer(local.ThreadedHTTPServer):
    """Chalice's threaded local server (a thread per connection), with a deeper accept queue."""

    request_queue_size = LISTEN_BACKLOG


def create_api_server(app: Any, config: Any, host: str, port: int) -> local.LocalDevServer:
    """What chalice.local.create_local_server does, with BurstHTTPServer as the server class.

    LocalDevServer takes the server class as a parameter, but create_local_server does not pass
    one through; so its two other lines are repeated here: they make the app a LocalChalice
    (local-mode authorizers and Lambda context) before the server wraps it.
    """
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app, config, host, port, server_cls=BurstHTTPServer)


def effective_backlog(requested: int = LISTEN_BACKLOG) -> int:
    """The backlog the kernel grants: `requested`, capped at somaxconn where Linux says."""
    try:
        return min(requested, int(SOMAXCONN.read_text()))
    except (OSError, ValueError):
        return requested
