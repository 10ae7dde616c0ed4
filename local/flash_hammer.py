"""Hammer a flash sale on the running local stack (`make run`) over HTTP, and check the result.

    python -m local.flash_hammer [--api http://127.0.0.1:${API_PORT:-8000}] [--users 200] [--entries-per-user 3]
                                 [--units 50] [--shards 4] [--threads 16] [--sku sku-giftcard-200]

It logs in as the merchant and creates a sale (`--units` of a virtual SKU, one per user), logs
in `--users` buyers through the WeChat simulator, and fires `--entries-per-user` entries each
from `--threads` threads, every buyer's entries at once. Like a well-behaved mini-program it
waits out a 429's Retry-After (each buyer fires its entries at once; the per-user burst is 5).
Then it waits for the worker to drain the queue and reads every ticket and the merchant's view.

It exits 0 when exactly min(units, accepted tickets) orders were made, no buyer won twice,
and no ticket is left queued; else 1. Only loopback URLs are accepted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

MAX_RETRIES_AFTER_429 = 20
DRAIN_TIMEOUT_SECONDS = 120.0
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def _admin_token(api: str, username: str, password: str) -> str:
    status, body, _ = http("POST", f"{api}/v1/admin/auth/login", {"username": username, "password": password})
    if status != 200:
        raise SystemExit(f"flash_hammer: admin login failed ({status}): {body}")
    return body["token"]


def _create_sale(api: str, admin: str, sku: str, units: int, shards: int) -> dict:
    now = datetime.now(timezone.utc)
    status, sale, _ = http("POST", f"{api}/v1/admin/flash-sales", {
        "sku_id": sku, "price_fen": 100, "quantity": units, "per_user_limit": 1, "shards": shards,
        "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()}, admin)
    if status != 201:
        raise SystemExit(f"flash_hammer: could not create the sale ({status}): {sale}")
    return sale


def _log_in(api: str, user: int, run: str) -> str:
    status, body, _ = http("POST", f"{api}/v1/auth/login", {"code": f"hammer{user}-{run}"})
    if status != 200:
        raise SystemExit(f"flash_hammer: login of buyer {user} failed ({status}): {body}")
    return body["token"]


def _enter(api: str, sale: dict, token: str) -> tuple[str, str | None, int]:
    """One entry, waiting out 429s as a client should; -> (outcome, ticket_id, 429s seen)."""
    body = {"sku_id": sale["sku_id"], "quantity": 1, "request_id": uuid.uuid4().hex}
    limited = 0
    for _ in range(MAX_RETRIES_AFTER_429):
        status, answer, headers = http("POST", f"{api}/v1/flash-sales/{sale['sale_id']}/entries", body, token)
        if status == 429:
            limited += 1
            time.sleep(float(headers.get("Retry-After", "1")))
            continue
        if status == 202:
            return "accepted", answer["ticket_id"], limited
        return answer.get("Code", str(status)) if isinstance(answer, dict) else str(status), None, limited
    return "rate_limited", None, limited


def _wait_for_tickets(api: str, tickets: list[tuple[str, str]]) -> tuple[Counter, Counter]:
    """-> (tickets by final status, won tickets per buyer)."""
    deadline, pending = time.monotonic() + DRAIN_TIMEOUT_SECONDS, dict(tickets)
    decided: Counter = Counter()
    won_by: Counter = Counter()
    while pending and time.monotonic() < deadline:
        for ticket_id, token in list(pending.items()):
            status, ticket, _ = http("GET", f"{api}/v1/flash-sales/tickets/{ticket_id}", token=token)
            if status == 200 and ticket["status"] != "queued":
                decided[ticket["status"]] += 1
                won_by[token] += ticket["status"] == "won"
                del pending[ticket_id]
        if pending:
            time.sleep(0.5)
    decided["still_queued"] = len(pending)
    return decided, won_by


def hammer(api: str, users: int, entries_per_user: int, units: int, shards: int, threads: int, sku: str,
           admin_username: str, admin_password: str) -> dict[str, Any]:
    admin = _admin_token(api, admin_username, admin_password)
    sale = _create_sale(api, admin, sku, units, shards)
    run = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        tokens = list(pool.map(lambda n: _log_in(api, n, run), range(users)))
    attempts = [token for token in tokens for _ in range(entries_per_user)]
    lock, tickets, limited = threading.Lock(), [], Counter()
    started = time.perf_counter()

    def attempt(token: str) -> str:
        outcome, ticket_id, seen = _enter(api, sale, token)
        with lock:
            limited["429"] += seen
            if ticket_id:
                tickets.append((ticket_id, token))
        return outcome

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = Counter(pool.map(attempt, attempts))
    entered_in = time.perf_counter() - started
    decided, won_by = _wait_for_tickets(api, tickets)
    drained_in = time.perf_counter() - started
    status, view, _ = http("GET", f"{api}/v1/admin/flash-sales/{sale['sale_id']}", token=admin)
    expected = min(units, len(tickets))
    ok = (status == 200 and view["won"] == expected == decided["won"] and decided["still_queued"] == 0
          and max(won_by.values(), default=0) <= 1)
    return {"ok": ok, "sale_id": sale["sale_id"], "units": units, "shards": shards, "users": users,
            "entries": len(attempts), "outcomes": dict(outcomes), "retries_after_429": limited["429"],
            "tickets": dict(decided), "most_won_by_one_buyer": max(won_by.values(), default=0),
            "orders": view.get("won") if status == 200 else None,
            "remaining": view.get("remaining") if status == 200 else None,
            "rejects": view.get("rejects") if status == 200 else None,
            "seconds_to_enter": round(entered_in, 2), "seconds_to_drain": round(drained_in, 2)}


def _loopback(url: str) -> str:
    host = urllib.parse.urlparse(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"flash_hammer: only loopback URLs, not {url!r}")
    return url.rstrip("/")


def main(argv: list[str] | None = None) -> int:
    from local.processes import chalice_stage_env

    stage_env = chalice_stage_env("local")
    parser = argparse.ArgumentParser(prog="python -m local.flash_hammer", description=__doc__.split("\n")[0])
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--entries-per-user", type=int, default=3)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--sku", default="sku-giftcard-200", help="a virtual SKU (no address needed)")
    parser.add_argument("--admin-username", default=stage_env.get("ADMIN_USERNAME", "admin"))
    parser.add_argument("--admin-password", default=stage_env.get("ADMIN_PASSWORD", ""))
    args = parser.parse_args(argv)
    if min(args.users, args.entries_per_user, args.units, args.shards, args.threads) < 1:
        parser.error("every count must be at least 1")
    result = hammer(_loopback(args.api), args.users, args.entries_per_user, args.units, args.shards, args.threads,
                    args.sku, args.admin_username, args.admin_password)
    print(json.dumps(result, ensure_ascii=False, indent=1), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
