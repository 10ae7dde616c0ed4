"""The user's address book (API.md: GET/POST /v1/addresses, PUT/DELETE /v1/addresses/{address_id}).

No handler logs the body: names, phones and addresses are personal data.
"""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AddressBody, AddressList, AddressListQuery, AddressOut = lazy_names(
    "chalicelib.schemas.addresses", "AddressBody", "AddressList", "AddressListQuery", "AddressOut")

addresses = lazy_module("chalicelib.services.addresses")

api = ApiBlueprint(__name__, tag="addresses")


@api.route("GET", "/v1/addresses", query=AddressListQuery, response=AddressList, errors=(400, 401, 403),
           summary="The address book: the default first, then the newest; at most 20, so one page")
def list_addresses(request: ApiRequest) -> AddressList:
    return AddressList.of(addresses.list_addresses(request.user_id))


@api.route("POST", "/v1/addresses", body=AddressBody, response=AddressOut, status=201,
           errors=(400, 401, 403, 409), summary="Add an address (409 address_limit_reached beyond 20)")
def create_address(request: ApiRequest) -> AddressOut:
    body: AddressBody = request.body
    return AddressOut.of(addresses.create_address(request.user_id, body.fields(), make_default=body.is_default))


@api.route("GET", "/v1/addresses/{address_id}", response=AddressOut, errors=(401, 403, 404),
           summary="One of the user's addresses")
def get_address(request: ApiRequest) -> AddressOut:
    return AddressOut.of(addresses.get_address(request.user_id, request.params["address_id"]))


@api.route("PUT", "/v1/addresses/{address_id}", body=AddressBody, response=AddressOut,
           errors=(400, 401, 403, 404, 409), summary="Replace an address (is_default: true makes it the default)")
def replace_address(request: ApiRequest) -> AddressOut:
    body: AddressBody = request.body
    return AddressOut.of(addresses.replace_address(request.user_id, request.params["address_id"], body.fields(),
                                                   make_default=body.is_default))


@api.route("DELETE", "/v1/addresses/{address_id}", status=204, errors=(401, 403, 404, 409),
           summary="Delete an address; deleting the default makes the most recently updated other one default")
def delete_address(request: ApiRequest) -> None:
    addresses.delete_address(request.user_id, request.params["address_id"])
