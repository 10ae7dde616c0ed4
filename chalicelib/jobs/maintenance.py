"""Housekeeping on a schedule."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

access_token = lazy_module("chalicelib.services.access_token")
sales_counts = lazy_module("chalicelib.services.sales_counts")

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(30, unit=Rate.MINUTES), description="Refresh the shared WeChat access token ahead of expiry")
def refresh_wechat_access_token(event) -> None:
    # Keep at least 40 minutes on the shared token, so no user request waits on WeChat for it.
    access_token.get_access_token(min_remaining_seconds=40 * 60)


@bp.schedule(Rate(5, unit=Rate.MINUTES), description="Count units sold (and refunded) into the products' sales counts")
def count_sales(event) -> None:
    outcome = sales_counts.count_sales()
    if outcome["orders"] or outcome["refunds"]:
        log.info("sales counted", **outcome)
