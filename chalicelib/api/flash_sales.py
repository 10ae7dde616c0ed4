"""Flash sales for buyers: the list, entering one (202 + a ticket), and the ticket's fate."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
from chalicelib.domain.flash_sales import PUBLIC_TICKET_STATUS, TicketStatus
EntryBody, FlashSaleList, PublicSaleListQuery, TicketOut = lazy_names(
    "chalicelib.schemas.flash_sales", "EntryBody", "FlashSaleList", "PublicSaleListQuery", "TicketOut")

if TYPE_CHECKING:
    from chalicelib.storage.flash_tickets import Ticket

flash_admission = lazy_module("chalicelib.services.flash_admission")
flash_sales = lazy_module("chalicelib.services.flash_sales")

api = ApiBlueprint(__name__, tag="flash-sales")


def ticket_out(ticket: Ticket) -> TicketOut:
    status = PUBLIC_TICKET_STATUS[TicketStatus(ticket.status)]
    return TicketOut(ticket_id=ticket.ticket_id, sale_id=ticket.sale_id, sku_id=ticket.sku_id,
                     quantity=ticket.quantity, status=status, order_id=ticket.order_id if status == "won" else None,
                     created_at=clock.to_iso(ticket.created_at))


@api.route("GET", "/v1/flash-sales", auth=None, query=PublicSaleListQuery, response=FlashSaleList,
           summary="Flash sales running or upcoming, soonest end first, with the units left")
def list_sales(request: ApiRequest) -> FlashSaleList:
    items, next_cursor = flash_sales.list_for_buyers(request.query.limit, request.query.cursor)
    return FlashSaleList(items=items, next_cursor=next_cursor)


@api.route("POST", "/v1/flash-sales/{sale_id}/entries", body=EntryBody, response=TicketOut, status=202,
           errors=(404, 409, 429, 503),
           summary="Enter a flash sale: 202 with a queued ticket (a repeated request_id: the same ticket); "
                   "409 sold_out / not_started / ended / limit_exceeded; 429 over 5 at once or 2 per second")
def enter(request: ApiRequest) -> TicketOut:
    return ticket_out(flash_admission.enter(request.user_id, request.params["sale_id"], request.body,
                                            request.client_ip))


@api.route("GET", "/v1/flash-sales/tickets/{ticket_id}", response=TicketOut, errors=(404,),
           summary="One's own ticket: queued, won (with the order_id to pay) or lost")
def get_ticket(request: ApiRequest) -> TicketOut:
    return ticket_out(flash_admission.ticket_for_user(request.user_id, request.params["ticket_id"]))
