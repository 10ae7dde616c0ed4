"""WeChat Pay key material and settings of the simulator.

Two sides, as in production:
- the *merchant* (our app) signs APIv3 requests with its private key; the
  simulator only ever holds the merchant's PUBLIC side (certificate or public
  key PEM) plus its serial, to verify them;
- the *platform* (WeChat) signs responses and notifies.  The simulator has
  two platform keys, like a real merchant account: the platform-certificate
  key (``Wechatpay-Serial`` = the certificate serial) and the newer "WeChat Pay
  public key" (``Wechatpay-Serial`` = ``PUB_KEY_ID_...``).  ``sign_with``
  picks which one signs.  Both are generated at start-up unless given.

``generate_merchant_keys(dir)`` and ``ensure_platform_keys(dir)`` write PEM
files a local stack can hand to the app and to the simulator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.x509.oid import NameOID

DEFAULT_MCHID = "1900000109"
DEFAULT_APIV3_KEY = "simAPIv3Key00000000000000000000k"   # 32 bytes, public test value
DEFAULT_API_KEY = "simAPIv2Key00000000000000000000k"     # 32 chars, public test value
SIGN_WITH = ("cert", "pubkey")

# Files written by generate_merchant_keys / ensure_platform_keys.
MERCHANT_KEY_FILE, MERCHANT_CERT_FILE = "apiclient_key.pem", "apiclient_cert.pem"
MERCHANT_PUBLIC_KEY_FILE = "apiclient_public_key.pem"
PLATFORM_KEY_FILE, PLATFORM_CERT_FILE = "platform_key.pem", "platform_cert.pem"
PUBKEY_KEY_FILE, PUBLIC_KEY_FILE = "platform_pubkey_key.pem", "platform_public_key.pem"
PLATFORM_INFO_FILE = "platform.json"

# start_simulator() keyword arguments handled here rather than by state.Knobs.
PAY_KNOBS = ("mchid", "merchant_cert", "merchant_serial", "apiv3_key", "api_key",
             "platform_key", "platform_cert", "platform_cert_serial", "pubkey_key",
             "public_key_id", "sign_with", "pay_keys_dir", "notify_retry_delays_ms",
             "notify_timeout_s", "refund_delay_ms", "refund_notify_url")


# -- PEM helpers -----------------------------------------------------------------

def read_pem(value: str | bytes | os.PathLike) -> bytes:
    """PEM given as text/bytes, or a path to a PEM file."""
    if isinstance(value, bytes):
        return value
    text = os.fspath(value)
    if "-----BEGIN" in text:
        return text.encode("ascii")
    return Path(text).read_bytes()


def new_rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key: RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(value: str | bytes | os.PathLike) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(read_pem(value), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return key


def cert_serial(cert: x509.Certificate) -> str:
    """Serial as WeChat prints it: upper-case hex."""
    return format(cert.serial_number, "X")


def self_signed_cert(key: RSAPrivateKey, common_name: str, serial: int | None = None) -> x509.Certificate:
    # 40 hex digits like real WeChat Pay certificate serials (top nibble non-zero).
    serial = serial or (16**39 + secrets.randbelow(2**159 - 16**39))
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wechat-sim (test only)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=5 * 365))
            .sign(key, hashes.SHA256()))


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_merchant_public(value: str | bytes | os.PathLike) -> tuple[RSAPublicKey, str | None]:
    """Merchant certificate or public key PEM -> (public key, serial if a cert)."""
    pem = read_pem(value)
    if b"BEGIN CERTIFICATE" in pem:
        cert = x509.load_pem_x509_certificate(pem)
        key, serial = cert.public_key(), cert_serial(cert)
    else:
        key, serial = serialization.load_pem_public_key(pem), None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the merchant key must be RSA")
    return key, serial


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


# -- files for a local stack ---------------------------------------------------------

def generate_merchant_keys(directory: str | os.PathLike, overwrite: bool = False) -> str:
    """Write the merchant's ``apiclient_key.pem`` (for the app),
    ``apiclient_cert.pem`` and ``apiclient_public_key.pem`` (for the simulator)
    into ``directory``; return the certificate serial (WECHAT_PAY_CERT_SERIAL).
    Existing files are kept (and their serial returned) unless ``overwrite``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / MERCHANT_KEY_FILE, folder / MERCHANT_CERT_FILE
    if not overwrite and key_path.exists() and cert_path.exists():
        return cert_serial(x509.load_pem_x509_certificate(cert_path.read_bytes()))
    key = new_rsa_key()
    cert = self_signed_cert(key, "wechat-sim merchant")
    _write(key_path, private_pem(key), private=True)
    _write(cert_path, cert_pem(cert))
    _write(folder / MERCHANT_PUBLIC_KEY_FILE, public_pem(key.public_key()))
    return cert_serial(cert)


