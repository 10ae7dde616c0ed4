"""The route decorator's body rules, without AWS: depth counting and null handling."""
from __future__ import annotations

import pytest
from pydantic import Field

from chalicelib.api.http import MAX_JSON_DEPTH, _depth, _parse_body
from chalicelib.errors import PayloadTooLarge, ValidationFailed
from chalicelib.schemas.common import RequestModel


class Body(RequestModel):
    quantity: int = Field(gt=0)
    note: str | None = None


def test_depth_counts_nested_containers_iteratively():
    assert _depth(1) == 0
    assert _depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    assert _depth(deep) == 10_001


def test_exactly_the_maximum_depth_is_accepted_and_one_more_is_not():
    class Anything(RequestModel):
        x: object = None

    ok = '{"x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    _parse_body(Anything, ok.encode())
    too_deep = '{"x": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    with pytest.raises(ValidationFailed):
        _parse_body(Anything, too_deep.encode())


@pytest.mark.parametrize("raw", [b'{"quantity": "2"}', b'{"quantity": 2.0}', b'{"quantity": true}',
                                 b'{"quantity": 0}', b'{"quantity": -1}'])
def test_quantities_must_be_positive_json_integers(raw):
    with pytest.raises(ValidationFailed) as error:
        _parse_body(Body, raw)
    assert error.value.details[0]["field"] == "quantity"


def test_null_is_the_same_as_absent():
    body = _parse_body(Body, b'{"quantity": 2, "note": null}')
    assert body.note is None and body.model_fields_set == {"quantity"}


def test_bodies_over_one_mebibyte_are_refused_before_parsing():
    with pytest.raises(PayloadTooLarge):
        _parse_body(Body, b" " * (1024 * 1024 + 1))
