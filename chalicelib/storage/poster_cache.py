"""The poster cache: one S3 object per poster, `posters/<content key>.png` in POSTER_BUCKET.

The key names the content (domain/posters.py PosterContent.key), so an object never changes
once written: a put needs no condition (two requests making the same poster at once write the
same bytes), and a read needs no freshness check. The bucket's lifecycle rule expires objects
(infra/build_template.py), so posters of old prices and pictures go by themselves.

The cache is best-effort: an S3 failure on a read is a miss and on a write is logged, so a poster
is still made and served (at the price of a WeChat call), never a 500.
"""
from __future__ import annotations

import functools
from typing import Any

from chalicelib.log import get_logger

log = get_logger(__name__)

PREFIX = "posters/"
CONTENT_TYPE = "image/png"
MAX_POSTER_BYTES = 4 * 1024 * 1024
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def object_key(content_key: str) -> str:
    return f"{PREFIX}{content_key}.png"


def get_poster(bucket: str, content_key: str) -> bytes | None:
    """The cached poster's bytes, or None (not cached, or S3 failed: logged)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = _client().get_object(Bucket=bucket, Key=object_key(content_key))
        body = answer["Body"]
        try:
            data = body.read(MAX_POSTER_BYTES + 1)
        finally:
            body.close()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code not in MISSING_CODES:
            log.warning("poster cache read failed; making the poster again", error=code)
        return None
    except BotoCoreError as error:
        log.warning("poster cache unreachable; making the poster again", error=type(error).__name__)
        return None
    return data if 0 < len(data) <= MAX_POSTER_BYTES else None


def put_poster(bucket: str, content_key: str, png: bytes) -> bool:
    """Store the poster; False (logged) when S3 refused or failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _client().put_object(Bucket=bucket, Key=object_key(content_key), Body=png, ContentType=CONTENT_TYPE,
                             CacheControl="private, max-age=86400")
    except (BotoCoreError, ClientError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else type(error).__name__
        log.warning("poster cache write failed; served without caching", error=str(code))
        return False
    return True


def ensure_bucket(bucket: str) -> bool:
    """Create the bucket when it is missing (`make tables` on the local stack; the package
    creates the real one). True when it was created."""
    from botocore.exceptions import ClientError

    client = _client()
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = client.meta.region_name
    location = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        client.create_bucket(Bucket=bucket, **location)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
        return False
    return True


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: a request waits for this, and the cache is optional.
    return boto3.client("s3", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2,
                                                                                        "mode": "standard"}))


def reset_client() -> None:
    _client.cache_clear()
