"""Subscribe messages to users: queued by use cases, delivered once by the notifications worker.

A one-time subscribe message may only be sent while the user holds quota for its template (one
unit per acceptance of `wx.requestSubscribeMessage`, recorded by `POST /v1/me/subscriptions`):
- `notify_order_event` queues a message only when the user holds quota now (a cheap read) and
  the event's template is configured; it never raises into its caller (a pay notify, a shipping
  write): a message is worth less than the event it reports.
- `deliver_subscribe_message` spends one unit per message_key before calling WeChat, and gives it
  back when WeChat did not deliver for good (43101 the user refused, or another permanent
  errcode). The exactly-once rule is written down in storage/subscriptions.py.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib import clock, queues, subscribe_templates
from chalicelib.domain.money import format_yuan
from chalicelib.errors import BadRequest, UpstreamError
from chalicelib.log import get_logger
from chalicelib.schemas.messages import SubscribeMessageJob
from chalicelib.schemas.subscriptions import SubscriptionList, SubscriptionOut
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.storage import idempotency, subscriptions, users
from chalicelib.wechat.http import WeChatApiError

if TYPE_CHECKING:
    from chalicelib.storage.orders import Order

log = get_logger(__name__)

# WeChat errcodes after which sending again can never succeed: the user has not subscribed
# (or refused), the openid or template is wrong, or the data does not fit the template.
# WeChat delivered nothing, so the unit spent for the message is given back.
PERMANENT_ERRCODES = frozenset({40003, 40037, 43101, 43107, 47003})
LEASE = timedelta(minutes=2)
KEEP_KEYS_FOR = timedelta(days=7)
ORDER_PAGE = "pages/order/detail?id={order_id}"
# WeChat's limits per keyword type ("订阅消息参数值内容限制说明"): thing 20 characters,
# character_string 32 of letters, digits and symbols, phrase 5 characters.
THING_MAX, CHARACTER_STRING_MAX = 20, 32
_NOT_CHARACTER_STRING = re.compile(r"[^A-Za-z0-9_\-.#/]")


# -- queueing ---------------------------------------------------------------------------

def queue_subscribe_message(job: SubscribeMessageJob) -> str:
    """Enqueue a message for delivery; returns the SQS message id."""
    return queues.send_message(queues.NOTIFICATIONS, job.model_dump(mode="json"))


def notify_order_event(order: Order, kind: str, now: datetime, *, ref: str | None = None,
                       amount_fen: int | None = None, succeeded: bool | None = None) -> str:
    """Queue the subscribe message for an order event, if the user may receive it; returns
    "queued", "no_template", "no_quota" or "failed" (logged). Never raises.

    kind: paid | shipped | refunded | group_buy_result | pay_reminder. `ref` tells apart several
    events of one kind on one order (the out_refund_no of each refund, the group_id); `amount_fen`
    is a refund's amount; `succeeded` a group-buy's result.
    """
    try:
        template_id = subscribe_templates.template_for(kind)
        if template_id is None:
            log.info("no subscribe template configured for this event", kind=kind, order_id=order.order_id)
            return "no_template"
        if subscriptions.remaining(order.user_id, template_id) <= 0:
            log.info("user holds no quota for this subscribe message", kind=kind, order_id=order.order_id)
            return "no_quota"
        job = SubscribeMessageJob(message_key=message_key(kind, order.order_id, ref), user_id=order.user_id,
                                  template_id=template_id, page=ORDER_PAGE.format(order_id=order.order_id),
                                  data=message_data(order, kind, now, amount_fen=amount_fen, succeeded=succeeded,
                                                    ref=ref))
        queue_subscribe_message(job)
    except Exception:  # noqa: BLE001 - the caller's event must never fail for a message
        log.exception("could not queue a subscribe message", kind=kind, order_id=order.order_id)
        return "failed"
    log.info("subscribe message queued", kind=kind, order_id=order.order_id)
    return "queued"


def message_key(kind: str, order_id: str, ref: str | None = None) -> str:
    """The natural key of one event's message: redelivered or re-reported events share it."""
    return f"{kind}#{order_id}#{ref}" if ref else f"{kind}#{order_id}"


# -- message data ---------------------------------------------------------------------------

DELIVERY_PHRASES = {"100001": "已揽件", "300002": "派送中", "300003": "已签收"}  # WeChat's logistics action types


def message_data(order: Order, kind: str, now: datetime, *, amount_fen: int | None = None,
                 succeeded: bool | None = None, ref: str | None = None) -> dict[str, dict[str, str]]:
    """The template data for `kind`, within WeChat's limits (docs/subscribe-messages.md lists
    the keywords each template must have)."""
    number, goods = _character_string(order.order_id), _goods(order)
    if kind == "paid":
        fields = {"character_string1": number, "thing2": goods, "amount3": format_yuan(order.payable_fen),
                  "time4": _time(order.paid_at or now)}
    elif kind == "shipped":
        shipment = order.shipment or {}
        fields = {"character_string1": number, "thing2": goods,
                  "thing3": _thing(str(shipment.get("carrier") or "")) or "快递",
                  "character_string4": _character_string(str(shipment.get("tracking_no") or "")) or "-",
                  "time5": _time(order.shipped_at or now)}
    elif kind == "refunded":
        refunded = amount_fen if amount_fen is not None else (order.refunded_fen or order.payable_fen)
        fields = {"character_string1": number, "thing2": goods, "amount3": format_yuan(refunded), "time4": _time(now)}
    elif kind == "group_buy_result":
        fields = {"character_string1": number, "thing2": goods, "phrase3": "拼团成功" if succeeded else "拼团失败",
                  "time4": _time(now)}
    elif kind == "pay_reminder":
        fields = {"character_string1": number, "thing2": goods, "amount3": format_yuan(order.payable_fen),
                  "time4": _time(order.pay_deadline)}
    elif kind == "delivery_update":  # ref: "<waybill_id>-<action_type>"
        fields = {"character_string1": number, "thing2": goods,
                  "character_string3": _character_string(str((order.shipment or {}).get("tracking_no") or "")) or "-",
                  "phrase4": DELIVERY_PHRASES.get((ref or "").rpartition("-")[2], "物流更新"), "time5": _time(now)}
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    return {key: {"value": value} for key, value in fields.items()}


