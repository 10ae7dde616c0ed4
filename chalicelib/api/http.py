"""The one way a route is declared: auth, body and query validation, errors, JSON, docs.

    api = ApiBlueprint(__name__)

    @api.route("POST", "/v1/auth/login", body=LoginBody, response=LoginReply, auth=None,
               summary="Log in with a wx.login code")
    def login(request: ApiRequest) -> LoginReply:
        return LoginReply.of(services.auth.log_in_with_wechat(request.body.code))

Every declared route is also recorded in ROUTES, from which /openapi.json is generated, so the
document cannot drift from what the code accepts. Handlers stay thin: parse (done here), one
service call, shape the reply.

Every answer this layer makes is the envelope, Content-Type refusals included: Chalice is told
that a route takes any media type, and `dispatch` refuses a body of a type the route does not
read with 415 `unsupported_media_type` (Chalice's own check answers `{"Code":
"UnsupportedMediaType"}`, outside the envelope). Routes that read no body ignore Content-Type,
as they ignore the body.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from chalice import Blueprint, Response
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib import audit_context
from chalicelib import log as logging_setup
from chalicelib.api import admin_roles, cors
from chalicelib.lazy import lazy_module
from chalicelib.errors import (AppError, Forbidden, NotFound, PayloadTooLarge, Unauthorized,
                               UnsupportedMediaType, ValidationFailed)

if TYPE_CHECKING:
    from chalicelib.services.auth import Principal

# On first use, not at cold start (chalicelib/lazy.py): they bring PynamoDB and botocore's clients.
auth_service = lazy_module("chalicelib.services.auth")
storage_base = lazy_module("chalicelib.storage.base")
audit_service = lazy_module("chalicelib.services.audit")

MAX_BODY_BYTES = 1024 * 1024
# Every id in a path is opaque but of this shape; anything else cannot exist (404), and must not
# reach DynamoDB, which refuses over-long or empty keys with an error that would be a 500.
PATH_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_JSON_DEPTH = 64
JSON_CONTENT_TYPE = "application/json"
ANY_CONTENT_TYPE = "*/*"

log = logging_setup.get_logger(__name__)


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    summary: str
    auth: str | None  # "user", "admin", or None for public routes
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    tag: str = ""
    also: tuple[int, ...] = ()  # other success statuses with the same body (200 for a replayed create)
    content_types: tuple[str, ...] = (JSON_CONTENT_TYPE,)
    # OpenAPI operation fields replacing the generated ones, for a route that answers in someone
    # else's format (WeChat Pay's callbacks): e.g. {"requestBody": ..., "responses": ...}.
    doc: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def reads_body(self) -> bool:
        """Whether the route reads a request body (a model, or a callback's documented raw body)."""
        return self.body is not None or "requestBody" in (self.doc or {})


ROUTES: list[RouteSpec] = []
_PREFLIGHT_PATHS: set[str] = set()


@dataclass
class ApiRequest:
    body: Any
    query: Any
    params: dict[str, str]
    principal: Principal | None
    raw: Request
    request_id: str

    @property
    def client_ip(self) -> str:
        identity = (self.raw.context or {}).get("identity") or {}
        return str(identity.get("sourceIp") or "127.0.0.1")

    @property
    def user_id(self) -> str:
        assert self.principal is not None, "only for routes declared with auth='user'"
        return self.principal.subject


@dataclass
class Reply:
    """A reply whose status or headers differ from the route's default (e.g. 200 for a replay)."""
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class ApiBlueprint:
    def __init__(self, import_name: str, tag: str = ""):
        self.blueprint = Blueprint(import_name)
        self.tag = tag

    def route(self, method: str, path: str, *, summary: str, auth: str | None = "user",
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200, errors: tuple[int, ...] = (),
              also: tuple[int, ...] = (), content_types: tuple[str, ...] = (JSON_CONTENT_TYPE,),
              doc: dict[str, Any] | None = None) -> Callable:
        if body is not None and 415 not in errors:  # a body of another type is refused (dispatch)
            errors = (*errors, 415)
        if auth == "admin" and 403 not in errors and admin_roles.owner_only(method, path):
            errors = (*errors, 403)  # forbidden_for_role for staff accounts
        spec = RouteSpec(method=method, path=path, summary=summary, auth=auth, body=body, query=query,
                         response=response, status=status, errors=errors, tag=self.tag, also=also,
                         content_types=content_types, doc=doc)

        def decorator(handler: Callable[[ApiRequest], Any]) -> Callable[[ApiRequest], Any]:
            def view(**params: str) -> Response:
                return dispatch(spec, handler, self.blueprint.current_request, params)

            view.__name__ = handler.__name__
            # Chalice lets every media type through; dispatch checks it and answers the envelope.
            self.blueprint.route(path, methods=[method], content_types=[ANY_CONTENT_TYPE])(view)
            ROUTES.append(spec)
            if path not in _PREFLIGHT_PATHS:  # one OPTIONS view per path, by whichever blueprint declares it first
                _PREFLIGHT_PATHS.add(path)
                self._add_preflight(path, handler.__name__)
            return handler

        return decorator

    def _add_preflight(self, path: str, name: str) -> None:
        def preflight(**params: str) -> Response:
            return cors.preflight(self.blueprint.current_request,
                                  [spec.method for spec in ROUTES if spec.path == path])

        preflight.__name__ = f"{name}_preflight"
        self.blueprint.route(path, methods=["OPTIONS"])(preflight)


def dispatch(spec: RouteSpec, handler: Callable[[ApiRequest], Any], request: Request,
             params: dict[str, str]) -> Response:
    request_id = _request_id(request)
    context_token = logging_setup.bind(request_id=request_id)
    audited = spec.auth == "admin" and spec.method != "GET"  # every admin write (services/audit.py)
    audit_token = audit_context.start() if audited else None
    try:
        if spec.reads_body:  # before authentication, where Chalice's own check was
            _check_content_type(request, spec.content_types)
        principal = _authenticate(request, spec.auth) if spec.auth else None
        _check_path_ids(params)
        if spec.auth == "admin":  # owner-only routes refuse staff before their body is even read
            _check_admin_role(spec, principal, None)
        logging_setup.bind(order_id=params.get("order_id", ""))  # every line of an order's request names it
        if principal is not None:
            logging_setup.bind(user_id=principal.subject)
        api_request = ApiRequest(
            body=_parse_body(spec.body, request.raw_body) if spec.body else None,
            query=_validate(spec.query, _query_dict(request)) if spec.query else None,
            params=params, principal=principal, raw=request, request_id=request_id,
        )
        if spec.auth == "admin" and api_request.body is not None:  # and the body's owner-only fields
            _check_admin_role(spec, principal, api_request.body)
        result = handler(api_request)
        if isinstance(result, Response):  # a callback answering in WeChat's own format (XML, ...)
            return result
        reply = result if isinstance(result, Reply) else Reply(result, spec.status)
        response = _json_response(reply.body, reply.status, request, reply.headers)
        if audited:  # only after the handler returned: a refused or failed write is never recorded
            _record_audit(spec, api_request, response.body)
        return response
    except AppError as error:
        if error.status >= 500:
            log.warning("request failed upstream", code=error.code, status=error.status)
        return _json_response(error.envelope(), error.status, request, error.headers)
    except Exception as error:
        if storage_base.is_transient(error):  # AWS throttled or failed: nothing half-done, the client may retry
            log.warning("storage or queue unavailable", route=f"{spec.method} {spec.path}", error=type(error).__name__)
            body = {"Code": "service_unavailable", "Message": "Busy; retry shortly", "Details": []}
            return _json_response(body, 503, request, {"Retry-After": "1"})
        log.exception("unhandled error", route=f"{spec.method} {spec.path}")  # a bug: log it whole
        body = {"Code": "internal_error", "Message": "Internal error; it has been logged", "Details": []}
        return _json_response(body, 500, request, {})
    finally:
        if audit_token is not None:
            audit_context.reset(audit_token)
        logging_setup.reset(context_token)


def _check_admin_role(spec: RouteSpec, principal: Principal, body: Any) -> None:
    """Staff accounts are refused the owner-only routes (chalicelib/api/admin_roles.py)."""
    why = admin_roles.refusal(spec.method, spec.path, principal.admin_role or admin_roles.OWNER, body)
    if why:
        raise Forbidden(why, code="forbidden_for_role",
                        details=[{"role": principal.admin_role, "route": f"{spec.method} {spec.path}"}])


def _record_audit(spec: RouteSpec, api_request: ApiRequest, reply_text: str) -> None:
    """Write the request's audit entries. The change is committed already, so a failure here
    never turns the answer into an error: the entries are logged whole instead (a known gap,
    docs/decisions.md "Audit log")."""
    try:
        audit_service.record_request(spec.method, spec.path, api_request, reply_text,
                                     audit_context.current())
    except Exception:  # noqa: BLE001 - the write it describes is done; the log line keeps the entry
        log.exception("audit entry not recorded", route=f"{spec.method} {spec.path}",
                      actor=api_request.principal.subject if api_request.principal else None,
                      params=api_request.params, reply=reply_text[:2000])


def _request_id(request: Request) -> str:
    context = request.context or {}
    return str(context.get("requestId") or uuid.uuid4())


def _check_path_ids(params: dict[str, str]) -> None:
    for name, value in params.items():
        if not PATH_ID.match(value or ""):
            raise NotFound(f"No such {name.removesuffix('_id')}", code="not_found",
                           details=[{"field": name, "message": "no such id"}])


def _check_content_type(request: Request, accepted: tuple[str, ...]) -> None:
    """The body's media type (parameters such as charset aside; absent means JSON, as API Gateway
    and Chalice take it) must be one the route reads, else 415."""
    header = (request.headers or {}).get("content-type") or JSON_CONTENT_TYPE
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(f"Send the body as {' or '.join(accepted)}",
                                   details=[{"field": "Content-Type",
                                             "message": f"{media_type[:100]!r} is not accepted here"}])


def _authenticate(request: Request, role: str) -> Principal:
    header = (request.headers or {}).get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send Authorization: Bearer <token> from /v1/auth/login", code="unauthorized")
    return auth_service.authenticate(token.strip(), role)


def _parse_body(model: type[BaseModel], raw: bytes | None) -> BaseModel:
    raw = raw or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    if not raw.strip():
        raise ValidationFailed("A JSON body is required", code="invalid_json",
                               details=[{"field": "body", "message": "missing"}])
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed("The body is not valid JSON", code="invalid_json",
                               details=[{"field": "body", "message": str(error)[:200]}]) from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise _too_deep()
    return _validate(model, data)


def _too_deep() -> ValidationFailed:
    return ValidationFailed(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_json",
                            details=[{"field": "body", "message": "too deeply nested"}])


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _query_dict(request: Request) -> dict[str, str]:
    params = request.query_params or {}
    return {name: params[name] for name in params}


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(details=[
            {"field": ".".join(str(part) for part in issue["loc"]) or "body", "message": issue["msg"]}
            for issue in error.errors(include_url=False)
        ]) from None


def _json_response(body: Any, status: int, request: Request, headers: dict[str, str]) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    all_headers = {"Content-Type": "application/json; charset=utf-8", **cors.origin_headers(request), **headers}
    if status == 204:
        return Response(body="", status_code=status, headers=all_headers)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(body=text, status_code=status, headers=all_headers)

