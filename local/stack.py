"""`make run`: the whole local stack on 127.0.0.1, in the foreground, until Ctrl-C / SIGTERM.

    python -m local.stack                      # DynamoDB Local, SQS, WeChat sim, API, worker
    python -m local.stack serve-api --port N   # the API alone (what the stack runs as a child)

Ports: API_PORT (8000), DYNAMODB_PORT (8001), SQS_PORT (8002), WECHAT_SIM_PORT (8003).

Environment precedence for the app's processes (API, worker, provisioning), lowest first:
  1. `.chalice/config.json`: top-level environment_variables, then the `local` stage's;
  2. the stack's own services: WECHAT_API_BASE and WECHAT_PAY_API_BASE -> the simulator,
     WECHAT_PAY_NOTIFY_URL -> the API, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY=local, and the
     simulator's generated Pay keys (WECHAT_PAY_PRIVATE_KEY, _CERT_SERIAL, _PLATFORM_CERTS, ...);
  3. the caller's environment (`WECHAT_API_BASE=http://127.0.0.1:9100 make run`,
     `PAY_TIMEOUT_MINUTES=0.5 make run`): any name set and non-empty wins over 1 and 2;
  4. AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_S3: always the stack's own
     DynamoDB, SQS and S3 (moto's server, with SQS; choose their ports with DYNAMODB_PORT / SQS_PORT);
  5. `LocalStack(env_overrides=...)`: wins over everything (tests).
A `LocalStack` used as a library (tests) does not inherit the host process's app settings
(WECHAT_*, AWS_*, ADMIN_*, TABLE_PREFIX, ...), only PATH and the like; the CLI passes
`inherit_env=True`, which makes the caller's environment layer 3.

The WeChat simulator gets none of these layers: it runs on its own demo merchant whatever the
app is given (local/sim_settings.py says why and what it does get).

Why the API is not started with the `chalice local` CLI itself: that command copies the stage's
environment_variables over os.environ (CLIFactory.load_chalice_app does
`environ.update(config.environment_variables)`), so the stage's WECHAT_API_BASE would silently
beat the caller's. `serve-api` builds the same Config and LocalDevServer that `chalice local
--stage local` builds, but passes the caller's values of the stage's names as user-provided
environment_variables, which Chalice merges last, so they win. (It also leaves out chalice's
autoreloader, which re-executes sys.argv and so cannot restart a `python -m` module, and listens
with a backlog of 512 instead of HTTPServer's 5: local/api_server.py.)
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any, Mapping

from local.dynamodb_local import DynamoDBHandle, start_dynamodb, start_moto_server
from local.pay_setup import pay_env
from local.processes import (LOG_DIR, LOOPBACK, ROOT, ManagedProcess, ProcessRegistry, StartupError,
                             chalice_stage_env, free_port, ignore_interrupts, is_set, port_from_env,
                             port_is_open, start_process, wait_for_http, wait_for_port, wait_until)
from local.sim_settings import merchant_pay_names, simulator_env, simulator_pay_env, wechat_rows

STAGE = "local"
PAY_KEYS_DIR = ROOT / ".local" / "wechat_pay"
# Names of app settings a library-mode LocalStack does not take from the host process.
APP_SETTING_PREFIXES = ("WECHAT_", "AWS_", "ADMIN_", "AUTH_TOKEN_", "TABLE_PREFIX", "STAGE", "PAY_TIMEOUT_",
                        "AUTO_CONFIRM_", "CORS_")
FORCED_ENDPOINT_NAMES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3")
API_STARTUP_SECONDS = 60.0
PROVISION_SECONDS = 180.0


def host_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any app setting: PATH, HOME, locale and the like."""
    return {name: value for name, value in base.items() if not name.startswith(APP_SETTING_PREFIXES)}


