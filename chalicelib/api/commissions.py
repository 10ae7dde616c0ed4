"""Distribution, the distributor's side: the commission ledger and withdrawal requests."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
CommissionLedger, LedgerQuery, WithdrawalBody, WithdrawalOut = lazy_names(
    "chalicelib.schemas.commissions", "CommissionLedger", "LedgerQuery", "WithdrawalBody", "WithdrawalOut")

commissions = lazy_module("chalicelib.services.commissions")
withdrawals = lazy_module("chalicelib.services.withdrawals")

api = ApiBlueprint(__name__, tag="marketing")


@api.route("GET", "/v1/me/commissions", query=LedgerQuery, response=CommissionLedger, errors=(400, 401, 403),
           summary="The commission ledger: frozen (inside the after-sales window), available, pending (in "
                   "withdrawals), withdrawn and clawed_back, with the entries newest first")
def my_commissions(request: ApiRequest) -> CommissionLedger:
    figures, entries, next_cursor = commissions.ledger(request.user_id, request.query.limit, request.query.cursor)
    return CommissionLedger.of(figures, entries, next_cursor)


@api.route("POST", "/v1/me/withdrawals", body=WithdrawalBody, response=WithdrawalOut, status=201, also=(200,),
           errors=(400, 401, 403, 409, 503),
           summary="Withdraw available commission (merchant approval, then a transfer to the WeChat balance); the "
                   "same request_id answers the same withdrawal (200); 409 insufficient_commission, "
                   "request_id_reused; 400 invalid_withdrawal_amount")
def request_withdrawal(request: ApiRequest) -> Reply:
    withdrawal, created = withdrawals.request_withdrawal(request.user_id, request.body.amount_fen,
                                                         request.body.request_id)
    return Reply(WithdrawalOut.of(withdrawal), 201 if created else 200)
