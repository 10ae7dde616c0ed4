"""Store requests: add-to-cart, product list and search, checkout preview and place order.

Each request type is measured like bench.request_cost (in-process through `chalice.test.Client`,
DynamoDB calls and capacity through bench.capacity, latency p50/p99 and sequential req/s), on
the demo store (local/seed.py) in DynamoDB Local, with SQS on moto's server (placing an order
queues its pay-deadline timer). Beside every request, the same loop times one raw boto3
UpdateItem on the same engine (bench.engine_floor's item): the engine's floor under the same
load at the same moment, reported as a ratio.

Setup between measured requests (putting a cart line back, re-adding the 3 lines an order
cleared) runs with the meters paused and outside the timings: an order's figures are the
order's alone. The shopper, alice-like, is `shopper`; the 3 SKUs are restocked first so 100+
orders never run out (and never cross a low-stock threshold, which would add alert writes).
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

from bench import ROOT, engine_floor, env
from bench.capacity import CallCounter, CapacityMeter, Usage
from bench.request_cost import JSON_HEADERS, item_fetcher, quiet_app_logs, theoretical_per_request
from bench.stats import summarize_ms

N_REQUESTS = 100
WARMUP = 10
FLOOR_WARMUP = 50
SHOPPER_CODE = "shopper-1"  # the WeChat simulator's user "shopper"
CART = {"sku-fuji-5": 2, "sku-navel-5": 1, "sku-cherry-1kg": 1}  # 3 lines, 3 products
ADDED_SKU = "sku-fuji-5"  # add-to-cart puts this line back into a cart of the other two
RESTOCK_UNITS = 100_000
ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
CATEGORY_QUERY = {"category_id": "c-fruit", "sort": "sales", "limit": 20}
SEARCH_WORD = "苹果"
SCENARIO_ORDER = ("add_to_cart", "products_category", "products_search", "checkout_preview", "place_order",
                  "checkout_preview_coupons", "place_order_coupons", "place_order_points")
COUPON_SHOPPER_CODE = "couponer-1"  # a second shopper, with a wallet of WALLET_SIZE coupons
POINTS_SHOPPER_CODE = "pointer-1"  # a third shopper, with points in three lots
POINTS_USED = 1_000
WALLET_SIZE = 20


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    send: Callable[[int], Any]  # request index -> chalice.test HTTPResponse
    check: Callable[[dict], bool]  # is the body the expected one?
    status: int = 200
    prepare: Callable[[int], None] | None = None  # untimed, unmetered, before each request


# ------------------------------------------------------------------------------ servers


class SqsServer:
    """moto's SQS (a threaded server in this process) on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        from local.processes import free_port

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        # Its request log lines would go through the app's JSON log handler, in this process.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


# -------------------------------------------------------------------------------- setup


