"""WeChat Pay keys for the local stack and tests: the merchant's key pair (the app signs with its
private key; the simulator checks with its certificate) and the simulator's platform keys (the
simulator signs; the app verifies with the certificate and with the PUB_KEY_ID public key).

Everything lives in a git-ignored folder (default `.local/wechat_pay/`) and is generated on
first use, so a fresh machine needs nothing but this.
"""
from __future__ import annotations

import fcntl
from pathlib import Path

from local.wechat_sim.pay_keys import (MERCHANT_KEY_FILE, ensure_platform_keys, generate_merchant_keys)

# Public demo values for the local stack only (never real merchant secrets).
DEMO_PAY_ENV = {
    "WECHAT_PAY_MCH_ID": "1900000109",
    "WECHAT_PAY_API_KEY": "localdemo0v2apikey00000000000000",
    "WECHAT_PAY_APIV3_KEY": "localdemo0v3apikey00000000000000",
}


def pay_env(directory: Path, mch_id: str = DEMO_PAY_ENV["WECHAT_PAY_MCH_ID"]) -> dict[str, str]:
    """Generate (or reuse) the keys in `directory`; return the app's WECHAT_PAY_* key settings.

    Under a file lock: parallel test workers (pytest-xdist) may start local stacks at once, and
    one must not overwrite keys another's simulator has already loaded."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    with (Path(directory) / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        serial = generate_merchant_keys(directory)
        platform = ensure_platform_keys(directory, mch_id)
    return {
        "WECHAT_PAY_PRIVATE_KEY": str(Path(directory) / MERCHANT_KEY_FILE),
        "WECHAT_PAY_CERT_SERIAL": serial,
        "WECHAT_PAY_PLATFORM_CERTS": platform["platform_cert"],
        "WECHAT_PAY_PUBLIC_KEY": platform["platform_public_key"],
        "WECHAT_PAY_PUBLIC_KEY_ID": platform["platform_public_key_id"],
    }
