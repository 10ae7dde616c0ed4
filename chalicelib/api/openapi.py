"""GET /openapi.json, generated from the declared routes and their pydantic models, and GET /health."""
from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.http import PATH_ID, ROUTES, ApiBlueprint, ApiRequest, RouteSpec
from chalicelib.lazy import resolve
from chalicelib.schemas.common import ErrorEnvelope, ResponseModel

api = ApiBlueprint(__name__, tag="meta")

_STATUS_TEXT = {400: "Bad input", 401: "Not logged in, or the token is invalid", 403: "Wrong role",
                404: "Not found", 409: "State or stock conflict", 413: "Body larger than 1 MiB",
                429: "Rate limited (see Retry-After)", 502: "WeChat failed",
                503: "Temporarily unavailable; retry (see Retry-After)"}
_REF = "#/components/schemas/{model}"


class Health(ResponseModel):
    ok: bool


@api.route("GET", "/health", auth=None, response=Health, summary="Liveness: 200 once the API is up")
def health(request: ApiRequest) -> Health:
    return Health(ok=True)


@api.route("GET", "/openapi.json", auth=None, summary="This document")
def openapi_document(request: ApiRequest) -> dict[str, Any]:
    return build_document()


@functools.lru_cache(maxsize=1)
def build_document() -> dict[str, Any]:
    models = _models()
    _, definitions = models_json_schema([(m, mode) for m, mode in models], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WeChat mini-program store API", "version": "1.0.0",
                 "description": "Money is integer fen (*_fen). Errors use the envelope {Code, Message, Details}."},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "token from /v1/auth/login (user) or /v1/admin/auth/login (admin)"}},
        },
    }


def _models() -> list[tuple[type[BaseModel], str]]:
    found: dict[type[BaseModel], str] = {ErrorEnvelope: "serialization"}
    for spec in ROUTES:
        if spec.body:
            found[resolve(spec.body)] = "validation"
        if spec.response:
            found[resolve(spec.response)] = "serialization"
    return list(found.items())


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(spec: RouteSpec) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": spec.summary, "tags": [spec.tag] if spec.tag else [],
                                 "operationId": f"{spec.method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', spec.path).strip('_')}"}
    path_names = re.findall(r"\{(\w+)\}", spec.path)
    parameters = [{"name": name, "in": "path", "required": True, "description": "an opaque id (any other is 404)",
                   "schema": {"type": "string", "pattern": PATH_ID.pattern}} for name in path_names]
    if spec.query:
        schema = spec.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        parameters += [{"name": name, "in": "query", "required": name in required, "schema": prop}
                       for name, prop in schema.get("properties", {}).items()]
    if parameters:
        operation["parameters"] = parameters
    if spec.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(spec.body)}}}
    if spec.auth:
        operation["security"] = [{"bearer": []}]
    success: dict[str, Any] = {"description": "OK"}
    if spec.response and spec.status != 204:
        success["content"] = {"application/json": {"schema": _ref(spec.response)}}
    responses: dict[str, Any] = {str(status): success for status in (spec.status, *spec.also)}
    error_statuses = set(spec.errors) | ({401, 403} if spec.auth else set()) | ({400, 413} if spec.body else set())
    if spec.query:
        error_statuses.add(400)
    if path_names:  # an id of the wrong shape, or of no such thing
        error_statuses.add(404)
    for status in sorted(error_statuses):
        responses[str(status)] = {"description": _STATUS_TEXT.get(status, "Error"),
                                  "content": {"application/json": {"schema": _ref(ErrorEnvelope)}}}
    operation["responses"] = responses
    operation.update(spec.doc or {})
    return operation