def new_public_key_id(mchid: str = DEFAULT_MCHID) -> str:
    digits = "".join(ch for ch in mchid if ch.isdigit())[:10].zfill(10)
    return f"PUB_KEY_ID_01{digits}{secrets.randbelow(10**16):016d}"


def ensure_platform_keys(directory: str | os.PathLike, mchid: str = DEFAULT_MCHID) -> dict[str, str]:
    """Load the simulator's platform keys from ``directory``, creating them on
    first use, so the app's configuration survives simulator restarts.
    Returns the paths and ids (``platform_cert_serial``, ``platform_public_key_id``)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / PLATFORM_INFO_FILE
    files = [folder / name for name in (PLATFORM_KEY_FILE, PLATFORM_CERT_FILE,
                                        PUBKEY_KEY_FILE, PUBLIC_KEY_FILE)]
    if not (info_path.exists() and all(p.exists() for p in files)):
        platform = PlatformKeys.generate(mchid)
        _write(files[0], private_pem(platform.cert_key), private=True)
        _write(files[1], platform.cert_pem)
        _write(files[2], private_pem(platform.pubkey_key), private=True)
        _write(files[3], platform.public_key_pem)
        info_path.write_text(json.dumps({"platform_cert_serial": platform.cert_serial,
                                         "platform_public_key_id": platform.public_key_id}, indent=2))
    info = json.loads(info_path.read_text())
    return {**info, "platform_key": str(files[0]), "platform_cert": str(files[1]),
            "pubkey_key": str(files[2]), "platform_public_key": str(files[3])}


# -- runtime objects ---------------------------------------------------------------------

@dataclass
class PlatformKeys:
    cert_key: RSAPrivateKey
    cert_pem: bytes
    cert_serial: str
    pubkey_key: RSAPrivateKey
    public_key_id: str

    @property
    def public_key_pem(self) -> bytes:
        return public_pem(self.pubkey_key.public_key())

    @classmethod
    def generate(cls, mchid: str) -> "PlatformKeys":
        return cls.build(new_rsa_key(), None, None, new_rsa_key(), new_public_key_id(mchid))

    @classmethod
    def build(cls, cert_key: RSAPrivateKey, cert: Any, serial: str | None,
              pubkey_key: RSAPrivateKey, public_key_id: str) -> "PlatformKeys":
        if cert is None:
            cert_obj = self_signed_cert(cert_key, "Tenpay.com Root CA (wechat-sim)",
                                        int(serial, 16) if serial else None)
        else:
            cert_obj = x509.load_pem_x509_certificate(read_pem(cert))
        return cls(cert_key, cert_pem(cert_obj), cert_serial(cert_obj), pubkey_key, public_key_id)


class PayConfig:
    """Merchant/platform settings; see ``PAY_KNOBS`` and start_simulator()."""

    def __init__(self, mchid: str | None = None, merchant_cert: Any = None,
                 merchant_serial: str | None = None, apiv3_key: str | None = None,
                 api_key: str | None = None, platform_key: Any = None, platform_cert: Any = None,
                 platform_cert_serial: str | None = None, pubkey_key: Any = None,
                 public_key_id: str | None = None, sign_with: str = "cert",
                 pay_keys_dir: Any = None, notify_retry_delays_ms: Any = (200, 500, 1000, 2000),
                 notify_timeout_s: float = 5.0, refund_delay_ms: int | None = 500,
                 refund_notify_url: str | None = None) -> None:
        env = os.environ
        self.mchid = mchid or env.get("WECHAT_PAY_MCH_ID") or DEFAULT_MCHID
        self.apiv3_key = apiv3_key or env.get("WECHAT_PAY_APIV3_KEY") or DEFAULT_APIV3_KEY
        self.api_key = api_key or env.get("WECHAT_PAY_API_KEY") or DEFAULT_API_KEY
        if len(self.apiv3_key.encode("utf-8")) != 32:
            if apiv3_key:
                raise ValueError("apiv3_key must be 32 bytes (AEAD_AES_256_GCM)")
            # From the environment: warn rather than refuse to start, so a bad
            # Pay setting cannot take the open-API simulator down with it.
            print("wechat-sim: warning: $WECHAT_PAY_APIV3_KEY is not 32 bytes; "
                  "WeChat's APIv3 keys are (AEAD_AES_256_GCM)", file=sys.stderr)
        self.set_sign_with(sign_with)
        self.retry_delays_ms = tuple(int(d) for d in notify_retry_delays_ms)
        if len(self.retry_delays_ms) > 20 or any(d < 0 or d > 600_000 for d in self.retry_delays_ms):
            raise ValueError("notify_retry_delays_ms: at most 20 delays of 0..600000 ms")
        self.notify_timeout_s = float(notify_timeout_s)
        self.refund_delay_ms = refund_delay_ms if refund_delay_ms is None or refund_delay_ms >= 0 else None
        self.refund_notify_url = refund_notify_url
        self.merchant_key: RSAPublicKey | None = None
        self.merchant_serial = merchant_serial
        keys_dir = Path(pay_keys_dir) if pay_keys_dir else None
        if merchant_cert is None and keys_dir and (keys_dir / MERCHANT_CERT_FILE).exists():
            merchant_cert = keys_dir / MERCHANT_CERT_FILE
        if merchant_cert is not None:
            self.merchant_key, serial = load_merchant_public(merchant_cert)
            if serial and merchant_serial and serial.upper() != merchant_serial.upper():
                raise ValueError(f"merchant_serial {merchant_serial} is not the certificate's ({serial})")
            self.merchant_serial = (serial or merchant_serial or "").upper() or None
        self._platform: PlatformKeys | None = None
        self._platform_lock = threading.Lock()
        if platform_key is not None or pubkey_key is not None:
            self._platform = PlatformKeys.build(
                load_private_key(platform_key) if platform_key is not None else new_rsa_key(),
                platform_cert, platform_cert_serial,
                load_private_key(pubkey_key) if pubkey_key is not None else new_rsa_key(),
                public_key_id or new_public_key_id(self.mchid))
        elif keys_dir:
            info = ensure_platform_keys(keys_dir, self.mchid)
            self._platform = PlatformKeys.build(
                load_private_key(info["platform_key"]), info["platform_cert"], None,
                load_private_key(info["pubkey_key"]), info["platform_public_key_id"])

    def set_sign_with(self, mode: str) -> None:
        if mode not in SIGN_WITH:
            raise ValueError(f"sign_with must be one of {SIGN_WITH}")
        self.sign_with = mode

    @property
    def platform(self) -> PlatformKeys:
        """Created on first use so simulators that never touch Pay start fast."""
        with self._platform_lock:
            if self._platform is None:
                self._platform = PlatformKeys.generate(self.mchid)
            return self._platform

    def signer(self) -> tuple[str, RSAPrivateKey]:
        """(Wechatpay-Serial, key) that signs responses and notifies now."""
        platform = self.platform
        if self.sign_with == "pubkey":
            return platform.public_key_id, platform.pubkey_key
        return platform.cert_serial, platform.cert_key

    def public_view(self) -> dict[str, Any]:
        platform = self.platform
        return {"platform_cert_pem": platform.cert_pem.decode("ascii"),
                "platform_cert_serial": platform.cert_serial,
                "platform_public_key_pem": platform.public_key_pem.decode("ascii"),
                "platform_public_key_id": platform.public_key_id,
                "sign_with": self.sign_with, "mchid": self.mchid,
                "merchant_serial": self.merchant_serial,
                "merchant_key_configured": self.merchant_key is not None}


def pay_config(state: Any) -> PayConfig:
    """The state's PayConfig (a default one if start_simulator set none)."""
    with state.lock:
        config = getattr(state, "pay", None)
        if config is None:
            config = state.pay = PayConfig()
        return config