def build_env(*, base: Mapping[str, str], caller: Mapping[str, str], services: Mapping[str, str],
              endpoints: Mapping[str, str], overrides: Mapping[str, str], stage: str = STAGE) -> dict[str, str]:
    """The environment of the app's processes; see the module docstring for the precedence."""
    env = host_env(base)
    env.update(chalice_stage_env(stage))
    env.update(services)
    env.update({name: value for name, value in caller.items() if value})
    env.update(endpoints)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LocalStack:
    """DynamoDB (Local or moto), SQS (moto), the WeChat simulator, the API and the worker.

        with LocalStack(env_overrides={"PAY_TIMEOUT_MINUTES": "0.5"}) as stack:
            requests.get(stack.api_url + "/health")

    Ports left as None are picked free. Everything binds 127.0.0.1 and is stopped on exit.
    """

    def __init__(self, api_port: int | None = None, dynamodb_port: int | None = None, sqs_port: int | None = None,
                 wechat_sim_port: int | None = None, env_overrides: Mapping[str, str] | None = None, *,
                 inherit_env: bool = False, worker: bool = True, seed: bool = True, echo: bool = False,
                 worker_schedule_scale: float | None = None):
        self.ports = {name: port or free_port() for name, port in (
            ("api", api_port), ("dynamodb", dynamodb_port), ("sqs", sqs_port), ("wechat_sim", wechat_sim_port))}
        self.api_url = f"http://{LOOPBACK}:{self.ports['api']}"
        self.dynamodb_endpoint = f"http://{LOOPBACK}:{self.ports['dynamodb']}"
        self.sqs_endpoint = f"http://{LOOPBACK}:{self.ports['sqs']}"
        self.wechat_sim_url = f"http://{LOOPBACK}:{self.ports['wechat_sim']}"
        self.dynamodb_engine: str | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self._registry = ProcessRegistry()
        self._run_worker, self._seed, self._echo = worker, seed, echo
        caller = dict(os.environ) if inherit_env else {}
        self.caller_env = caller
        services = {"WECHAT_API_BASE": self.wechat_sim_url, "WECHAT_PAY_API_BASE": self.wechat_sim_url,
                    "WECHAT_PAY_NOTIFY_URL": self.api_url, "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local"}
        self._service_names = tuple(services)
        # moto's server answers every service it emulates: the posters' S3 is the SQS server.
        endpoints = {"AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint, "AWS_ENDPOINT_URL_SQS": self.sqs_endpoint,
                     "AWS_ENDPOINT_URL_S3": self.sqs_endpoint}
        overrides = dict(env_overrides or {})
        if worker_schedule_scale is not None:  # e.g. 0.01: schedules fire 100 times faster (tests)
            overrides.setdefault("WORKER_SCHEDULE_SCALE", str(worker_schedule_scale))
        self.env = build_env(base=os.environ, caller=caller, services=services, endpoints=endpoints,
                             overrides=overrides)
        # Names the caller or the overrides set: what the stack's generated Pay keys must not replace.
        self._explicit = {**{name: value for name, value in caller.items() if value}, **overrides}
        self.merchant_pay_names = merchant_pay_names(self._explicit)
        self.simulator_env = simulator_env(host=host_env(os.environ), explicit=self._explicit, app_env=self.env,
                                           simulator_url=self.wechat_sim_url, stage=STAGE)
        # WeChat pushes logistics tracking to the app, signed with the push token (docs/logistics.md).
        self.simulator_env.setdefault("WECHAT_SIM_LOGISTICS_PUSH_URL", f"{self.api_url}/v1/wechat/logistics/notify")
        if self.env.get("LOGISTICS_PUSH_TOKEN"):
            self.simulator_env.setdefault("WECHAT_SIM_LOGISTICS_PUSH_TOKEN", self.env["LOGISTICS_PUSH_TOKEN"])
        self.ignored_caller_endpoints = {name: caller[name] for name in FORCED_ENDPOINT_NAMES
                                         if is_set(caller, name) and caller[name] != self.env[name]}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "LocalStack":
        busy = [f"{name} port {port}" for name, port in self.ports.items() if port_is_open(port)]
        if busy:
            raise StartupError(f"already in use on {LOOPBACK}: {', '.join(busy)} "
                               "(set API_PORT / DYNAMODB_PORT / SQS_PORT / WECHAT_SIM_PORT to free ports)")
        try:
            self._prepare_pay_keys()
            self._start_services()
            self._provision()
            api = self._add("api", [sys.executable, "-m", "local.stack", "serve-api", "--host", LOOPBACK,
                                    "--port", str(self.ports["api"])])
            wait_for_http(f"{self.api_url}/health", timeout=API_STARTUP_SECONDS, process=api)
            if self._run_worker:
                self._add("worker", [sys.executable, "-m", "local.worker"])
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_pay_keys(self) -> None:
        """The simulator's demo merchant and platform keys (generated once in .local/); the app
        gets them for every Pay key setting nobody gave it."""
        keys = pay_env(PAY_KEYS_DIR, mch_id=simulator_pay_env(STAGE)["WECHAT_PAY_MCH_ID"])
        for name, value in keys.items():
            if not is_set(self._explicit, name):
                self.env[name] = value

    def _start_services(self) -> None:
        sqs = self._registry.add(start_moto_server(self.ports["sqs"], "sqs-moto"))
        self.processes["sqs"] = sqs
        # Its own environment, not the app's; it reads WECHAT_APPID / WECHAT_SECRET there (kept out of argv).
        sim = self._add("wechat-sim", [sys.executable, "-m", "local.wechat_sim", "--host", LOOPBACK,
                                       "--port", str(self.ports["wechat_sim"]), "--pay-keys-dir", str(PAY_KEYS_DIR),
                                       "--subscribe-quota"],  # sends need the user's acceptance, as on WeChat
                        echo=False, env=self.simulator_env)
        handle: DynamoDBHandle = self._registry.add(
            start_dynamodb(self.ports["dynamodb"], engine=self.env.get("DYNAMODB_ENGINE")))
        self.processes["dynamodb"] = handle.process
        self.dynamodb_engine = handle.engine
        wait_for_port(self.ports["sqs"], timeout=30, process=sqs)
        wait_for_http(f"{self.wechat_sim_url}/__sim/health", timeout=30, process=sim)

    def _provision(self) -> None:
        argv = [sys.executable, "-m", "local.provision", "--stage", STAGE] + ([] if self._seed else ["--no-seed"])
        process = self._add("provision", argv)
        wait_until(lambda: not process.alive(), timeout=PROVISION_SECONDS, what="provisioning to finish")
        if process.returncode != 0:
            raise StartupError(f"provisioning failed (code {process.returncode}); "
                               f"log {process.log_path}:\n{process.log_tail(40)}")

    def _add(self, name: str, argv: list[str], echo: bool | None = None,
             env: Mapping[str, str] | None = None) -> ManagedProcess:
        process = start_process(name, argv, env=self.env if env is None else env, cwd=ROOT,
                                echo=self._echo if echo is None else echo)
        self.processes[name] = self._registry.add(process)
        return process

    def stop(self) -> None:
        """Stop every process this stack started (last started first); idempotent."""
        self._registry.stop_all()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def dead_process(self) -> ManagedProcess | None:
        """A long-running child that exited on its own, if any."""
        for name, process in self.processes.items():
            if name != "provision" and not process.alive() and not process.stopped:
                return process
        return None

    # -- what to print ------------------------------------------------------------------------

    def banner(self) -> str:
        api = self.api_url
        engine = {"dynamodb-local": "DynamoDB Local", "moto": "DynamoDB (moto fallback)"}.get(self.dynamodb_engine or "")
        rows = [("API", api), ("merchant console (browser)", f"{api}/console/"),
                (engine or "DynamoDB", self.dynamodb_endpoint), ("SQS and S3 (moto)", self.sqs_endpoint)]
        rows += wechat_rows(self.env, self.wechat_sim_url, self.merchant_pay_names)
        rows.append(("logs", f"{LOG_DIR.relative_to(ROOT)}/"))
        admin_user = self.env.get("ADMIN_USERNAME", "admin")
        password = self.env.get("ADMIN_PASSWORD", "")
        if password == chalice_stage_env(STAGE).get("ADMIN_PASSWORD"):  # the public demo password
            admin_body = shlex.quote(json.dumps({"username": admin_user, "password": password}))
        else:  # a password of the caller's own is never printed
            admin_body = '"{\\"username\\":' + json.dumps(json.dumps(admin_user))[1:-1] + ',\\"password\\":\\"$ADMIN_PASSWORD\\"}"'
        get_token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])'"
        lines = ["", "Local stack is up (all on 127.0.0.1):"]
        lines += [f"  {label:<26} {value}" for label, value in rows]
        overridden = sorted(name for name in set(chalice_stage_env(STAGE)) | set(self._service_names)
                            if is_set(self.caller_env, name) and name not in FORCED_ENDPOINT_NAMES)
        if overridden:
            lines.append(f"  {'from your environment':<26} {', '.join(overridden)} (win over .chalice/config.json)")
        lines += [
            "", "Try:",
            f"  curl -s {api}/health",
            f"  curl -s {api}/openapi.json | head -c 400; echo",
            f"  curl -s -X POST {api}/v1/auth/login -H 'Content-Type: application/json' -d '{{\"code\":\"alice-1\"}}'",
            "  # each code works once, as on WeChat; alice-1, alice-2, ... are the same user",
            f"  TOKEN=$(curl -s -X POST {api}/v1/auth/login -H 'Content-Type: application/json' "
            f"-d '{{\"code\":\"alice-2\"}}' | {get_token})",
            f"  curl -s {api}/v1/me -H \"Authorization: Bearer $TOKEN\"",
            "  # browse, fill the cart, preview and order (pick up at a store), then cancel",
            f"  curl -s {api}/v1/categories",
            f"  curl -s '{api}/v1/products?category_id=c-fruit&sort=price_asc'",
            f"  curl -s {api}/v1/products/p-cherry",
            f"  curl -s -X POST {api}/v1/cart/items {AUTH} {JSON} -d '{{\"sku_id\":\"sku-fuji-5\",\"quantity\":2}}'",
            f"  curl -s -X POST {api}/v1/checkout/preview {AUTH} {JSON} "
            f"-d '{{\"delivery_method\":\"pickup\",\"store_id\":\"store-xuhui\"}}'",
            f"  curl -s -X POST {api}/v1/orders {AUTH} {JSON} "
            f"-d '{{\"delivery_method\":\"pickup\",\"store_id\":\"store-xuhui\",\"checkout_token\":\"demo-0001\"}}'",
            f"  curl -s {api}/v1/orders {AUTH}",
            "  # pay as the mini-program would: get the wx.requestPayment parameters, hand them to WeChat (simulated)",
            f"  PARAMS=$(curl -s -X POST {api}/v1/orders/<order_id>/pay {AUTH})",
            f"  curl -s -X POST {self.wechat_sim_url}/__sim/pay/request-payment {JSON} -d \"$PARAMS\"",
            "  # unpaid orders close at their deadline (PAY_TIMEOUT_MINUTES); or cancel one:",
            f"  curl -s -X POST {api}/v1/orders/<order_id>/cancel {AUTH}",
            "  # a flash sale (秒杀): enter it, then watch the ticket turn into an unpaid order",
            f"  curl -s {api}/v1/flash-sales",
            f"  curl -s -X POST {api}/v1/flash-sales/fs-demo-cherry/entries {AUTH} {JSON} "
            f"-d '{{\"sku_id\":\"sku-cherry-1kg\",\"quantity\":1,\"request_id\":\"demo-flash-0001\","
            f"\"delivery_method\":\"pickup\",\"store_id\":\"store-xuhui\"}}'",
            f"  curl -s {api}/v1/flash-sales/tickets/<ticket_id> {AUTH}",
            "  # coupons (a new user got 新人无门槛5元 at login) and 满200减20: claim two, let preview pick the best",
            f"  curl -s {api}/v1/coupons",
            f"  curl -s -X POST {api}/v1/coupons/tpl-demo-fruit-90/claim {AUTH}",
            f"  curl -s -X POST {api}/v1/coupons/tpl-demo-100-15/claim {AUTH}",
            f"  curl -s -X POST {api}/v1/checkout/preview {AUTH} {JSON} -d '{DEMO_COUPON_PREVIEW}'",
            "  # a 3-person group-buy (拼团, 19.90 instead of 29.90): open a group, pay, share its group_id to join;",
            "  # unfilled in 48 h it fails and every paid member is refunded automatically",
            f"  curl -s -X POST {api}/v1/group-buys {AUTH} {JSON} -d '{{\"activity_id\":\"act-demo-group-buy\","
            f"\"sku_id\":\"sku-navel-5\",\"delivery_method\":\"pickup\",\"store_id\":\"store-xuhui\"}}'",
            f"  curl -s {api}/v1/group-buys/<group_id> {AUTH}",
            "  # a bargain (砍价, 128 down to 68 by about 5 friends): start it, friends cut it, order with bargain_id",
            f"  curl -s -X POST {api}/v1/bargains {AUTH} {JSON} "
            f"-d '{{\"activity_id\":\"act-demo-bargain\",\"sku_id\":\"sku-cherry-1kg\"}}'",
            f"  curl -s -X POST {api}/v1/bargains/<bargain_id>/cuts -H \"Authorization: Bearer $FRIEND_TOKEN\"",
            "  # hammer a new sale with 200 buyers and check it sells exactly its units: make hammer",
            f"  curl -s -X POST {api}/v1/admin/auth/login -H 'Content-Type: application/json' -d {admin_body}",
            f"  # or run the shop in the browser with that account: {api}/console/",
            "", "Ctrl-C stops everything.", "",
        ]
        return "\n".join(lines)


