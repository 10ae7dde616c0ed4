"""Housekeeping on a schedule."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.log import get_logger
from chalicelib.services import access_token

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(30, unit=Rate.MINUTES), description="Refresh the shared WeChat access token ahead of expiry")
def refresh_wechat_access_token(event) -> None:
    # Keep at least 40 minutes on the shared token, so no user request waits on WeChat for it.
    access_token.get_access_token(min_remaining_seconds=40 * 60)


@bp.schedule(Rate(5, unit=Rate.MINUTES), description="Count units sold (and refunded) into the products' sales counts")
def count_sales(event) -> None:
    from chalicelib.services import sales_counts

    outcome = sales_counts.count_sales()
    if outcome["orders"] or outcome["refunds"]:
        log.info("sales counted", **outcome)