def _goods(order: Order) -> str:
    """"红富士苹果" or "红富士苹果等3件" (whole units), at most 20 characters."""
    name = order.lines[0].name.strip() if order.lines else ""
    units = sum(line.quantity for line in order.lines)
    suffix = f"等{units}件" if len(order.lines) > 1 else ""
    return (name[:THING_MAX - len(suffix)] + suffix) if name else "商品"


def _thing(text: str) -> str:
    return " ".join(text.split())[:THING_MAX]


def _character_string(text: str) -> str:
    return _NOT_CHARACTER_STRING.sub("", text)[:CHARACTER_STRING_MAX]


def _time(moment: datetime) -> str:
    """WeChat's `time` keyword: "2024年5月1日 12:00", China Standard Time."""
    local = moment.astimezone(clock.CHINA_TZ)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


# -- quota (POST/GET /v1/me/subscriptions) ----------------------------------------------

def record_subscription(user_id: str, template_id: str, accepted: bool, request_id: str | None) -> SubscriptionOut:
    """Record what `wx.requestSubscribeMessage` answered for one of our templates: an acceptance
    is one more message we may send; anything else records nothing. 400 unknown_template for an
    id we do not use (nothing written: the ledger holds only templates we send)."""
    kinds = subscribe_templates.kinds_using(template_id)
    if not kinds:
        raise BadRequest("This template is not one of the store's subscribe messages", code="unknown_template",
                         details=[{"field": "template_id", "message": "not a configured template"}])
    if accepted:
        left = subscriptions.grant(user_id, template_id, clock.now(), request_id)
    else:
        left = subscriptions.remaining(user_id, template_id, consistent=True)
    return SubscriptionOut(template_id=template_id, kinds=kinds, remaining=left)


def list_subscriptions(user_id: str) -> SubscriptionList:
    """Every configured template (what the mini-program asks the user to accept), with the quota left."""
    by_template: dict[str, list[str]] = {}
    for kind, template_id in subscribe_templates.configured().items():
        by_template.setdefault(template_id, []).append(kind)
    held = {quota.template_id: quota.remaining for quota in subscriptions.list_quotas(user_id)} if by_template else {}
    return SubscriptionList(items=[SubscriptionOut(template_id=template_id, kinds=kinds,
                                                   remaining=held.get(template_id, 0))
                                   for template_id, kinds in by_template.items()])


# -- delivery ---------------------------------------------------------------------------

def deliver_subscribe_message(job: SubscribeMessageJob) -> str:
    """Send one queued message at most once per message_key; returns what happened: "sent",
    "no_quota" (not attempted), "refused", "unknown_user" or "duplicate".

    A transient failure raises (SQS redelivers, then dead-letters); a permanent refusal is
    logged and marked done, since retrying it would only fail again.
    """
    try:
        result = idempotency.run_once(f"notification#{job.message_key}", clock.now(), LEASE, KEEP_KEYS_FOR,
                                      lambda: _send(job))
    except idempotency.Busy:
        raise UpstreamError("another worker is delivering this message", code="in_progress") from None
    return "duplicate" if result is idempotency.DONE_BEFORE else result


def _send(job: SubscribeMessageJob) -> str:
    user = users.get_user(job.user_id)
    if user is None:
        log.warning("subscribe message for an unknown user dropped", message_key=job.message_key)
        return "unknown_user"
    spent = subscriptions.consume(job.user_id, job.template_id, job.message_key, clock.now())
    if spent is subscriptions.Consumption.NO_QUOTA:
        log.info("subscribe message not sent: no quota left", message_key=job.message_key)
        return "no_quota"
    if spent is subscriptions.Consumption.RETURNED:  # refused before, its unit given back: not again
        return "refused"
    message = {"touser": user.openid, "template_id": job.template_id, "data": job.data}
    if job.page:
        message["page"] = job.page
    try:
        with wechat_failures_as_app_errors("subscribe message"):
            call_with_access_token(lambda token: _send_or_classify(token, message))
    except _PermanentRefusal as refusal:
        returned = subscriptions.give_back(job.user_id, job.template_id, job.message_key, clock.now())
        log.warning("subscribe message refused by WeChat", message_key=job.message_key, errcode=refusal.errcode,
                    quota_returned=returned)
        return "refused"
    log.info("subscribe message sent", message_key=job.message_key)
    return "sent"


class _PermanentRefusal(Exception):
    def __init__(self, errcode: int):
        super().__init__(errcode)
        self.errcode = errcode


def _send_or_classify(token: str, message: dict) -> int:
    try:
        return open_api().send_subscribe_message(token, message)
    except WeChatApiError as error:
        if error.errcode in PERMANENT_ERRCODES:
            raise _PermanentRefusal(error.errcode) from None
        raise
