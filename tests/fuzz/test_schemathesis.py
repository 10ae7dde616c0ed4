"""Schemathesis on the running local stack: every operation of GET /openapi.json, fuzzed.

Each operation gets FUZZ_EXAMPLES generated cases (default 8; `make fuzz` runs 100) with data the
schema allows, and as many with data it forbids when it has a path id, a query or a body to
spoil. Half the cases have their ids (in the path, query and body) swapped for real ones (the
demo catalog, and an address, orders and an after-sales request made first), so handlers are
reached past their 404s. /v1/admin routes carry the admin's token, other authenticated routes a
user's; logout routes get a fresh token per case, or, half the time, an odd request (a token that
is not one, a body of any type).

Two WeChats. The `simulator` mode fuzzes the stack as `make run` starts it. The `foreign` mode
fuzzes a second API process on the same tables whose WECHAT_API_BASE is a WeChat that is not the
simulator (tests/fuzz/foreign_wechat.py: its own appid, secret and access tokens; every code it
did not issue is errcode 40029), as a deployed API meets the real one. The bounded run (`make
test`) fuzzes the operations that reach WeChat's open API or log in and out in that mode
(FOREIGN_OPERATIONS); `make fuzz` sets FUZZ_FOREIGN=all and fuzzes every operation in both.

Checks: no 5xx; the status code is declared; the body matches the declared schema; every 4xx
JSON body outside the WeChat Pay callbacks (which answer in WeChat's own format) is exactly the
envelope {Code, Message, Details}. Generation is derandomized, so runs are reproducible. The
cases and statuses per operation (and mode) are written to .local/fuzz-summary.json.
"""
from __future__ import annotations

import datetime
import itertools
import json
import os
import random
import secrets
import sys
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

import app  # noqa: F401  (registers every route in ROUTES)
from chalicelib.api.http import ROUTES, RouteSpec
from chalicelib.services.pay_gateway import V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE, V3_NOTIFY_ROUTE
from local.processes import LOOPBACK, ROOT, STATE_DIR, free_port, start_process, wait_for_http
from local.stack import API_STARTUP_SECONDS, LocalStack
from tests.fuzz.foreign_wechat import ForeignWeChat

pytestmark = [pytest.mark.e2e, pytest.mark.dynamodb_local]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CALLBACKS = {V3_NOTIFY_ROUTE, V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE}
LOGOUTS = {"/v1/auth/logout", "/v1/admin/auth/logout"}
OPERATIONS = list(ROUTES)
NEGATABLE = [spec for spec in OPERATIONS if spec.body or spec.query or "{" in spec.path]
# The operations a WeChat that is not the simulator changes: logging in and out (the issue-12
# 5xx were all there) and those calling WeChat's open API while answering (phone binding).
FOREIGN_ALL = os.environ.get("FUZZ_FOREIGN", "") == "all"
FOREIGN_OPERATIONS = [spec for spec in OPERATIONS
                      if FOREIGN_ALL or spec.tag == "auth" or spec.path == "/v1/me/phone"]
FOREIGN_NEGATABLE = [spec for spec in NEGATABLE if spec in FOREIGN_OPERATIONS]
SUMMARY = STATE_DIR / "fuzz-summary.json"
CASES: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()
_login_codes = itertools.count(1)


def envelope_on_client_errors(ctx, response, case) -> None:
    """Every 4xx JSON answer (but WeChat Pay's callbacks) is exactly {Code, Message, Details}."""
    if not 400 <= response.status_code < 500 or case.operation.path in CALLBACKS:
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"Code", "Message", "Details"}, body
    assert isinstance(body["Code"], str) and isinstance(body["Message"], str) and isinstance(body["Details"], list)
    return None


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, envelope_on_client_errors]


