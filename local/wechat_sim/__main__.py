"""Run the WeChat simulator in the foreground:

    python -m local.wechat_sim --host 127.0.0.1 --port 8003 \
        [--appid X --secret Y] [--token-ttl 7200] [--code2session-per-minute 100] [--verbose]

Stops cleanly on SIGINT/SIGTERM.  Only loopback hosts are accepted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import is_loopback, start_simulator


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.wechat_sim",
                                     description="Local WeChat open-API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003, help="0 picks a free port")
    parser.add_argument("--appid", help="default: $WECHAT_APPID or wx_demo_appid")
    parser.add_argument("--secret", help="default: $WECHAT_SECRET or demo_app_secret")
    parser.add_argument("--token-ttl", type=int, default=7200, help="access_token lifetime (s)")
    parser.add_argument("--code2session-per-minute", type=int, default=100,
                        help="successful logins allowed per openid per minute")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address (got {args.host!r}); "
                     "the simulator accepts any login code and must not be exposed")
    if (args.appid is None) != (args.secret is None):
        parser.error("--appid and --secret must be given together")
    if args.token_ttl <= 0 or args.code2session_per_minute <= 0:
        parser.error("--token-ttl and --code2session-per-minute must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apps = {args.appid: args.secret} if args.appid else None
    try:
        sim = start_simulator(
            host=args.host, port=args.port, apps=apps, token_ttl=args.token_ttl,
            code2session_per_minute=args.code2session_per_minute, verbose=args.verbose,
        )
    except OSError as exc:
        print(f"wechat-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
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


if __name__ == "__main__":
    sys.exit(main())
