"""The address book: request and response bodies of /v1/addresses."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Callable

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from chalicelib import clock
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

if TYPE_CHECKING:
    from chalicelib.storage.addresses import Address, AddressFields

# [0-9], not \d: Python's \d also matches full-width and other scripts' digits.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_POSTAL_CODE = re.compile(r"[0-9]{6}")
# Region names: Chinese (CJK unified ideographs and extension A), printable ASCII, and the
# middle dot of transliterated names.
_REGION = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\u00b7\x20-\x7e]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _check(test: Callable[[str], bool], kind: str, message: str) -> AfterValidator:
    """A validator with a message a person can act on (a pattern error would print the regex);
    the pattern itself is only documented, via json_schema_extra."""
    def validate(value: str) -> str:
        if not test(value):
            raise PydanticCustomError(kind, message)
        return value
    return AfterValidator(validate)


_one_line = _check(lambda value: not _CONTROL.search(value), "text_format",
                   "must be one line of text without control characters")
_region = _check(lambda value: bool(_REGION.fullmatch(value)), "region_format",
                 "must be Chinese or ASCII text, e.g. 广东省 or Guangdong")
_mobile = _check(lambda value: bool(_MOBILE.fullmatch(value)), "phone_format",
                 "must be a mainland China mobile number: 11 digits starting with 13-19, "
                 "without spaces, dashes or +86")
_postal = _check(lambda value: bool(_POSTAL_CODE.fullmatch(value)), "postal_code_format",
                 "must be 6 digits")

Name = Annotated[str, Field(min_length=1, max_length=20, description="the recipient, 1-20 characters"), _one_line]
Region = Annotated[str, Field(min_length=1, max_length=20, description="1-20 characters, Chinese or ASCII"),
                   _region]


class AddressBody(RequestModel):
    """POST creates an address; PUT replaces one with the same body (omitted postal_code is removed)."""
    name: Name
    phone: Annotated[str, Field(description="mainland mobile, 11 digits, e.g. 13800138000",
                                json_schema_extra={"pattern": "^1[3-9][0-9]{9}$"}), _mobile]
    province: Region
    city: Region
    district: Region
    detail: Annotated[str, Field(min_length=1, max_length=120, description="street, building, room"), _one_line]
    postal_code: Annotated[str, Field(description="6 digits", json_schema_extra={"pattern": "^[0-9]{6}$"}),
                           _postal] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS-84 latitude from wx.chooseLocation "
                                                                      "(same-city delivery needs the location)")
    lng: float | None = Field(default=None, ge=-180, le=180, description="with lat")
    is_default: bool = Field(default=False, description=(
        "true makes this the default address (the previous default stops being one); false or absent "
        "leaves the default where it is, since there is always exactly one. The first address "
        "becomes the default anyway."))

    def fields(self) -> AddressFields:
        from chalicelib.storage.addresses import AddressFields  # here, not at cold start (PynamoDB)

        return AddressFields(name=self.name, phone=self.phone, province=self.province, city=self.city,
                             district=self.district, detail=self.detail, postal_code=self.postal_code,
                             lat=self.lat, lng=self.lng)

    @model_validator(mode="after")
    def _location_whole(self) -> "AddressBody":
        if (self.lat is None) != (self.lng is None):
            raise ValueError("send lat and lng together")
        return self


class AddressListQuery(QueryModel):
    """Accepted for the list convention of API.md, but a book holds at most 20 addresses, so the
    one page always holds them all and next_cursor is always null."""
    limit: int | None = Field(default=None, ge=1, le=100, description="ignored: the whole book is one page")
    cursor: str | None = Field(default=None, max_length=512, description="ignored: there is never a next page")


class AddressOut(ResponseModel):
    address_id: str
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str
    postal_code: str | None
    lat: float | None = None
    lng: float | None = None
    is_default: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, address: Address) -> "AddressOut":
        fields = address.fields
        return cls(address_id=address.address_id, name=fields.name, phone=fields.phone, province=fields.province,
                   city=fields.city, district=fields.district, detail=fields.detail,
                   postal_code=fields.postal_code, lat=fields.lat, lng=fields.lng, is_default=address.is_default,
                   created_at=clock.to_iso(address.created_at), updated_at=clock.to_iso(address.updated_at))


class AddressList(ResponseModel):
    items: list[AddressOut] = Field(description="the default first, then the newest")
    next_cursor: str | None = Field(default=None, description="always null: at most 20 addresses, one page")

    @classmethod
    def of(cls, addresses: list[Address]) -> "AddressList":
        return cls(items=[AddressOut.of(address) for address in addresses], next_cursor=None)
