"""Distribution, the merchant's side: withdrawal review and per-product commission rates."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(AdminWithdrawalList, AdminWithdrawalOut, AdminWithdrawalQuery, CommissionRateBody, CommissionRateOut,
 WithdrawalRejectBody) = lazy_names("chalicelib.schemas.commissions", "AdminWithdrawalList", "AdminWithdrawalOut",
                                    "AdminWithdrawalQuery", "CommissionRateBody", "CommissionRateOut",
                                    "WithdrawalRejectBody")

commissions = lazy_module("chalicelib.services.commissions")
withdrawals = lazy_module("chalicelib.services.withdrawals")

api = ApiBlueprint(__name__, tag="admin-marketing")


@api.route("GET", "/v1/admin/withdrawals", auth="admin", query=AdminWithdrawalQuery, response=AdminWithdrawalList,
           errors=(400,), summary="Withdrawals newest first by status (default requested)")
def list_withdrawals(request: ApiRequest) -> AdminWithdrawalList:
    query = request.query
    page, next_cursor = withdrawals.list_withdrawals(query.status, query.limit, query.cursor)
    return AdminWithdrawalList(items=[AdminWithdrawalOut.of(w) for w in page], next_cursor=next_cursor)


@api.route("POST", "/v1/admin/withdrawals/{withdrawal_id}/approve", auth="admin", response=AdminWithdrawalOut,
           errors=(404, 409), summary="Approve and pay by a transfer to the user's WeChat balance; again: the same "
                                      "transfer asked again, never a second (409 invalid_withdrawal_state if rejected)")
def approve_withdrawal(request: ApiRequest) -> AdminWithdrawalOut:
    return AdminWithdrawalOut.of(withdrawals.approve(request.params["withdrawal_id"]))


@api.route("POST", "/v1/admin/withdrawals/{withdrawal_id}/reject", auth="admin", body=WithdrawalRejectBody,
           response=AdminWithdrawalOut, errors=(400, 404, 409, 503),
           summary="Reject: the amount goes back to available (again: 200; an approved one: 409)")
def reject_withdrawal(request: ApiRequest) -> AdminWithdrawalOut:
    return AdminWithdrawalOut.of(withdrawals.reject(request.params["withdrawal_id"], request.body.reason))


@api.route("PUT", "/v1/admin/commission-rates/{product_id}", auth="admin", body=CommissionRateBody,
           response=CommissionRateOut, errors=(400, 404),
           summary="A product's own commission rates (per mille of a line's payable; otherwise the store's "
                   "COMMISSION_PERMILLE / COMMISSION_L2_PERMILLE)")
def put_commission_rate(request: ApiRequest) -> CommissionRateOut:
    product_id, body = request.params["product_id"], request.body
    rate = commissions.set_rate(product_id, body.level1_permille, body.level2_permille)
    return CommissionRateOut(product_id=product_id, level1_permille=rate.level1_permille,
                             level2_permille=rate.level2_permille)


@api.route("GET", "/v1/admin/commission-rates/{product_id}", auth="admin", response=CommissionRateOut,
           errors=(404,), summary="A product's commission rates (its own, else the store's default)")
def get_commission_rate(request: ApiRequest) -> CommissionRateOut:
    product_id = request.params["product_id"]
    rate = commissions.get_rate(product_id)
    return CommissionRateOut(product_id=product_id, level1_permille=rate.level1_permille,
                             level2_permille=rate.level2_permille)
