"""Base models shared by every request and response body.

Every model of the app is declared with `defer_build=True` (subclasses inherit it): pydantic builds its
validator and serializer on first use instead of when the class is defined, so `import app`
(a Lambda's cold start) does not build the schema of every body of every route. The first
request that uses a model pays for it once per process (docs/decisions.md, "Cold start").
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class RequestModel(BaseModel):
    """A request body or query: strict types, unknown fields refused, null means "not sent".

    Strict mode keeps money and quantities honest: "2" or 2.0 is not a quantity, True is not 1.
    Dropping nulls before validation makes `{"x": null}` the same as `{}` (API.md), so PATCH
    bodies can use `model_fields_set` to see what the client really sent.
    """
    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_mean_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class QueryModel(RequestModel):
    """Query strings arrive as text, so a query model converts ("20" -> 20) instead of being strict."""
    model_config = ConfigDict(strict=False, extra="forbid", str_strip_whitespace=True, defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    field: str | None = None
    message: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error answer: the shape of Chalice's own errors."""
    model_config = ConfigDict(defer_build=True)

    Code: str = Field(description="stable snake_case code, e.g. insufficient_stock")
    Message: str = Field(description="human-readable explanation")
    Details: list[ErrorDetail] = Field(default_factory=list)


_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


def _plausible(moment: datetime) -> datetime:
    """Times a merchant sets lie in this century (far-off times cannot even be converted to UTC)."""
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError("must be between 2000 and 2100")
    return moment


# ISO 8601 text with an offset (JSON has no time type, so this field converts from text).
Moment = Annotated[AwareDatetime, Field(strict=False, description="ISO 8601 with offset, 2000-2100"),
                   AfterValidator(_plausible)]
