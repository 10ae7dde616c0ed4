"""The local API takes a burst of connections: 100 at once all get an HTTP answer (issue 12, item 9).

Chalice's local server listened with HTTPServer's backlog of 5: under a burst Linux dropped
handshakes (clients waited for SYN retransmits) and lost some connections completed with SYN
cookies, whose clients then waited forever or were reset.
"""
from __future__ import annotations

import collections
import errno
import os
import selectors
import socket
import sys
import time

import pytest

from local.api_server import LISTEN_BACKLOG, create_api_server
from local.processes import LOOPBACK, ROOT, free_port, start_process, wait_for_http
from local.stack import build_env

BURST = 100
ANSWER_SECONDS = 20.0  # with room in the backlog all answer within a second or two; lost ones never do
DEAD_ENDPOINT = "http://127.0.0.1:9"  # /health needs no AWS; nothing may reach a real one either


@pytest.fixture(scope="module")
def api_port():
    """`python -m local.stack serve-api` alone, as the stack runs it."""
    port = free_port()
    env = build_env(base=os.environ, caller={}, services={}, overrides={},
                    endpoints={"AWS_ENDPOINT_URL_DYNAMODB": DEAD_ENDPOINT, "AWS_ENDPOINT_URL_SQS": DEAD_ENDPOINT})
    api = start_process("test-burst-api", [sys.executable, "-m", "local.stack", "serve-api", "--port", str(port)],
                        env=env, cwd=ROOT)
    try:
        wait_for_http(f"http://{LOOPBACK}:{port}/health", timeout=60, process=api)
        yield port
    finally:
        api.stop()


def burst_of_health_checks(port: int, count: int, seconds: float) -> collections.Counter:
    """Open `count` connections at once (every SYN sent before any is answered), send GET /health
    on each as soon as it connects, and read until the server closes it.

    Returns how many got each outcome: the HTTP status line, or what went wrong.
    """
    request = f"GET /health HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nConnection: close\r\n\r\n".encode()
    outcomes: collections.Counter = collections.Counter()
    replies: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex((LOOPBACK, port))  # EINPROGRESS: the handshake goes on without us
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + seconds
        try:
            while selector.get_map() and time.monotonic() < deadline:
                for key, events in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    sock = key.fileobj
                    outcome = _step(selector, sock, events, request, replies)
                    if outcome is not None:
                        outcomes[outcome] += 1
                        selector.unregister(sock)
                        sock.close()
        finally:
            for key in list(selector.get_map().values()):
                outcomes["connected, no answer" if key.events == selectors.EVENT_READ else "not connected"] += 1
                key.fileobj.close()
    return outcomes


def _step(selector: selectors.BaseSelector, sock: socket.socket, events: int, request: bytes,
          replies: dict[socket.socket, bytes]) -> str | None:
    """Advance one connection; its outcome once it has one."""
    try:
        if events & selectors.EVENT_WRITE:  # connected (or failed to)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                return f"connect: {errno.errorcode.get(error, error)}"
            sock.sendall(request)  # a few dozen bytes: fits the empty send buffer at once
            selector.modify(sock, selectors.EVENT_READ)
            return None
        chunk = sock.recv(65536)
    except OSError as error:
        return type(error).__name__  # ConnectionResetError, ...: no HTTP answer
    if chunk:
        replies[sock] = replies.get(sock, b"") + chunk
        return None
    reply = replies.pop(sock, b"")
    return reply.split(b"\r\n", 1)[0].decode("latin-1") or "closed without an answer"


@pytest.mark.e2e
def test_a_burst_of_100_connections_all_get_an_answer(api_port):
    outcomes = burst_of_health_checks(api_port, BURST, ANSWER_SECONDS)
    assert outcomes == {"HTTP/1.1 200 OK": BURST}, dict(outcomes)


def test_the_api_server_is_chalices_own_with_a_deeper_backlog():
    from chalice import Chalice, local
    from chalice.config import Config

    app = Chalice(app_name="burst-test")
    server = create_api_server(app, Config.create(), LOOPBACK, 0)
    try:
        assert isinstance(server.server, local.ThreadedHTTPServer)  # a thread per connection, as before
        assert server.server.request_queue_size == LISTEN_BACKLOG >= 5 * BURST
        assert isinstance(app, local.LocalChalice)  # what chalice.local.create_local_server also does
    finally:
        server.server.server_close()