AUTH = '-H "Authorization: Bearer $TOKEN"'
DEMO_COUPON_PREVIEW = ('{"items":[{"sku_id":"sku-cherry-1kg","quantity":1},{"sku_id":"sku-fuji-10","quantity":1},'
                       '{"sku_id":"sku-navel-10","quantity":1}],"delivery_method":"pickup","store_id":"store-xuhui"}')
JSON = "-H 'Content-Type: application/json'"


# ------------------------------------------------------------------------------- serve-api


def chalice_local_config(stage: str = STAGE) -> tuple[Any, Any]:
    """Chalice's CLIFactory and Config for `stage`, with os.environ winning over the stage's env.

    Loading the app (`config.chalice_app`) copies `config.environment_variables` into os.environ;
    user-provided environment_variables are merged after the stage's, so passing the caller's
    values of the stage's names there makes them win.
    """
    from chalice.cli.factory import CLIFactory

    factory = CLIFactory(str(ROOT), environ=os.environ)
    caller_values = {name: os.environ[name] for name in chalice_stage_env(stage) if is_set(os.environ, name)}
    config = factory.create_config_obj(chalice_stage_name=stage,
                                       user_provided_params={"environment_variables": caller_values})
    return factory, config


def serve_api(host: str, port: int, stage: str = STAGE) -> None:
    """What `chalice local --stage STAGE --host HOST --port PORT` does, with the caller's env winning."""
    import logging

    from chalice.deploy.validate import validate_routes

    from local.api_server import LISTEN_BACKLOG, create_api_server, effective_backlog

    os.chdir(ROOT)
    _, config = chalice_local_config(stage)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    app = config.chalice_app
    validate_routes(app.routes)
    server = create_api_server(app, config, host, port)  # chalice's server, with a backlog for bursts
    if effective_backlog() < LISTEN_BACKLOG:
        print(f"serve-api: the OS caps the listen backlog at {effective_backlog()} (net.core.somaxconn); "
              f"bursts of more connections than that wait for retries", flush=True)
    server.serve_forever()


