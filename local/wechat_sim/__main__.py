"""Run the WeChat simulator in the foreground:

    python -m local.wechat_sim --host 127.0.0.1 --port 8003 \\
        [--appid X --secret Y] [--token-ttl 7200] [--code2session-per-minute 100] [--verbose] [--subscribe-quota] \\
        [--mchid M] [--pay-keys-dir DIR | --merchant-cert PEM --platform-key PEM ...] \\
        [--sign-with cert|pubkey] [--refund-delay-ms 500] [--notify-retry-delays-ms 200,500,1000,2000]

WeChat Pay secrets come from the environment only (as the app reads them):
WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY (v2), WECHAT_PAY_APIV3_KEY (v3).
Stops cleanly on SIGINT/SIGTERM.  Only loopback hosts are accepted.

Client commands against a running simulator (``--base``, default
$WECHAT_SIM_BASE or http://127.0.0.1:8003):

    python -m local.wechat_sim pay OUT_TRADE_NO [--openid O] [--force] [knobs]
    python -m local.wechat_sim refund-notify OUT_REFUND_NO [--status SUCCESS|ABNORMAL|CLOSED] [knobs]
    python -m local.wechat_sim release [NOTIFY_ID ...] [--lifo]
    python -m local.wechat_sim notifies [--out-trade-no N]
    python -m local.wechat_sim platform [--out DIR]      # platform cert/public key (+ ids)
    python -m local.wechat_sim merchant-keys DIR         # writes merchant key + cert, prints serial

knobs: --duplicate N --concurrent --delay-ms MS --corrupt KIND --hold --max-attempts N --no-wait
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from . import generate_merchant_keys, is_loopback, start_simulator
from .pay_keys import MERCHANT_CERT_FILE, MERCHANT_KEY_FILE, MERCHANT_PUBLIC_KEY_FILE
from .pay_messages import CORRUPTIONS

CLIENT_COMMANDS = ("pay", "refund-notify", "release", "notifies", "platform", "merchant-keys")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m local.wechat_sim",
                                     description="Local WeChat open-API and WeChat Pay simulator "
                                                 f"(client commands: {', '.join(CLIENT_COMMANDS)})")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003, help="0 picks a free port")
    parser.add_argument("--appid", help="default: $WECHAT_APPID or wx_demo_appid")
    parser.add_argument("--secret", help="default: $WECHAT_SECRET or demo_app_secret")
    parser.add_argument("--token-ttl", type=int, default=7200, help="access_token lifetime (s)")
    parser.add_argument("--code2session-per-minute", type=int, default=100,
                        help="successful logins allowed per openid per minute")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--subscribe-quota", action="store_true",
                        help="subscribe/send answers 43101 unless the user accepted the template "
                             "(POST /__sim/subscribe/accept), as WeChat's one-time quota")
    pay = parser.add_argument_group("WeChat Pay")
    pay.add_argument("--mchid", help="default: $WECHAT_PAY_MCH_ID or 1900000109")
    pay.add_argument("--pay-keys-dir", default=env.get("WECHAT_SIM_PAY_KEYS_DIR"),
                     help="load/create the platform keys here; its apiclient_cert.pem (from "
                          "merchant-keys) is the merchant certificate [$WECHAT_SIM_PAY_KEYS_DIR]")
    pay.add_argument("--merchant-cert", default=env.get("WECHAT_SIM_MERCHANT_CERT"),
                     help="merchant certificate or public key PEM (path) that verifies v3 "
                          "requests [$WECHAT_SIM_MERCHANT_CERT]")
    pay.add_argument("--merchant-serial", default=env.get("WECHAT_PAY_CERT_SERIAL"),
                     help="merchant certificate serial (taken from the certificate if one is "
                          "given) [$WECHAT_PAY_CERT_SERIAL]")
    pay.add_argument("--platform-key", help="platform-certificate private key PEM (path)")
    pay.add_argument("--platform-cert", help="its certificate PEM (default: self-signed)")
    pay.add_argument("--pubkey-key", help="private key PEM behind the PUB_KEY_ID_ public key")
    pay.add_argument("--public-key-id", help="PUB_KEY_ID_... (default: generated)")
    pay.add_argument("--sign-with", choices=("cert", "pubkey"),
                     default=env.get("WECHAT_SIM_PAY_SIGN_WITH", "cert"),
                     help="key that signs answers and notifies [$WECHAT_SIM_PAY_SIGN_WITH]")
    pay.add_argument("--refund-delay-ms", type=int, default=500,
                     help="refunds turn SUCCESS (and notify) after this; -1: only via refund-notify")
    pay.add_argument("--refund-notify-url", help="refund notify URL when a refund names none")
    pay.add_argument("--notify-retry-delays-ms", default="200,500,1000,2000",
                     help="waits between notify attempts (attempts = delays + 1)")
    pay.add_argument("--notify-timeout-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address (got {args.host!r}); "
                     "the simulator accepts any login code and must not be exposed")
    if (args.appid is None) != (args.secret is None):
        parser.error("--appid and --secret must be given together")
    if args.token_ttl <= 0 or args.code2session_per_minute <= 0:
        parser.error("--token-ttl and --code2session-per-minute must be positive")
    try:
        args.notify_retry_delays_ms = tuple(int(x) for x in args.notify_retry_delays_ms.split(",") if x)
    except ValueError:
        parser.error("--notify-retry-delays-ms must be comma-separated integers")
    return args


def pay_knobs(args: argparse.Namespace) -> dict:
    knobs = {"mchid": args.mchid, "pay_keys_dir": args.pay_keys_dir, "merchant_cert": args.merchant_cert,
             "merchant_serial": args.merchant_serial, "platform_key": args.platform_key,
             "platform_cert": args.platform_cert, "pubkey_key": args.pubkey_key,
             "public_key_id": args.public_key_id, "sign_with": args.sign_with,
             "refund_delay_ms": None if args.refund_delay_ms < 0 else args.refund_delay_ms,
             "refund_notify_url": args.refund_notify_url,
             "notify_retry_delays_ms": args.notify_retry_delays_ms,
             "notify_timeout_s": args.notify_timeout_s}
    return {k: v for k, v in knobs.items() if v is not None or k == "refund_delay_ms"}


def serve(argv: list[str] | None) -> int:
    args = parse_args(argv)
    apps = {args.appid: args.secret} if args.appid else None
    try:
        sim = start_simulator(
            host=args.host, port=args.port, apps=apps, token_ttl=args.token_ttl,
            code2session_per_minute=args.code2session_per_minute, verbose=args.verbose,
            subscribe_quota=args.subscribe_quota,
            **pay_knobs(args),
        )
    except OSError as exc:
        print(f"wechat-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"wechat-sim: bad WeChat Pay configuration: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Handlers only set a flag; the actual shutdown runs on the main thread.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"wechat-sim listening on {sim.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


# -- client commands -----------------------------------------------------------------------------

def _client_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.wechat_sim")
    sub = parser.add_subparsers(dest="command", required=True)
    default_base = os.environ.get("WECHAT_SIM_BASE", "http://127.0.0.1:8003")

    def command(name: str, help_text: str, knobs: bool = False) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--base", default=default_base, help="simulator base URL [$WECHAT_SIM_BASE]")
        if knobs:
            cmd.add_argument("--duplicate", type=int, default=0, help="extra copies of the notify")
            cmd.add_argument("--concurrent", action="store_true", help="send the copies at once")
            cmd.add_argument("--delay-ms", type=int, default=0)
            cmd.add_argument("--corrupt", choices=sorted(CORRUPTIONS))
            cmd.add_argument("--hold", action="store_true", help="keep the notify until release")
            cmd.add_argument("--max-attempts", type=int)
            cmd.add_argument("--no-wait", action="store_true", help="do not wait for delivery")
        return cmd

    command("pay", "the user pays an order; its notify is sent", knobs=True)
    sub.choices["pay"].add_argument("out_trade_no")
    sub.choices["pay"].add_argument("--openid")
    sub.choices["pay"].add_argument("--force", action="store_true", help="pay even a CLOSED/expired order")
    command("refund-notify", "finish a PROCESSING refund and notify it", knobs=True)
    sub.choices["refund-notify"].add_argument("out_refund_no")
    sub.choices["refund-notify"].add_argument("--status", default="SUCCESS",
                                              choices=("SUCCESS", "ABNORMAL", "CLOSED"))
    command("release", "deliver held notifies in the given order")
    sub.choices["release"].add_argument("ids", nargs="*")
    sub.choices["release"].add_argument("--lifo", action="store_true", help="newest first")
    command("notifies", "list notifies and their attempts")
    sub.choices["notifies"].add_argument("--out-trade-no")
    command("platform", "print the platform certificate/public key and their ids")
    sub.choices["platform"].add_argument("--out", help="also write platform_cert.pem and "
                                                       "platform_public_key.pem here")
    keys = sub.add_parser("merchant-keys", help="write a merchant key + self-signed cert")
    keys.add_argument("dir")
    keys.add_argument("--overwrite", action="store_true")
    return parser


def _call(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    if not is_loopback(urlsplit(base).hostname or ""):
        raise SystemExit("--base must point at a loopback simulator")
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=90) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _knobs(args: argparse.Namespace) -> dict:
    knobs = {"duplicate": args.duplicate, "concurrent": args.concurrent, "delay_ms": args.delay_ms,
             "corrupt": args.corrupt, "hold": args.hold, "wait": not args.no_wait,
             "max_attempts": args.max_attempts}
    return {k: v for k, v in knobs.items() if v is not None}


def client(argv: list[str]) -> int:
    args = _client_parser().parse_args(argv)
    if args.command == "merchant-keys":
        serial = generate_merchant_keys(args.dir, overwrite=args.overwrite)
        folder = Path(args.dir)
        print(json.dumps({"serial": serial, "private_key": str(folder / MERCHANT_KEY_FILE),
                          "cert": str(folder / MERCHANT_CERT_FILE),
                          "public_key": str(folder / MERCHANT_PUBLIC_KEY_FILE)}, indent=2))
        return 0
    if args.command == "pay":
        body = {"out_trade_no": args.out_trade_no, "force": args.force, **_knobs(args)}
        if args.openid:
            body["openid"] = args.openid
        status, out = _call(args.base, "POST", "/__sim/pay/pay", body)
    elif args.command == "refund-notify":
        body = {"out_refund_no": args.out_refund_no, "status": args.status, **_knobs(args)}
        status, out = _call(args.base, "POST", "/__sim/pay/refund-notify", body)
    elif args.command == "release":
        body = {"ids": args.ids or None, "order": "lifo" if args.lifo else "fifo"}
        status, out = _call(args.base, "POST", "/__sim/pay/release", body)
    elif args.command == "notifies":
        query = f"?out_trade_no={args.out_trade_no}" if args.out_trade_no else ""
        status, out = _call(args.base, "GET", "/__sim/pay/notifies" + query)
    else:  # platform
        status, out = _call(args.base, "GET", "/__sim/pay/platform")
        if status == 200 and args.out:
            folder = Path(args.out)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "platform_cert.pem").write_text(out["platform_cert_pem"])
            (folder / "platform_public_key.pem").write_text(out["platform_public_key_pem"])
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0 if status < 400 else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLIENT_COMMANDS:
        return client(argv)
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
