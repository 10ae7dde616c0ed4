"""The user's after-sales routes: ask for a refund or a return of an order, read one's request."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AfterSaleBody, AfterSaleOut, DisputeBody, ReturnShipmentBody = lazy_names(
    "chalicelib.schemas.after_sales", "AfterSaleBody", "AfterSaleOut", "DisputeBody", "ReturnShipmentBody")

if TYPE_CHECKING:
    from chalicelib.storage.after_sales import AfterSale

after_sales = lazy_module("chalicelib.services.after_sales")

api = ApiBlueprint(__name__, tag="after-sales")


def after_sale_out(request: AfterSale) -> AfterSaleOut:
    waiting_for_goods = (request.kind in ("return", "exchange") and request.status == "approved"
                         and request.received_at is None)
    return AfterSaleOut(
        request_id=request.request_id, order_id=request.order_id, kind=request.kind, reason=request.reason,
        status=request.status, amount_fen=request.amount_fen, delivery_fee_fen=request.delivery_fee_fen,
        lines=[{"sku_id": line.sku_id, "quantity": line.quantity, "amount_fen": line.amount_fen}
               for line in request.lines],
        note=request.note, created_at=clock.to_iso(request.created_at), updated_at=clock.to_iso(request.updated_at),
        return_address=after_sales.configured_return_address() if waiting_for_goods else None,
        return_shipment=request.return_shipment,
        received_at=clock.to_iso(request.received_at) if request.received_at else None,
        replacement_shipment=request.replacement_shipment, dispute_reason=request.dispute_reason)


@api.route("POST", "/v1/orders/{order_id}/after-sales", body=AfterSaleBody, response=AfterSaleOut, status=201,
           errors=(404, 409), summary="Ask for a refund (unshipped) or a return (shipped) of some or all units")
def request_after_sale(request: ApiRequest) -> AfterSaleOut:
    body = request.body
    wanted = {line.sku_id: line.quantity for line in body.lines} if body.lines else None
    return after_sale_out(after_sales.request_after_sale(request.user_id, request.params["order_id"], body.kind,
                                                         body.reason, wanted))


@api.route("GET", "/v1/after-sales/{request_id}", response=AfterSaleOut, errors=(404,),
           summary="One of the user's after-sales requests, with its status and amount")
def get_after_sale(request: ApiRequest) -> AfterSaleOut:
    return after_sale_out(after_sales.get_user_request(request.user_id, request.params["request_id"]))


@api.route("POST", "/v1/after-sales/{request_id}/return-shipment", body=ReturnShipmentBody, response=AfterSaleOut,
           errors=(404, 409), summary="Give the tracking number of the goods sent back (an approved return)")
def submit_return_shipment(request: ApiRequest) -> AfterSaleOut:
    body = request.body
    return after_sale_out(after_sales.submit_return_shipment(request.user_id, request.params["request_id"],
                                                             body.carrier, body.tracking_no))


@api.route("POST", "/v1/after-sales/{request_id}/dispute", body=DisputeBody, response=AfterSaleOut, errors=(404, 409),
           summary="Contest a rejection (once, within 7 days): the merchant must answer again")
def dispute_after_sale(request: ApiRequest) -> AfterSaleOut:
    return after_sale_out(after_sales.dispute(request.user_id, request.params["request_id"], request.body.reason))
