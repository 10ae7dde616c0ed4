"""Members on a schedule: points that expire, and the spend days no level window reaches."""
from __future__ import annotations

from chalice import Blueprint, Cron

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

points = lazy_module("chalicelib.services.points")
members = lazy_module("chalicelib.services.members")

bp = Blueprint(__name__)
log = get_logger(__name__)


# 16:10 UTC is 00:10 in Asia/Shanghai: the lots whose last day was yesterday. A second run finds
# nothing more (each lot removed with its entry; its marker then deleted).
@bp.schedule(Cron(10, 16, "*", "*", "?", "*"), description="Expire points lots whose last day is over (Asia/Shanghai)")
def expire_points(event) -> None:
    outcome = points.expire_due()
    log.info("points expiry run", **outcome)


# 18:30 UTC is 02:30 in Asia/Shanghai, a quiet hour: one Scan of the spend items.
@bp.schedule(Cron(30, 18, "*", "*", "?", "*"), description="Drop member spend days older than any level window")
def prune_member_spend(event) -> None:
    outcome = members.prune_old_days()
    log.info("member spend prune", **outcome)
