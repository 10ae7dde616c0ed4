"""WeChat's mini-program code without a count limit: wxacode.getUnlimited.

    POST {WECHAT_API_BASE}/wxa/getwxacodeunlimit?access_token=...
    {"scene": "...", "page": "pages/product/index", "check_path": true, "env_version": "release",
     "width": 430}

Success is the image itself (PNG or JPEG bytes, not JSON); a refusal is WeChat's JSON
`{"errcode", "errmsg"}` (40169 scene too long, 40129 scene characters, 41030 page, 45009 daily
quota, 40001 access token, ...), raised as WeChatApiError like every other open-API refusal. An
answer that is neither (HTTP error, over MAX_ANSWER_BYTES, another format) is WeChatUnavailable.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable, _errcode, _garbage, _send

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
API = "getwxacodeunlimit"
CODE_WIDTH = 430  # WeChat's default; 280-1280


def get_unlimited(base_url: str, access_token: str, *, scene: str, page: str, env_version: str,
                  width: int = CODE_WIDTH, timeout: float = 5.0) -> bytes:
    """The code's image bytes (PNG or JPEG), or WeChatApiError / WeChatUnavailable."""
    body = {"scene": scene, "page": page, "check_path": env_version == "release", "env_version": env_version,
            "width": width}
    url = f"{base_url.rstrip('/')}/wxa/getwxacodeunlimit?{urlencode({'access_token': access_token})}"
    status, raw = _send("POST", url, json.dumps(body, ensure_ascii=False).encode("utf-8"), timeout, API)
    if status != 200:
        raise WeChatUnavailable(f"{API}: HTTP {status}")
    if raw.startswith(PNG_MAGIC) or raw.startswith(JPEG_MAGIC):
        return raw
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise _garbage(API, "the answer is neither an image nor JSON") from None
    errcode = _errcode(data.get("errcode")) if isinstance(data, dict) else None
    if not errcode:  # not an object, an errcode that is no integer, or "ok" without an image
        raise _garbage(API, "the answer is neither an image nor an error")
    raise WeChatApiError(errcode, str(data.get("errmsg", ""))[:500])