def _post(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code in (200, 201, 202), (url, response.status_code, response.text)
    return response.json()


def _demo_ids() -> dict[str, list[str]]:
    demo = json.loads((ROOT / "local" / "demo_store.json").read_text(encoding="utf-8"))

    def categories(nodes):
        for node in nodes:
            yield node["id"]
            yield from categories(node.get("children", []))

    skus = [sku["id"] for product in demo["products"] for sku in product["skus"]]
    return {"product_id": [product["id"] for product in demo["products"]], "sku_id": skus, "sku_id_new": skus,
            "category_id": list(categories(demo["categories"])), "parent_id": list(categories(demo["categories"])),
            "store_id": [store["id"] for store in demo["stores"]]}


class World:
    """The running stack, the tokens, and real ids to put in requests."""

    mode = "simulator"

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.api, self.sim = stack.api_url, stack.wechat_sim_url
        self.admin_credentials = {"username": stack.env["ADMIN_USERNAME"], "password": stack.env["ADMIN_PASSWORD"]}
        self.user_token = self.user_login()
        self.admin_token = self.admin_login()
        self.ids = {**_demo_ids(), **self._make_resources()}

    def login_code(self) -> str:
        """A code WeChat accepts once, for a user of its own (WeChat limits logins per user)."""
        return f"fuzzout{next(_login_codes)}-1"

    def user_login(self, code: str = "fuzz-1") -> str:
        return _post(f"{self.api}/v1/auth/login", {"code": code})["token"]

    def admin_login(self) -> str:
        return _post(f"{self.api}/v1/admin/auth/login", self.admin_credentials)["token"]

    def _order(self, checkout_token: str) -> dict:
        return _post(f"{self.api}/v1/orders", {"items": [{"sku_id": "sku-fuji-5", "quantity": 2}],
                                               "delivery_method": "pickup", "store_id": "store-xuhui",
                                               "checkout_token": checkout_token}, self.user_token)

    def _make_resources(self) -> dict[str, list[str]]:
        token = self.user_token
        address = _post(f"{self.api}/v1/addresses", {
            "name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
            "detail": "漕溪北路88号"}, token)
        unpaid, paid = self._order("fuzz-order-unpaid"), self._order("fuzz-order-paid")
        params = _post(f"{self.api}/v1/orders/{paid['order_id']}/pay", {}, token)
        assert _post(f"{self.sim}/__sim/pay/request-payment", {**params, "wait": True})["ok"]
        after_sale = _post(f"{self.api}/v1/orders/{paid['order_id']}/after-sales",
                           {"kind": "refund", "reason": "fuzz", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}]},
                           token)
        now = datetime.datetime.now(datetime.timezone.utc)
        sale = _post(f"{self.api}/v1/admin/flash-sales", {
            "sku_id": "sku-giftcard-200", "price_fen": 100, "quantity": 50, "per_user_limit": 99, "shards": 2,
            "starts_at": now.isoformat(), "ends_at": (now + datetime.timedelta(hours=2)).isoformat()}, self.admin_token)
        ticket = _post(f"{self.api}/v1/flash-sales/{sale['sale_id']}/entries",
                       {"sku_id": "sku-giftcard-200", "quantity": 1, "request_id": "fuzz-ticket-1"}, token)
        return {"order_id": [unpaid["order_id"], paid["order_id"]], "address_id": [address["address_id"]],
                "request_id": [after_sale["request_id"]], "sale_id": [sale["sale_id"]],
                "ticket_id": [ticket["ticket_id"]]}

    def token_for(self, spec: RouteSpec) -> str | None:
        if spec.auth is None:
            return None
        if spec.path in LOGOUTS:  # the case revokes it: a fresh token each time
            return self.admin_login() if spec.auth == "admin" else self.user_login(self.login_code())
        return self.admin_token if spec.auth == "admin" else self.user_token


class ForeignWorld(World):
    """A second API process on the stack's tables, talking to a WeChat that is not the simulator.

    It has its own appid and secret (so its users and its cached access token are its own), and
    logs users in with codes that WeChat issued; the ids of the simulator's world are reused
    (another user's ids are 404, which is part of what is fuzzed)."""

    mode = "foreign"

    def __init__(self, stack: LocalStack, simulator_world: World, wechat: ForeignWeChat):
        self.stack, self.wechat, self.sim = stack, wechat, stack.wechat_sim_url
        self.api = f"http://{LOOPBACK}:{free_port()}"
        env = {**stack.env, "WECHAT_API_BASE": wechat.url, "WECHAT_APPID": "wx_foreign_fuzz",
               "WECHAT_SECRET": secrets.token_hex(16)}
        self.process = start_process("api-foreign-wechat", [sys.executable, "-m", "local.stack", "serve-api",
                                                            "--host", LOOPBACK, "--port", self.api.rsplit(":", 1)[1]],
                                     env=env)
        try:
            wait_for_http(f"{self.api}/health", timeout=API_STARTUP_SECONDS, process=self.process)
        except BaseException:
            self.process.stop()
            raise
        self.admin_credentials = simulator_world.admin_credentials
        self.user_token = self.user_login()
        self.admin_token = self.admin_login()
        self.ids = simulator_world.ids

    def login_code(self) -> str:
        return self.wechat.issue_code()

    def user_login(self, code: str | None = None) -> str:
        return super().user_login(code or self.login_code())

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def world():
    with LocalStack() as stack:
        yield World(stack)
    if CASES:
        SUMMARY.write_text(json.dumps({"examples": EXAMPLES, "foreign": "all" if FOREIGN_ALL else "wechat",
                                       "total": sum(CASES.values()), "cases": CASES,
                                       "statuses": dict(sorted(STATUSES.items()))}, indent=1))


@pytest.fixture(scope="module")
def foreign_world(world):
    with ForeignWeChat() as wechat:
        foreign = ForeignWorld(world.stack, world, wechat)
        try:
            yield foreign
        finally:
            foreign.stop()


def summary_line() -> str | None:
    """For the terminal summary (tests/fuzz/conftest.py)."""
    if not CASES:
        return None
    foreign = sum(count for label, count in CASES.items() if label.endswith("[foreign]"))
    return (f"fuzz: {sum(CASES.values())} cases over {len(CASES)} operations (FUZZ_EXAMPLES={EXAMPLES} per "
            f"operation and mode; {foreign} against a foreign WeChat, FUZZ_FOREIGN="
            f"{'all' if FOREIGN_ALL else 'wechat'}); per operation and status in {SUMMARY.relative_to(ROOT)}")


