"""HTTP plumbing: request/response objects, a tiny router and the server.

Route modules (``open_api``, ``dev_api``, later WeChat Pay v2/v3) each expose
``register(router)``.  Routes added with a ``name`` are "API endpoints": the
router counts their calls and applies injected faults before the handler
runs, so new modules get ``/__sim/stats`` and ``/__sim/faults`` for free.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import sys
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from .state import SimState

MAX_BODY = 1024 * 1024  # 1 MiB; WeChat rejects far smaller bodies anyway
MAX_DISCARD = 16 * MAX_BODY  # beyond this we just hang up on the client
JSON_TYPE = "application/json; charset=utf-8"


class BadBody(Exception):
    """Body is not the JSON object the endpoint expects (-> errcode 47001)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]          # first value of each query parameter
    headers: Any                   # http.client.HTTPMessage (case-insensitive)
    body: bytes
    state: SimState
    params: dict[str, str] = field(default_factory=dict)  # from {name} in the route
    target: str = ""               # raw request target as sent ("/path?query"), for signatures

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadBody(str(exc)) from exc
        if not isinstance(value, dict):
            raise BadBody("body must be a JSON object")
        return value


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200) -> Response:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(status=status, body=body)


def wx_error(errcode: int, errmsg: str, status: int = 200) -> Response:
    """WeChat reports errors as HTTP 200 + {"errcode", "errmsg"}."""
    return json_response({"errcode": errcode, "errmsg": errmsg}, status)


def text_response(text: str, status: int, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status=status, body=text.encode("utf-8"), content_type=content_type)


Handler = Callable[[Request], Response]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    name: str | None


class Router:
    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self.not_found: Handler = lambda req: wx_error(40066, "invalid url", 404)

    def add(self, method: str, path: str, handler: Handler, name: str | None = None) -> None:
        """Register ``handler``; ``{param}`` segments match one path segment."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self._routes.append(_Route(method.upper(), re.compile(f"^{regex}$"), handler, name))

    def endpoint_names(self) -> list[str]:
        return sorted({r.name for r in self._routes if r.name})

    def dispatch(self, req: Request) -> Response:
        allowed: set[str] = set()
        for route in self._routes:
            match = route.pattern.match(req.path)
            if not match:
                continue
            allowed.add(route.method)
            if route.method != req.method:
                continue
            req.params = match.groupdict()
            if route.name:
                req.state.count_call(route.name)
                faulted = _apply_fault(req.state, route.name)
                if faulted is not None:
                    return faulted
            return route.handler(req)
        if allowed:
            # WeChat's own codes for using the wrong HTTP method.
            if "POST" in allowed:
                return wx_error(43002, "require POST method")
            return wx_error(43001, "require GET method")
        return self.not_found(req)


def _apply_fault(state: SimState, endpoint: str) -> Response | None:
    fault = state.take_fault(endpoint)
    if fault is None:
        return None
    if fault.delay_ms > 0:
        # Event.wait instead of sleep: a stopping simulator ends the delay.
        state.stopping.wait(fault.delay_ms / 1000.0)
    if fault.http_status != 200:
        return text_response(f"simulated upstream failure: {fault.errmsg}", fault.http_status)
    if fault.errcode in (None, 0):
        return None  # pure latency fault: answer normally after the delay
    return wx_error(fault.errcode, fault.errmsg)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive so pooled clients (requests/urllib3) behave as
    # against the real API; every response therefore carries Content-Length.
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections must not pin threads forever
    # Headers and body go out as two writes; without TCP_NODELAY, Nagle plus
    # delayed ACK adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "wechat-sim"

    server: "SimHTTPServer"

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        try:
            response = self._route()
        except Exception:  # never let bad input kill the connection thread
            traceback.print_exc(file=sys.stderr)
            response = wx_error(-1, "system error")
        self._send(response)

    def _route(self) -> Response:
        body = self._read_body()
        if isinstance(body, Response):
            return body
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(self.command, split.path, query, self.headers, body, self.server.state,
                      target=self.path)
        try:
            return self.server.router.dispatch(req)
        except BadBody:
            return wx_error(47001, "data format error")

    def _read_body(self) -> bytes | Response:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return text_response("bad Content-Length", 400)
        if length < 0:
            self.close_connection = True
            return text_response("bad Content-Length", 400)
        if length > MAX_BODY:
            self._discard(length)
            self.close_connection = True
            return text_response("request entity too large", 413)
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        """Swallow a refused body (up to a cap) so the client, still sending,
        gets to read our 413 instead of a connection reset."""
        remaining = min(length, MAX_DISCARD)
        while remaining > 0:  # bounded: shrinks by >= 1 byte per pass or stops
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)

    def _read_chunked(self) -> bytes | Response:
        chunks: list[bytes] = []
        total = 0
        while True:  # bounded: each pass consumes input and total is capped
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                return text_response("bad chunk", 400)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # discard trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                return text_response("request entity too large", 413)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after each chunk

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # client gave up (e.g. its timeout)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.state.knobs.verbose:
            super().log_message(format, *args)


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Default True would make server_close() join threads parked on idle
    # keep-alive sockets, i.e. hang stop() for up to the socket timeout.
    block_on_close = False

    def __init__(self, address: tuple[str, int], router: Router, state: SimState) -> None:
        self.router = router
        self.state = state
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS getfqdn(), which can stall
        # start-up for seconds on some hosts; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # client hung up or idled out: normal, not worth a traceback
        super().handle_error(request, client_address)