# ------------------------------------------------------------------------------------- CLI


def run_foreground() -> int:
    registry = ProcessRegistry()
    registry.install_exit_handlers()  # SIGTERM and SIGINT -> KeyboardInterrupt; stop at exit
    stack = LocalStack(api_port=port_from_env("API_PORT"), dynamodb_port=port_from_env("DYNAMODB_PORT"),
                       sqs_port=port_from_env("SQS_PORT"), wechat_sim_port=port_from_env("WECHAT_SIM_PORT"),
                       inherit_env=True, echo=True)
    registry.add(stack)
    for name, value in stack.ignored_caller_endpoints.items():
        print(f"stack: ignoring {name}={value} from your environment: the app uses the stack's own "
              f"{stack.env[name]}", flush=True)
    code = 0
    try:
        print(f"stack: starting on {LOOPBACK} (logs in {LOG_DIR.relative_to(ROOT)}/) ...", flush=True)
        stack.start()
        print(stack.banner(), flush=True)
        while True:
            time.sleep(1.0)
            dead = stack.dead_process()
            if dead is not None:
                print(f"stack: {dead.name} exited with code {dead.returncode}; stopping everything. "
                      f"Log {dead.log_path}:\n{dead.log_tail()}", flush=True)
                code = 1
                break
    except KeyboardInterrupt:
        print("\nstack: stopping ...", flush=True)
    except StartupError as error:
        print(f"stack: could not start: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        ignore_interrupts()
        registry.stop_all()
        print("stack: stopped", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve-api", help="run only the API (chalice local, caller's env winning)")
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=None, help="default $API_PORT or 8000")
    serve.add_argument("--stage", default=STAGE)
    args = parser.parse_args(argv)
    if args.command == "serve-api":
        if args.host not in (LOOPBACK, "localhost"):
            parser.error("--host must be 127.0.0.1: the local API is never exposed")
        try:
            serve_api(args.host, args.port or port_from_env("API_PORT"), args.stage)
        except KeyboardInterrupt:
            pass
        return 0
    return run_foreground()


if __name__ == "__main__":
    sys.exit(main())
