"""The AppError tree: every failure a client can see has a stable snake_case code and a status.

The HTTP layer turns any AppError into the envelope
`{"Code": code, "Message": message, "Details": details}` (the shape of Chalice's own errors).
Services and domain rules raise these; nothing below the API layer knows about HTTP otherwise.
"""
from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal_error"
    message = "Internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.details = details or []
        self.headers = headers or {}
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        return {"Code": self.code, "Message": self.message, "Details": self.details}


class BadRequest(AppError):
    status = 400
    code = "bad_request"
    message = "The request is not valid"


class ValidationFailed(BadRequest):
    """Bad input; `details` names each field: [{"field": "items.0.quantity", "message": ...}]."""
    code = "validation_error"
    message = "Some fields are not valid"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    message = "Log in first"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    message = "This account may not do that"


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "The resource is not in a state that allows this"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    message = "The request body is larger than 1 MiB"


class UnsupportedMediaType(AppError):
    """A body sent as something other than what the route reads (Content-Type)."""
    status = 415
    code = "unsupported_media_type"
    message = "Send the body as application/json"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; slow down"

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(max(1, int(retry_after_seconds))))


class UpstreamError(AppError):
    """WeChat (or another upstream) failed or answered something we cannot use."""
    status = 502
    code = "wechat_unavailable"
    message = "WeChat did not answer as expected; try again"


class ServiceUnavailable(AppError):
    """A service of ours (a queue, the database) could not take the request now; retry."""
    status = 503
    code = "service_unavailable"
    message = "Temporarily unavailable; try again"

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(max(1, int(retry_after_seconds))))