def _call(client: Any, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = dict(JSON_HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode() if body is not None else None
    return getattr(client.http, method.lower())(path, headers=headers, body=payload)


def _json(response: Any, what: str, status: int = 200) -> dict:
    if response.status_code != status:
        raise RuntimeError(f"{what}: HTTP {response.status_code} (expected {status}): {response.body[:500]!r}")
    return json.loads(response.body) if response.body else {}


def _prepare_store() -> list[str]:
    """Tables, queues, the demo store, and stock for every order the bench will place."""
    from chalicelib import queues
    from chalicelib.services import stock
    from chalicelib.storage import schema
    from local.seed import seed_demo_store

    schema.create_all_tables()
    queues.create_all_queues()
    seeded = seed_demo_store(marketing=False)  # the coupon scenarios build their own wallet
    for sku_id in CART:
        stock.adjust_stock(sku_id, stock.StockChange(sku_id, delta=RESTOCK_UNITS), "bench restock", "bench")
    return seeded


def _scenarios(client: Any) -> list[Scenario]:
    token = _json(_call(client, "POST", "/v1/auth/login", {"code": SHOPPER_CODE}), "shopper login")["token"]
    address_id = _json(_call(client, "POST", "/v1/addresses", ADDRESS, token=token), "address", 201)["address_id"]

    def add(sku_id: str, quantity: int) -> Any:
        return _call(client, "POST", "/v1/cart/items", {"sku_id": sku_id, "quantity": quantity}, token=token)

    def cart_skus() -> set[str]:
        return {line["sku_id"] for line in _json(_call(client, "GET", "/v1/cart", token=token), "cart")["lines"]}

    def put_back_cart(_: int) -> None:  # after an order: the 3 lines again, as a shopper would
        present = cart_skus()
        for sku_id, quantity in CART.items():
            if sku_id not in present:
                _json(add(sku_id, quantity), f"re-add {sku_id}")

    def remove_added_line(_: int) -> None:
        _json(_call(client, "DELETE", f"/v1/cart/items/{ADDED_SKU}", token=token), "remove line")

    put_back_cart(0)
    coupon_scenarios = _coupon_scenarios(client)
    points_scenario = _points_scenario(client)
    three_lines = lambda body: len(body["lines"]) == 3  # noqa: E731
    checkout = {"address_id": address_id}  # no items: the selected cart lines; express to the address
    category_path = f"/v1/products?{urlencode(CATEGORY_QUERY)}"
    search_path = f"/v1/products?{urlencode({'q': SEARCH_WORD})}"
    return [
        Scenario("add_to_cart", "POST /v1/cart/items (3rd line into a 2-line cart)",
                 lambda i: add(ADDED_SKU, CART[ADDED_SKU]), three_lines, prepare=remove_added_line),
        Scenario("products_category", f"GET /v1/products?{urlencode(CATEGORY_QUERY)}",
                 lambda i: _call(client, "GET", category_path), lambda body: len(body["items"]) >= 3),
        Scenario("products_search", f"GET /v1/products?q={SEARCH_WORD} (keyword search)",
                 lambda i: _call(client, "GET", search_path),
                 lambda body: "p-fuji" in {item["product_id"] for item in body["items"]}),
        Scenario("checkout_preview", "POST /v1/checkout/preview (3 selected cart lines, express)",
                 lambda i: _call(client, "POST", "/v1/checkout/preview", checkout, token=token),
                 lambda body: three_lines(body) and body["delivery_method"] == "express"),
        Scenario("place_order", "POST /v1/orders (3-line cart, express)",
                 lambda i: _call(client, "POST", "/v1/orders", {**checkout, "checkout_token": uuid.uuid4().hex},
                                 token=token),
                 lambda body: three_lines(body) and body["status"] == "pending_payment",
                 status=201, prepare=put_back_cart),
        *coupon_scenarios,
        points_scenario,
    ]


def _coupon_templates() -> list[dict[str, Any]]:
    """WALLET_SIZE templates of every kind: 5 满减 and 5 fruit 折扣 (one stack group), 5 无门槛
    (another group), 5 for durian only (out of scope for the bench's cart)."""
    common = {"channel": "claim", "valid_days": 30, "total": 1000, "per_user_limit": 1}
    full = [{"name": f"满{t // 100}减{off // 100}", "kind": "full_reduction", "threshold_fen": t, "off_fen": off}
            for t, off in ((5000, 300), (10000, 800), (15000, 1500), (20000, 2500), (25000, 3500))]
    rates = [{"name": f"水果{rate / 100:g}折", "kind": "discount", "rate_permille": rate, "cap_fen": cap,
              "scope": {"category_ids": ["c-fruit"]}} for rate, cap in ((950, 1000), (930, 1500), (900, 2000),
                                                                        (880, 2500), (850, 3000))]
    bonus = [{"name": f"无门槛{off // 100}元", "kind": "no_threshold", "off_fen": off, "stack_group": "bonus"}
             for off in (100, 200, 300, 400, 500)]
    durian = [{"name": f"榴莲减{off // 100}", "kind": "no_threshold", "off_fen": off, "stack_group": "durian",
               "scope": {"product_ids": ["p-durian"]}} for off in (500, 1000, 1500, 2000, 2500)]
    return [{**common, **fields} for fields in full + rates + bonus + durian]


def _coupon_scenarios(client: Any) -> list[Scenario]:
    """Preview with WALLET_SIZE coupons in the wallet (the best combination searched), and place
    order with 2 coupons (locked in its transaction); between orders, the last one is cancelled
    (its coupons and units come back) and the cart refilled, untimed and unmetered."""
    from chalicelib.schemas.coupons import CreateTemplateBody
    from chalicelib.services import coupons

    login = _json(_call(client, "POST", "/v1/auth/login", {"code": COUPON_SHOPPER_CODE}), "coupon shopper login")
    token, user_id = login["token"], login["user"]["user_id"]
    address_id = _json(_call(client, "POST", "/v1/addresses", ADDRESS, token=token), "address", 201)["address_id"]
    wallet = {}
    for fields in _coupon_templates():
        template = coupons.create_template(CreateTemplateBody.model_validate(fields))
        wallet[fields["name"]] = coupons.issue_coupon(user_id, template.template_id, channel="claim")[0].coupon_id
    chosen = [wallet["水果9折"], wallet["无门槛5元"]]
    place, refill = _cart_orders(client, token, {"address_id": address_id, "coupon_ids": chosen})
    applied = lambda body: sum(1 for c in body["coupons"] if c["applied"])  # noqa: E731
    return [
        Scenario("checkout_preview_coupons",
                 f"POST /v1/checkout/preview (3 cart lines, {WALLET_SIZE} coupons in the wallet, best combination)",
                 lambda i: _call(client, "POST", "/v1/checkout/preview", {"address_id": address_id}, token=token),
                 lambda body: len(body["coupons"]) == WALLET_SIZE and applied(body) == 2),
        Scenario("place_order_coupons", "POST /v1/orders (3-line cart, express, 2 coupons)", place,
                 lambda body: body["status"] == "pending_payment"
                 and sum(1 for a in body["adjustments"] if a["kind"] == "coupon") == 2,
                 status=201, prepare=refill),
    ]


def _cart_orders(client: Any, token: str, body: dict[str, Any]) -> tuple[Callable[[int], Any], Callable[[int], None]]:
    """(place, refill) for a shopper's order scenario: `place` orders the cart with `body`;
    `refill`, run untimed between orders, cancels the orders placed (their units, coupons and
    points come back) and puts the cart's 3 lines back. The cart is filled once now."""
    placed: list[str] = []

    def refill(_: int) -> None:
        for order_id in placed:
            _json(_call(client, "POST", f"/v1/orders/{order_id}/cancel", token=token), "cancel")
        placed.clear()
        present = {line["sku_id"] for line in _json(_call(client, "GET", "/v1/cart", token=token), "cart")["lines"]}
        for sku_id, quantity in CART.items():
            if sku_id not in present:
                _json(_call(client, "POST", "/v1/cart/items", {"sku_id": sku_id, "quantity": quantity}, token=token),
                      f"re-add {sku_id}")

    def place(_: int) -> Any:
        response = _call(client, "POST", "/v1/orders", {**body, "checkout_token": uuid.uuid4().hex}, token=token)
        if response.status_code == 201:
            placed.append(json.loads(response.body)["order_id"])
        return response

    refill(0)
    return place, refill


def _points_scenario(client: Any) -> Scenario:
    """Place order spending POINTS_USED points (taken from two of three lots in its transaction:
    the account update and the ledger entry ride in the order's TransactWrite); between orders the
    last one is cancelled (points and units back) and the cart refilled, untimed and unmetered."""
    from chalicelib import clock
    from chalicelib.services import points
    from chalicelib.storage import points as point_store

    login = _json(_call(client, "POST", "/v1/auth/login", {"code": POINTS_SHOPPER_CODE}), "points shopper login")
    token, user_id = login["token"], login["user"]["user_id"]
    address_id = _json(_call(client, "POST", "/v1/addresses", ADDRESS, token=token), "address", 201)["address_id"]
    for months_ago, amount in ((11, 600), (6, 600), (1, 50_000)):  # three lots, the two oldest spent first
        with clock.frozen_at(clock.now() - timedelta(days=30 * months_ago)):
            point_store.apply(points._earning(user_id, f"bench#{months_ago}", "grant", amount, "bench", clock.now()))
    place, refill = _cart_orders(client, token, {"address_id": address_id, "points": POINTS_USED})
    return Scenario("place_order_points", f"POST /v1/orders (3-line cart, express, {POINTS_USED} points from 2 lots)",
                    place, lambda body: body["status"] == "pending_payment" and body["points_used"] == POINTS_USED,
                    status=201, prepare=refill)


# ------------------------------------------------------------------------------ measuring


@contextlib.contextmanager
def _paused(*meters: Any) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for meter in meters:
            stack.enter_context(meter.paused())
        yield


def _checked(scenario: Scenario, response: Any) -> None:
    if not scenario.check(_json(response, scenario.label, scenario.status)):
        raise RuntimeError(f"{scenario.label}: unexpected body {response.body[:500]!r}")


def measure(scenario: Scenario, meter: CapacityMeter, sqs: CallCounter, floor: Callable[[], Any],
            n: int, warmup: int, floor_samples: list[float] | None = None) -> tuple[dict, Usage]:
    """Warm up, then n rounds of: setup (paused), the request (timed, metered), one floor UpdateItem
    (timed, on a client the meter does not see)."""
    for i in range(n, n + warmup):
        if scenario.prepare:
            scenario.prepare(i)
        _checked(scenario, scenario.send(i))
    meter.reset()
    sqs.reset()
    latencies, floor_latencies = [], []
    for i in range(n):
        if scenario.prepare:
            with _paused(meter, sqs):
                scenario.prepare(i)
        started = time.perf_counter()
        response = scenario.send(i)
        latencies.append(time.perf_counter() - started)
        _checked(scenario, response)
        started = time.perf_counter()
        floor()
        floor_latencies.append(time.perf_counter() - started)
    usage, sqs_calls = meter.snapshot(), sqs.snapshot()
    if floor_samples is not None:
        floor_samples.extend(floor_latencies)
    latency, floor_latency = summarize_ms(latencies), summarize_ms(floor_latencies)
    dynamodb = usage.per_request(n)
    ratio = latency["p50_ms"] / floor_latency["p50_ms"]
    return {"label": scenario.label, "latency": latency, "floor_update_item_latency": floor_latency,
            "p50_ratio_to_floor": round(ratio, 2),
            "p50_ratio_to_floor_per_dynamodb_call": round(ratio / dynamodb["calls"], 2) if dynamodb["calls"] else None,
            "dynamodb": dynamodb, "sqs_calls_per_request": {op: round(count / n, 3) for op, count in sqs_calls.items()},
            "setup_between_requests": "untimed and unmetered" if scenario.prepare else None}, usage


def transaction_actions(usage: Usage, n: int) -> dict[str, dict[str, float]]:
    """{table: {action: per request}} of the TransactWriteItems calls (ConditionCheck, Put, ...)."""
    found: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for record in usage.records:
        if record.operation == "TransactWriteItems":
            for entry in record.params.get("TransactItems", []):
                for action, spec in entry.items():
                    found[spec.get("TableName", "?")][action] += 1
    return {table: {action: round(count / n, 3) for action, count in sorted(actions.items())}
            for table, actions in sorted(found.items())}


def _measure_all(simulator: Any, dynamodb_endpoint: str, n: int, warmup: int) -> dict:
    from local.sqs_reset import recreate_all_queues

    from local.chalice_client import thread_safe_client
    from chalicelib import queues
    from chalicelib.storage import schema

    from app import app

    seeded = _prepare_store()
    fetch, results = item_fetcher(dynamodb_endpoint), {}
    floor_client = engine_floor.make_client(dynamodb_endpoint)
    engine_floor.ensure_table(floor_client)
    floor = engine_floor.update_item(floor_client)
    for _ in range(FLOOR_WARMUP):
        floor()
    sqs, floor_samples = CallCounter("sqs"), []
    with CapacityMeter() as meter, quiet_app_logs(), \
            thread_safe_client(app, stage_name="test", project_dir=str(ROOT)) as client:
        meter.attach_models(schema.ALL_MODELS)
        sqs.attach_client(queues._client())
        try:
            for scenario in _scenarios(client):
                recreate_all_queues()  # moto's SQS slows with every queued timer (local/sqs_reset.py)
                result, usage = measure(scenario, meter, sqs, floor, n, warmup, floor_samples)
                result["theoretical"] = theoretical_per_request(usage, fetch, n)
                if scenario.name in ("place_order", "place_order_coupons", "place_order_points"):
                    result["transaction_actions"] = transaction_actions(usage, n)
                results[scenario.name] = result
        finally:
            sqs.detach()
    return {"seeded": seeded, "scenarios": results, "floor_update_item_latency": summarize_ms(floor_samples)}


def run(dynamodb_endpoint: str, sqs_endpoint: str, n: int = N_REQUESTS, warmup: int = WARMUP) -> dict:
    """Start a WeChat simulator (for the shopper's login), aim the app at it, DynamoDB and SQS,
    seed the demo store and measure every store request."""
    from local.wechat_sim import start_simulator

    simulator = start_simulator(apps={env.WECHAT_APPID: env.WECHAT_SECRET}, code2session_per_minute=1_000_000)
    try:
        env.point_at(dynamodb_endpoint, simulator.base_url, sqs_endpoint)
        measured = _measure_all(simulator, dynamodb_endpoint, n, warmup)
    finally:
        simulator.stop()
    return {"requests_per_scenario": n, "warmup_per_scenario": warmup, "cart": CART,
            "restocked_units_per_sku": RESTOCK_UNITS, **measured}
