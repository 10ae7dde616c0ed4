"""The environment the app reads, fixed before anything imports it (as tests/conftest.py does).

Table names are read at import time, so TABLE_PREFIX must be set before `import app`; the
DynamoDB endpoint, WeChat base URL and SQS endpoint are set once those servers are up, still
before import.
"""
from __future__ import annotations

import os
import sys

WECHAT_APPID = "wx_bench_appid"
WECHAT_SECRET = "bench_app_secret_value"

BASE_ENV = {
    "STAGE": "bench",
    "TABLE_PREFIX": "bench-",
    # Fake credentials: nothing here may reach a real AWS account.
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    # A user's ~/.aws files could name another region or endpoint; read none.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "WECHAT_APPID": WECHAT_APPID,
    "WECHAT_SECRET": WECHAT_SECRET,
    "WECHAT_API_BASE": "http://127.0.0.1:9",  # replaced by the simulator's URL
    "AUTH_TOKEN_SECRET": "bench-token-secret-at-least-32-characters",
    "ADMIN_USERNAME": "admin",
    "ADMIN_PASSWORD": "admin-bench-password",
}
SCRUBBED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE",
            "AWS_SESSION_TOKEN", "WECHAT_SECRET_SSM", "AUTH_TOKEN_SECRET_SSM", "ADMIN_PASSWORD_SSM")


def child_env() -> dict[str, str]:
    """A copy of this process's environment, scrubbed, with BASE_ENV (for subprocesses)."""
    environ = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
    environ.update(BASE_ENV)
    return environ


def apply_base() -> None:
    """Set BASE_ENV in this process; call before importing chalicelib or app."""
    for name in SCRUBBED:
        os.environ.pop(name, None)
    os.environ.update(BASE_ENV)


def point_at(dynamodb_endpoint: str, wechat_base: str, sqs_endpoint: str | None = None) -> None:
    """Aim the app at the local DynamoDB, WeChat simulator and (when given) SQS server, and drop
    anything cached before."""
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    os.environ["WECHAT_API_BASE"] = wechat_base
    if sqs_endpoint:
        os.environ["AWS_ENDPOINT_URL_SQS"] = sqs_endpoint
    if "chalicelib.settings" in sys.modules:  # imported earlier: forget what it read
        from chalicelib import queues, settings
        from chalicelib.services import wechat_clients
        from chalicelib.storage import schema

        settings.reset_settings_cache()
        wechat_clients.reset_clients()
        schema.reset_connections()
        queues.reset_clients()
