"""A WeChat open API that is not the simulator, for the fuzz suite's `foreign` mode.

It knows nothing the simulator knows: it refuses every login and phone code with errcode 40029
except the ones it issued itself (`issue_code()`, what wx.login does on a phone), and answers
stable_token with access tokens of its own, refusing any other token (40001). That is what the
API meets when WECHAT_API_BASE names a real WeChat: codes made up by a client (or a fuzzer) are
unknown there. It also answers as a broken WeChat does when told to (`misbehave`): an errcode on
every call, HTTP 500, a body that is not JSON, a hang-up, or any status and body (`answer_with`),
late if asked. tests/api/test_login.py uses it for those.

Loopback only; stop() shuts it down (it is also a context manager).
"""
from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
TOKEN_TTL_SECONDS = 7200
MISBEHAVIOURS = ("errcode", "http_500", "not_json", "hang_up")


class ForeignWeChat:
    def __init__(self, port: int = 0):
        self._lock = threading.Lock()
        self._codes: set[str] = set()
        self._tokens: set[str] = set()
        self._serial = itertools.count(1)
        self.calls: dict[str, int] = {}
        self.scripted: tuple[int, Any, float] | None = None  # (status, body, delay): every call answers it
        self._server = ThreadingHTTPServer((LOOPBACK, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="foreign-wechat", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> "ForeignWeChat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ForeignWeChat":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def issue_code(self) -> str:
        """A code this WeChat will accept once (what wx.login hands the mini-program)."""
        code = f"fw{next(self._serial)}{secrets.token_hex(6)}"
        with self._lock:
            self._codes.add(code)
        return code

    def misbehave(self, kind: str | None, errcode: int = -1) -> None:
        """From now on answer every call as a broken WeChat would (None: behave again)."""
        assert kind is None or kind in MISBEHAVIOURS, kind
        if kind is None:
            self.scripted = None
            return
        self.answer_with(*{"errcode": (200, {"errcode": errcode, "errmsg": "system error"}),
                           "http_500": (500, b"<html>500 Internal Server Error</html>"),
                           "not_json": (200, b"<html>busy</html>"),
                           "hang_up": (0, None)}[kind])

    def answer_with(self, status: int, body: Any, delay_seconds: float = 0.0) -> None:
        """From now on answer every call with this status and body (a dict is sent as JSON, bytes
        as they are); status 0 hangs up without answering."""
        self.scripted = (status, body, delay_seconds)

    # -- the API ----------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.calls[path] = self.calls.get(path, 0) + 1
            scripted = self.scripted
        if scripted:
            status, payload, delay = scripted
            time.sleep(delay)
            return status, payload
        with self._lock:
            if (method, path) == ("GET", "/sns/jscode2session"):
                return 200, self._code_to_session(query.get("js_code", ""))
            if (method, path) == ("POST", "/cgi-bin/stable_token"):
                token = f"foreign-{secrets.token_hex(12)}"
                self._tokens.add(token)
                return 200, {"access_token": token, "expires_in": TOKEN_TTL_SECONDS}
            if query.get("access_token") not in self._tokens:
                return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if (method, path) == ("POST", "/wxa/business/getuserphonenumber"):
                return 200, {"errcode": 40029, "errmsg": "invalid code"}  # it issues no phone codes
            return 404, b"not found"

    def _code_to_session(self, code: str) -> dict[str, Any]:
        if code not in self._codes:
            return {"errcode": 40029, "errmsg": f"invalid code, rid: {secrets.token_hex(4)}"}
        self._codes.discard(code)  # each code works once
        return {"openid": f"o-foreign-{code}", "session_key": secrets.token_urlsafe(16)}


def _handler_for(wechat: ForeignWeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            query = {name: values[0] for name, values in parse_qs(parts.query).items()}
            status, payload = wechat.answer(self.command, parts.path, query, body)
            if status == 0:  # hang up without a word
                self.close_connection = True
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8" if not isinstance(payload, bytes)
                             else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
