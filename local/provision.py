"""`make tables`: create every table and queue, the poster bucket (POSTER_BUCKET), the first admin,
and the demo data (idempotent).

    python -m local.provision [--stage local] [--no-seed]

It works against whatever endpoints the environment names. Names the caller did not set come
from the stage's `environment_variables` in `.chalice/config.json` (the stage is `--stage`, else
`$STAGE`, else `local`); for the `local` stage the AWS endpoints default to the local stack's
loopback ports (DYNAMODB_PORT 8001, SQS_PORT 8002; S3 is moto's server on the SQS port), so a
local run never reaches real AWS.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import urllib.parse
from typing import Callable

from local.processes import apply_local_defaults, port_is_open


def _say(lines: list[str], line: str, echo: bool) -> None:
    lines.append(line)
    if echo:
        print(f"provision: {line}", flush=True)


def provision(seed: bool = True, echo: bool = True) -> list[str]:
    """Create tables, queues, the first admin and (when local/seed.py exists) demo data.

    Reads the environment as it is: set it (or call `apply_local_defaults`) before the first
    import of `chalicelib`, whose table and queue names are fixed at import time.
    """
    from chalicelib.queues import create_all_queues
    from chalicelib.services.auth import ensure_first_admin
    from chalicelib.storage.schema import create_all_tables

    lines: list[str] = []
    created = create_all_tables()
    _say(lines, f"tables: created {', '.join(created)}" if created else "tables: all present, none created", echo)
    urls = create_all_queues()
    _say(lines, f"queues: {len(urls)} ready (with dead-letter queues): "
                f"{', '.join(url.rsplit('/', 1)[-1] for url in urls)}", echo)
    admin = os.environ.get("ADMIN_USERNAME") or ""
    if ensure_first_admin():
        _say(lines, f"admin: created {admin!r}", echo)
    elif admin and (os.environ.get("ADMIN_PASSWORD") or os.environ.get("ADMIN_PASSWORD_SSM")):
        _say(lines, f"admin: {admin!r} already present", echo)
    else:
        _say(lines, "admin: skipped (ADMIN_USERNAME / ADMIN_PASSWORD not set)", echo)
    bucket = os.environ.get("POSTER_BUCKET") or ""
    if bucket:
        from chalicelib.storage.poster_cache import ensure_bucket

        _say(lines, f"poster bucket: {bucket} {'created' if ensure_bucket(bucket) else 'present'}", echo)
    if seed:
        seeder = _demo_seeder()
        if seeder is None:
            _say(lines, "demo data: skipped (local/seed.py does not exist yet)", echo)
        else:
            for line in seeder():
                _say(lines, f"demo data: {line}", echo)
    return lines


def _demo_seeder() -> Callable[[], list[str]] | None:
    try:
        seed = importlib.import_module("local.seed")
    except ModuleNotFoundError as error:
        if error.name == "local.seed":
            return None
        raise  # the seeder exists but one of its imports is missing: that is a bug to see
    return seed.seed_demo_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.provision", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default=None, help="stage whose config fills unset names (default $STAGE or local)")
    parser.add_argument("--no-seed", action="store_true", help="do not load the demo store")
    args = parser.parse_args(argv)
    apply_local_defaults(os.environ, args.stage)
    print(f"provision: DynamoDB {os.environ.get('AWS_ENDPOINT_URL_DYNAMODB') or '(AWS default endpoint)'}, "
          f"SQS {os.environ.get('AWS_ENDPOINT_URL_SQS') or '(AWS default endpoint)'}, "
          f"prefix {os.environ.get('TABLE_PREFIX', '')!r}", flush=True)
    unreachable = _unreachable_loopback_endpoints()
    if unreachable:
        print(f"provision: nothing answers at {', '.join(unreachable)}: start the local stack (`make run`) "
              "or point AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS elsewhere", file=sys.stderr, flush=True)
        return 1
    provision(seed=not args.no_seed)
    return 0


def _unreachable_loopback_endpoints() -> list[str]:
    """Loopback endpoints the environment names that nothing listens on (remote ones are not checked)."""
    unreachable = []
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3"):
        url = urllib.parse.urlsplit(os.environ.get(name) or "")
        if url.hostname in ("127.0.0.1", "localhost") and url.port and not port_is_open(url.port):
            unreachable.append(f"{name}={url.geturl()}")
    return unreachable


if __name__ == "__main__":
    sys.exit(main())
