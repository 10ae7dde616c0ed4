"""GET /openapi.json declares what the routes really answer (what the fuzzer checks them against)."""
from __future__ import annotations

import re

import app  # noqa: F401  (registers every route in ROUTES)
from chalicelib.api.http import PATH_ID
from chalicelib.api.openapi import build_document
from chalicelib.services.pay_gateway import V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE, V3_NOTIFY_ROUTE

CALLBACKS = (V3_NOTIFY_ROUTE, V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE)
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _operations():
    for path, methods in build_document()["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_route_with_an_id_in_its_path_declares_404_and_the_ids_shape():
    # Found by the fuzzer: DELETE /v1/cart/items/{sku_id} answered 404 (an id of the wrong shape)
    # and declared 200, 401 and 403 only.
    for path, method, operation in _operations():
        if "{" not in path:
            continue
        assert "404" in operation["responses"], (method, path)
        for parameter in (p for p in operation["parameters"] if p["in"] == "path"):
            assert parameter["schema"] == {"type": "string", "pattern": PATH_ID.pattern}, (method, path)


def test_a_replayed_order_answers_a_declared_200_with_the_order():
    # Found by the fuzzer: replaying a checkout_token answered 200, which was not declared.
    responses = build_document()["paths"]["/v1/orders"]["post"]["responses"]
    assert responses["200"] == responses["201"]
    assert responses["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}


def test_the_wechat_pay_callbacks_document_wechats_own_formats():
    paths = build_document()["paths"]
    v3 = paths[V3_NOTIFY_ROUTE]["post"]["responses"]
    assert set(v3) == {"204", "400", "401", "404", "503"} and "content" not in v3["204"]
    for status in ("400", "401", "404", "503"):
        schema = v3[status]["content"]["application/json"]["schema"]
        assert schema["required"] == ["code", "message"] and schema["properties"]["code"] == {"const": "FAIL"}
    for path in (V2_NOTIFY_ROUTE, V2_REFUND_NOTIFY_ROUTE):
        operation = paths[path]["post"]
        assert set(operation["requestBody"]["content"]) == {"text/xml"}
        assert set(operation["responses"]) == {"200", "404"}  # 404: a store not on v2
        assert all(set(operation["responses"][status]["content"]) == {"text/xml"} for status in ("200", "404"))


def test_every_other_error_is_declared_as_the_envelope():
    for path, method, operation in _operations():
        if path in CALLBACKS:
            continue
        for status, response in operation["responses"].items():
            if re.fullmatch(r"[45]\d\d", status):
                assert response["content"]["application/json"]["schema"] == ENVELOPE, (method, path, status)


def test_authenticated_routes_declare_401_and_403_and_routes_with_a_body_400_and_413():
    for path, method, operation in _operations():
        statuses = set(operation["responses"])
        if operation.get("security"):
            assert {"401", "403"} <= statuses, (method, path)
        if "requestBody" in operation and path not in CALLBACKS:
            assert {"400", "413"} <= statuses, (method, path)
