"""Distribution: the commission ledger, withdrawals, and per-product commission rates."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from chalicelib import clock
from chalicelib.schemas.common import QueryModel, RequestModel, ResponseModel

if TYPE_CHECKING:
    from chalicelib.storage.commissions import Entry
    from chalicelib.storage.withdrawals import Withdrawal

EntryKind = Literal["earn", "settle", "clawback_frozen", "clawback_available", "withdraw", "paid", "returned",
                    "shared", "shared_debt"]
WithdrawalStatus = Literal["requested", "approved", "paid", "failed", "rejected"]


class LedgerQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class CommissionEntryOut(ResponseModel):
    kind: EntryKind = Field(description="earn (frozen), settle (frozen -> available), clawback_frozen / "
                                        "clawback_available (a refund), withdraw (available -> pending), paid "
                                        "(pending -> withdrawn), returned (pending -> available), shared (paid by "
                                        "profit sharing), shared_debt (paid by profit sharing beyond a "
                                        "commission clawed back meanwhile: taken from available)")
    amount_fen: int
    ref: str = Field(description="the order (earn, settle, clawback, shared) or the withdrawal")
    level: int | None = Field(default=None, description="1: the buyer was referred by you; 2: by someone you referred")
    at: str

    @classmethod
    def of(cls, entry: Entry) -> "CommissionEntryOut":
        return cls(kind=entry.kind, amount_fen=entry.amount_fen, ref=entry.ref, level=entry.level,
                   at=clock.to_iso(entry.at))


class CommissionLedger(ResponseModel):
    frozen: int = Field(description="fen earned on orders still inside their after-sales window")
    available: int = Field(description="fen that may be withdrawn (negative: a clawback after settlement, "
                                       "netted against later commissions)")
    pending: int = Field(description="fen in withdrawals not yet paid")
    withdrawn: int = Field(description="fen paid out")
    clawed_back: int = Field(description="fen taken back because the goods were refunded")
    frozen_fen: int
    available_fen: int
    pending_fen: int
    withdrawn_fen: int
    clawed_back_fen: int
    items: list[CommissionEntryOut] = Field(description="ledger entries, newest first; the figures are their sum")
    next_cursor: str | None = None

    @classmethod
    def of(cls, figures: dict[str, int], entries: list, next_cursor: str | None) -> "CommissionLedger":
        bare = {name[:-4]: value for name, value in figures.items()}
        return cls(**bare, **figures, items=[CommissionEntryOut.of(e) for e in entries], next_cursor=next_cursor)


class WithdrawalBody(RequestModel):
    amount_fen: int = Field(gt=0, le=10_000_000)
    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                            description="client-made; the same request_id again answers the same withdrawal")


class WithdrawalOut(ResponseModel):
    withdrawal_id: str
    amount_fen: int
    status: WithdrawalStatus
    created_at: str
    approved_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None

    @classmethod
    def fields_of(cls, w: Withdrawal) -> dict:
        iso = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
        return {"withdrawal_id": w.withdrawal_id, "amount_fen": w.amount_fen, "status": w.status,
                "created_at": clock.to_iso(w.created_at), "approved_at": iso(w.approved_at),
                "finished_at": iso(w.finished_at), "reason": w.reason}

    @classmethod
    def of(cls, w: Withdrawal) -> "WithdrawalOut":
        return cls(**cls.fields_of(w))


class AdminWithdrawalOut(WithdrawalOut):
    user_id: str
    request_id: str
    transfer_id: str | None = Field(default=None, description="WeChat's transfer batch id, once paid")

    @classmethod
    def of(cls, w: Withdrawal) -> "AdminWithdrawalOut":
        return cls(**cls.fields_of(w), user_id=w.user_id, request_id=w.request_id, transfer_id=w.transfer_id)


class AdminWithdrawalQuery(QueryModel):
    status: WithdrawalStatus = "requested"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class AdminWithdrawalList(ResponseModel):
    items: list[AdminWithdrawalOut]
    next_cursor: str | None = None


class WithdrawalRejectBody(RequestModel):
    reason: str = Field(min_length=1, max_length=200)


class CommissionRateBody(RequestModel):
    level1_permille: int = Field(ge=0, le=300, description="per mille of a line's payable, to the buyer's referrer")
    level2_permille: int = Field(default=0, ge=0, le=300, description="to the referrer's referrer; "
                                                                      "level1 + level2 <= 300")


class CommissionRateOut(ResponseModel):
    product_id: str
    level1_permille: int
    level2_permille: int
