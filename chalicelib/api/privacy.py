"""PIPL routes: the consent ledger, the data export, account deletion (docs/privacy.md)."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
MemberListQuery = lazy_names("chalicelib.schemas.favorites", "MemberListQuery")
ConsentBody, ConsentOut, ConsentPage, DataExport, DeletionReceipt = lazy_names(
    "chalicelib.schemas.privacy", "ConsentBody", "ConsentOut", "ConsentPage", "DataExport", "DeletionReceipt")

privacy = lazy_module("chalicelib.services.privacy")

api = ApiBlueprint(__name__, tag="members")


@api.route("GET", "/v1/me/consents", query=MemberListQuery, response=ConsentPage, errors=(400, 401, 403),
           summary="The user's consent history (every grant and withdrawal), newest first")
def list_consents(request: ApiRequest) -> ConsentPage:
    return privacy.consent_history(request.user_id, request.query.limit, request.query.cursor)


@api.route("POST", "/v1/me/consents", body=ConsentBody, response=ConsentOut, status=201, errors=(400, 401, 403, 404),
           summary="Grant or withdraw consent to a privacy policy version (appended to the ledger)")
def add_consent(request: ApiRequest) -> Reply:
    entry = privacy.record_consent(request.user_id, request.body.version, request.body.granted,
                                   client=request.body.client)
    return Reply(entry, 201)


@api.route("POST", "/v1/me/data-export", response=DataExport, errors=(401, 403, 404, 429),
           summary="The user's records as JSON: profile, consents, addresses, orders with payments and refunds, "
                   "coupons, reviews, favorites, history, after-sales (3 a day; 429 beyond)")
def export_data(request: ApiRequest) -> DataExport:
    return privacy.export_data(request.user_id)


@api.route("DELETE", "/v1/me", response=DeletionReceipt, errors=(401, 403, 404, 409),
           summary="Delete the account: personal data deleted, orders/payments/refunds kept anonymised, every "
                   "session revoked; 409 open_orders while an order, refund or after-sales is in progress")
def delete_me(request: ApiRequest) -> DeletionReceipt:
    return privacy.delete_account(request.user_id)