@pytest.fixture(scope="module")
def api_schema(world):
    return schemathesis.openapi.from_url(f"{world.api}/openapi.json")


def _swap_ids(value: Any, ids: dict[str, list[str]], rng: random.Random) -> Any:
    """Real ids for generated ones, and 2 for 2.0 (JSON Schema calls 2.0 an integer, the API's
    strict models do not), so that these cases look like what a mini-program sends."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {key: rng.choice(ids[key]) if key in ids and isinstance(item, str) else _swap_ids(item, ids, rng)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_swap_ids(item, ids, rng) for item in value]
    return value


def _with_real_ids(case, rng: random.Random, ids: dict[str, list[str]]):
    case.path_parameters = _swap_ids(case.path_parameters, ids, rng)
    case.query = _swap_ids(case.query, ids, rng)
    case.body = _swap_ids(case.body, ids, rng)
    return case


def _strategy(operation, mode: GenerationMode, ids: dict[str, list[str]]):
    generated = operation.as_strategy(generation_mode=mode)
    with_real_ids = st.tuples(generated, st.randoms(use_true_random=False)).map(
        lambda pair: _with_real_ids(pair[0], pair[1], ids))
    return st.one_of(generated, with_real_ids)


def _label(spec: RouteSpec, mode: str = "simulator") -> str:
    return f"{spec.method} {spec.path}" + ("" if mode == "simulator" else f" [{mode}]")


# Logout routes also get odd requests: a bearer token that is not one (any printable
# Latin-1, what an HTTP header can carry; "Bearer v1.x.é" was a 500) and/or a body of any type,
# which a logout ignores. None: the case as schemathesis made it, with a fresh real token.
# (Hypothesis starts from the first choice of each one_of and sampled_from, so the odd ones come
# first, Latin-1 before ASCII: the bounded run's 8 cases already include a spoilt real token.)
_TOKEN_ALPHABET = [chr(c) for c in range(0xA1, 0x100)] + [chr(c) for c in range(0x21, 0x7F)]
_ODD_TEXT = st.text(st.sampled_from(_TOKEN_ALPHABET), min_size=1, max_size=40)
_ODD_TOKEN = st.one_of(
    st.builds(lambda suffix: ("real+", suffix), _ODD_TEXT),  # a real token with something after it
    st.builds("v1.{}.{}".format, _ODD_TEXT, _ODD_TEXT),  # the shape of ours, any content
    _ODD_TEXT,
)
_ODD_LOGOUT = st.one_of(st.fixed_dictionaries({
    "token": st.one_of(_ODD_TOKEN, st.none()),
    "body": st.one_of(st.binary(max_size=64), st.none()),
    "content_type": st.sampled_from(["text/plain", "application/json", "application/x-www-form-urlencoded",
                                     "application/octet-stream", "nonsense"]),
}), st.none())


def _fuzz(world: World, api_schema, spec: RouteSpec, mode: GenerationMode) -> None:
    operation = api_schema[spec.path][spec.method]
    session = requests.Session()
    oddities = _ODD_LOGOUT if spec.path in LOGOUTS else st.none()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=_strategy(operation, mode, world.ids), odd=oddities)
    def run(case, odd):
        token = odd["token"] if odd and odd["token"] else world.token_for(spec)
        if isinstance(token, tuple):  # ("real+", suffix): a token of the right role, spoilt
            token = (world.admin_token if spec.auth == "admin" else world.user_token) + token[1]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        extra = {}
        if odd and odd["body"] is not None:
            headers["Content-Type"] = odd["content_type"]
            extra["data"] = odd["body"]
        response = case.call(base_url=world.api, session=session, headers=headers, timeout=10, **extra)
        CASES[_label(spec, world.mode)] += 1
        STATUSES[f"{_label(spec, world.mode)} {response.status_code}"] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize("spec", OPERATIONS, ids=_label)
def test_an_operation_answers_as_documented_to_valid_input(world, api_schema, spec):
    _fuzz(world, api_schema, spec, GenerationMode.POSITIVE)


@pytest.mark.parametrize("spec", NEGATABLE, ids=_label)
def test_an_operation_answers_as_documented_to_invalid_input(world, api_schema, spec):
    _fuzz(world, api_schema, spec, GenerationMode.NEGATIVE)


@pytest.mark.parametrize("spec", FOREIGN_OPERATIONS, ids=_label)
def test_an_operation_answers_as_documented_to_valid_input_with_a_foreign_wechat(foreign_world, api_schema, spec):
    _fuzz(foreign_world, api_schema, spec, GenerationMode.POSITIVE)


@pytest.mark.parametrize("spec", FOREIGN_NEGATABLE, ids=_label)
def test_an_operation_answers_as_documented_to_invalid_input_with_a_foreign_wechat(foreign_world, api_schema, spec):
    _fuzz(foreign_world, api_schema, spec, GenerationMode.NEGATIVE)
