"""Distribution on a schedule: commissions past their after-sales window become available, approved
withdrawals a crash left unpaid are asked again (same numbers: the same transfer), and completed
profit-sharing orders are split and unfrozen. The commissions themselves are counted from the
orders stream (jobs/analytics.py hands its records to services/commissions.py)."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

commissions = lazy_module("chalicelib.services.commissions")
withdrawals = lazy_module("chalicelib.services.withdrawals")
profit_sharing = lazy_module("chalicelib.services.profit_sharing")

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(15, unit=Rate.MINUTES), description="Settle frozen commissions whose after-sales window closed")
def settle_commissions(event) -> None:
    outcome = commissions.settle_due()
    if outcome["settled"]:
        log.info("commissions settled", **outcome)


@bp.schedule(Rate(10, unit=Rate.MINUTES), description="Finish approved withdrawals (the same transfer asked again)")
def heal_withdrawals(event) -> None:
    outcome = withdrawals.heal_approved()
    if outcome["asked"]:
        log.info("approved withdrawals asked again", **outcome)


@bp.schedule(Rate(15, unit=Rate.MINUTES), description="Split and unfreeze completed profit-sharing orders")
def share_profits(event) -> None:
    outcome = profit_sharing.run_due()
    if outcome["finished"]:
        log.info("profit sharing finished", **outcome)
