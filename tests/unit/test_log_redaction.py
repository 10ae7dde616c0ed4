from __future__ import annotations

import json
import logging

from chalicelib import log


def _format(message: str, **fields) -> dict:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return json.loads(log.JsonFormatter().format(record))


def test_secret_and_personal_fields_are_redacted():
    line = _format("x", session_key="abc", phone="13800138000", wechat_secret="s", access_token="t",
                   address={"detail": "x"}, order_id="o1", errcode=40029)
    for name in ("session_key", "phone", "wechat_secret", "access_token", "address"):
        assert line[name] == "[redacted]"
    assert line["order_id"] == "o1" and line["errcode"] == 40029


def test_bound_request_id_appears_on_every_line_until_reset():
    token = log.bind(request_id="req-1")
    try:
        assert _format("x")["request_id"] == "req-1"
    finally:
        log.reset(token)
    assert "request_id" not in _format("x")
