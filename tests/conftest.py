"""Shared fixtures.

Layers: tests/unit needs nothing; service/api/job tests run on moto (`aws` fixture) with the
WeChat simulator over real HTTP (`wechat_sim`); integration and concurrency tests run on AWS's
DynamoDB Local (`dynamodb_local`, started once per session); e2e tests run the whole stack.
"""
from __future__ import annotations

import os

# The environment is fixed before anything imports the app: table and queue names are read
# at import time, and no test may reach a real AWS or WeChat endpoint.
TEST_ENV = {
    "STAGE": "test",
    "TABLE_PREFIX": "test-",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "WECHAT_APPID": "wx_test_appid",
    "WECHAT_SECRET": "test_app_secret_value",
    "WECHAT_API_BASE": "http://127.0.0.1:9",  # replaced by the simulator's URL per test
    "AUTH_TOKEN_SECRET": "test-token-secret-at-least-32-characters",
    "ADMIN_USERNAME": "admin",
    "ADMIN_PASSWORD": "admin-test-password",
    "RETURN_ADDRESS": "上海市徐汇区漕溪北路88号 鲜果园售后 021-00000000",
    # A guard: any AWS call a test makes without moto or a local engine goes to a dead
    # loopback port and fails fast, never to real AWS.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}
for _name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE",
              "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)

import moto  # noqa: E402  (must be imported before any botocore session is created)
import pytest  # noqa: E402

from chalicelib import queues, settings  # noqa: E402
from chalicelib.services import access_token, activities, flash_sales, gifts, pay_gateway, wechat_clients  # noqa: E402
from chalicelib.storage import schema  # noqa: E402


def reset_process_caches(switching_endpoints: bool = False) -> None:
    """Forget what a warm Lambda keeps between requests (settings, token cache, clients).

    AWS clients are dropped only when a test switches endpoints (moto <-> DynamoDB Local):
    building a botocore client costs ~0.15 s, most of a test's time if done every test.
    """
    settings.reset_settings_cache()
    wechat_clients.reset_clients()
    access_token.clear_memory_cache()
    pay_gateway.reset_gateway()
    flash_sales.forget_sale()
    activities.forget_running()
    gifts.forget_cached_templates()
    if switching_endpoints:
        queues.reset_clients()
        schema.reset_connections()


@pytest.fixture(autouse=True)
def _aws_guard_survives_the_test():
    """Fails the test that leaves the process without the dead-endpoint guard (or with
    `os.environ` swapped for a plain dict), rather than every moto test after it."""
    yield
    assert isinstance(os.environ, os._Environ), "os.environ was swapped for a copy and not put back"
    assert os.environ.get("AWS_ENDPOINT_URL") == TEST_ENV["AWS_ENDPOINT_URL"], "the AWS endpoint guard was lost"


@pytest.fixture(scope="session")
def pay_keys(tmp_path_factory):
    """Merchant and platform keys for WeChat Pay (generated once per session) and the app's
    WECHAT_PAY_* settings that go with them."""
    from local.pay_setup import DEMO_PAY_ENV, pay_env

    directory = tmp_path_factory.mktemp("wechat_pay")
    return directory, {**DEMO_PAY_ENV, **pay_env(directory)}


@pytest.fixture
def wechat_sim(monkeypatch, pay_keys):
    """A fresh WeChat simulator (open API and Pay) on a free loopback port, and the app
    pointed at it. Pay notifies go to WECHAT_PAY_NOTIFY_URL (see `notify_bridge`)."""
    from local.wechat_sim import start_simulator

    directory, env = pay_keys
    simulator = start_simulator(apps={TEST_ENV["WECHAT_APPID"]: TEST_ENV["WECHAT_SECRET"]},
                                mchid=env["WECHAT_PAY_MCH_ID"], api_key=env["WECHAT_PAY_API_KEY"],
                                apiv3_key=env["WECHAT_PAY_APIV3_KEY"], pay_keys_dir=str(directory),
                                notify_retry_delays_ms=[50, 100, 200], refund_delay_ms=100)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WECHAT_API_BASE", simulator.base_url)
    monkeypatch.setenv("WECHAT_PAY_API_BASE", simulator.base_url)
    monkeypatch.setenv("WECHAT_PAY_NOTIFY_URL", "http://127.0.0.1:9")  # nothing listens: see notify_bridge
    reset_process_caches()
    yield simulator
    simulator.stop()
    reset_process_caches()


@pytest.fixture(scope="session")
def _moto_session():
    """moto's in-memory AWS, with every table and queue, once per session (creating them per
    test would cost most of each test's time)."""
    mock = moto.mock_aws()
    mock.start()
    guard = os.environ.pop("AWS_ENDPOINT_URL")  # moto only intercepts AWS's own hostnames
    try:
        reset_process_caches(switching_endpoints=True)
        schema.create_all_tables()
        queues.create_all_queues()
    finally:
        os.environ["AWS_ENDPOINT_URL"] = guard  # back on for tests that do not ask for `aws`
    yield
    mock.stop()
    reset_process_caches(switching_endpoints=True)


@pytest.fixture
def aws(_moto_session, monkeypatch):
    """moto, with every table emptied and every queue purged before the test."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    reset_process_caches()
    _empty_tables()
    _purge_queues()
    yield
    reset_process_caches()


def _empty_tables() -> None:
    for model in schema.ALL_MODELS:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)


def _purge_queues() -> None:
    from local.sqs_reset import recreate_all_queues

    recreate_all_queues()


@pytest.fixture
def client(aws, wechat_sim):
    """Chalice's own test client on the app, backed by moto and the simulator."""
    from app import app
    from local.chalice_client import thread_safe_client

    # stage "test" is not in .chalice/config.json, so the client adds no stage environment; and
    # the notify bridge calls this client from its own thread (see local/chalice_client.py).
    with thread_safe_client(app, stage_name="test") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def dynamodb_local_endpoint():
    """AWS's DynamoDB Local, started once per test session on a free loopback port."""
    from local.dynamodb_local import start_dynamodb

    handle = start_dynamodb()
    if os.environ.get("REQUIRE_DYNAMODB_LOCAL") == "1" and handle.engine != "dynamodb-local":
        handle.stop()
        pytest.fail(f"DynamoDB Local is required (make test) but the engine is {handle.engine}")
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def sqs_server_endpoint():
    """moto's SQS server on a free loopback port (DynamoDB Local has no SQS)."""
    from moto.server import ThreadedMotoServer

    from local.processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def dynamodb_local(dynamodb_local_endpoint, sqs_server_endpoint, monkeypatch):
    """Point storage at DynamoDB Local (fresh, empty tables) and queues at moto's SQS server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", sqs_server_endpoint)
    reset_process_caches(switching_endpoints=True)
    schema.create_all_tables()  # once per session in effect: existing tables are kept...
    _empty_tables()  # ...and emptied, which is much quicker than dropping and creating them
    queues.create_all_queues()
    yield dynamodb_local_endpoint
    reset_process_caches(switching_endpoints=True)


_demo_snapshot: dict[str, list[dict]] = {}


@pytest.fixture
def demo_store(aws):
    """The demo store (local/demo_store.json) in moto's tables.

    Seeding goes through the catalog's transactions, ~1 s on moto; so the first test seeds for
    real and snapshots the raw items, and later tests write the snapshot back in batches.
    """
    client = schema.ALL_MODELS[0]._get_connection().connection.client
    if not _demo_snapshot:
        from local.seed import seed_demo_store

        seed_demo_store(marketing=False)  # no activity or new-user gift moving the tests' prices
        for model in schema.ALL_MODELS:
            items = client.scan(TableName=model.Meta.table_name, ConsistentRead=True)["Items"]
            if items:
                _demo_snapshot[model.Meta.table_name] = items
        return
    for table, items in _demo_snapshot.items():
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}}
                                                          for item in items[start:start + 25]]})


@pytest.fixture
def notify_bridge(client, monkeypatch):
    """WeChat Pay notifies from the simulator, over real HTTP, into the app under test.

    The simulator POSTs to this loopback server, which hands the exact bytes and headers to
    Chalice's test client and returns its answer, so the real verification code runs.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    closed = threading.Event()

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:  # one request at a time through the in-process app
                if closed.is_set():  # a late retry after the test: never into the next test's tables
                    self.send_error(503)
                    return
                answer = client.http.post(self.path, headers=dict(self.headers.items()), body=body)
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            payload = answer.body if isinstance(answer.body, bytes) else (answer.body or "").encode()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    monkeypatch.setenv("WECHAT_PAY_NOTIFY_URL", f"http://127.0.0.1:{server.server_address[1]}")
    reset_process_caches()
    yield server
    server.shutdown()
    with lock:  # waits for a notify being handled right now
        closed.set()
    server.server_close()
