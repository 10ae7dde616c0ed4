"""Local WeChat platform simulator (open-API part) for tests and offline dev.

    sim = start_simulator()            # 127.0.0.1, free port, daemon thread
    ...point the backend's WeChat base URL at sim.base_url...
    sim.stop()

Knobs (keyword arguments): token_ttl, token_grace_s, code2session_per_minute,
verbose, subscribe_quota (subscribe/send answers 43101 without a recorded acceptance:
subscribe_quota.py), clock (a zero-argument callable returning epoch seconds, so tests
can move time without sleeping).

WeChat Pay knobs (see pay_keys.PayConfig): mchid, merchant_cert (the merchant
certificate or public key PEM/path that verifies our v3 requests),
merchant_serial, apiv3_key (32 bytes), api_key (v2), platform_key /
platform_cert / platform_cert_serial, pubkey_key / public_key_id (the
"PUB_KEY_ID_..." key), sign_with ("cert" | "pubkey"), pay_keys_dir (load or
create every key file there), notify_retry_delays_ms, notify_timeout_s,
refund_delay_ms (None: refunds stay PROCESSING until /__sim/pay/refund-notify),
refund_notify_url (default for refunds that name none).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any, Callable, Iterable

from . import dev_api, logistics, open_api, pay_dev_api, pay_v2, pay_v3, profit_sharing, shipping, subscribe_quota
from . import transfers, wxacode
from .pay_keys import PAY_KNOBS, PayConfig, ensure_platform_keys, generate_merchant_keys
from .server import Router, SimHTTPServer
from .state import SimState

__all__ = ["Simulator", "start_simulator", "build_router", "DEFAULT_REGISTRARS",
           "generate_merchant_keys", "ensure_platform_keys"]

# Each module contributes routes via register(router).
DEFAULT_REGISTRARS: list[Callable[[Router], None]] = [
    open_api.register, dev_api.register, pay_v3.register, pay_v2.register, pay_dev_api.register,
    shipping.register, subscribe_quota.register, logistics.register, transfers.register, profit_sharing.register,
    wxacode.register,
]


def build_router(registrars: Iterable[Callable[[Router], None]] | None = None) -> Router:
    router = Router()
    for register in registrars if registrars is not None else DEFAULT_REGISTRARS:
        register(router)
    return router


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Simulator:
    """A running simulator; create it with ``start_simulator``."""

    def __init__(self, server: SimHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.state: SimState = server.state
        self.router: Router = server.router
        self.host, self.port = server.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Shut the server down and free the port; safe to call repeatedly."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.state.stopping.set()  # cut short any injected delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        for hook in list(self.state.stop_hooks):  # e.g. join WeChat Pay notify threads
            hook()

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    apps: dict[str, str] | None = None,
    registrars: Iterable[Callable[[Router], None]] | None = None,
    **knobs: Any,
) -> Simulator:
    """Start the simulator on a daemon thread and return once it accepts requests.

    ``apps`` maps appid -> secret (default: $WECHAT_APPID/$WECHAT_SECRET,
    else {"wx_demo_appid": "demo_app_secret"}).  ``port=0`` picks a free port.
    """
    if not is_loopback(host):
        # A fake WeChat that accepts any code must never be reachable remotely.
        raise ValueError(f"refusing to bind the WeChat simulator to non-loopback host {host!r}")
    clock = knobs.pop("clock", None)
    pay = PayConfig(**{name: knobs.pop(name) for name in PAY_KNOBS if name in knobs})
    state = SimState(apps=apps, clock=clock, **knobs)
    state.pay = pay
    server = SimHTTPServer((host, port), build_router(registrars), state)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1},
        name=f"wechat-sim:{server.server_address[1]}", daemon=True,
    )
    thread.start()
    return Simulator(server, thread)
