"""Group-buys: the safety-net sweep behind the per-group timer messages (those arrive on the
order-timers queue, jobs/orders.py)."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

group_settlement = lazy_module("chalicelib.services.group_settlement")

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(1, unit=Rate.MINUTES),
             description="Fail group-buys whose time is up and refund their paid members, once")
def sweep_group_buys(event) -> None:
    outcomes = group_settlement.sweep_due_groups()
    if outcomes:
        log.info("group-buy sweep", **outcomes)
