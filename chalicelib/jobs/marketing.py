"""Marketing on a schedule: the daily birthday gift."""
from __future__ import annotations

from chalice import Blueprint, Cron

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

gifts = lazy_module("chalicelib.services.gifts")

bp = Blueprint(__name__)
log = get_logger(__name__)


# 16:05 UTC is 00:05 in Asia/Shanghai (no daylight saving): the new day's birthdays. A second
# run the same day gives nothing more (the yearly per-user counter).
@bp.schedule(Cron(5, 16, "*", "*", "?", "*"), description="Give birthday coupons to users born today (Asia/Shanghai)")
def give_birthday_gifts(event) -> None:
    outcome = gifts.give_birthday_gifts()
    if outcome:
        log.info("birthday gift run", **outcome)
