"""Which WeChat subscribe-message template each order event uses (optional environment settings).

    WECHAT_TEMPLATE_ORDER_PAID        paid
    WECHAT_TEMPLATE_ORDER_SHIPPED     shipped
    WECHAT_TEMPLATE_ORDER_REFUNDED    refunded
    WECHAT_TEMPLATE_GROUP_BUY_RESULT  group_buy_result
    WECHAT_TEMPLATE_PAY_REMINDER      pay_reminder
    WECHAT_TEMPLATE_DELIVERY_UPDATE   delivery_update (picked up, out for delivery, delivered)

A kind with no template configured sends nothing. Kept apart from settings.py: these are plain,
optional, non-secret ids, read from the environment on each call (five dict lookups), so a test
or an operator changing one needs no cache reset. A value that cannot be a WeChat template id
counts as unset (and is logged), never as a template we would ask users to accept.
See docs/subscribe-messages.md.
"""
from __future__ import annotations

import os
import re
from typing import Literal, get_args

from chalicelib.log import get_logger

log = get_logger(__name__)

EventKind = Literal["paid", "shipped", "refunded", "group_buy_result", "pay_reminder", "delivery_update"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

ENV_NAMES: dict[str, str] = {
    "paid": "WECHAT_TEMPLATE_ORDER_PAID",
    "shipped": "WECHAT_TEMPLATE_ORDER_SHIPPED",
    "refunded": "WECHAT_TEMPLATE_ORDER_REFUNDED",
    "group_buy_result": "WECHAT_TEMPLATE_GROUP_BUY_RESULT",
    "pay_reminder": "WECHAT_TEMPLATE_PAY_REMINDER",
    "delivery_update": "WECHAT_TEMPLATE_DELIVERY_UPDATE",
}

# WeChat's template ids are 43 characters of this alphabet; shorter ids are allowed for the
# simulator and tests.
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
_TEMPLATE_ID = re.compile(TEMPLATE_ID_PATTERN)


def template_for(kind: str) -> str | None:
    """The template configured for `kind`, or None."""
    name = ENV_NAMES.get(kind)
    value = (os.environ.get(name) or "").strip() if name else ""
    if not value:
        return None
    if not _TEMPLATE_ID.match(value):
        log.warning("subscribe template setting ignored: not a template id", setting=name)
        return None
    return value


def configured() -> dict[str, str]:
    """Every configured kind -> its template id, in EVENT_KINDS order."""
    found = {kind: template_for(kind) for kind in EVENT_KINDS}
    return {kind: template for kind, template in found.items() if template}


def kinds_using(template_id: str) -> list[str]:
    """The kinds configured with this template (empty: not a template of ours)."""
    return [kind for kind, template in configured().items() if template == template_id]
