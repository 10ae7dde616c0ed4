"""Subscribe messages to users: queued by use cases, delivered once by the notifications worker."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import clock, queues
from chalicelib.errors import UpstreamError
from chalicelib.log import get_logger
from chalicelib.schemas.messages import SubscribeMessageJob
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.wechat_clients import open_api
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.storage import idempotency, users
from chalicelib.wechat.http import WeChatApiError

log = get_logger(__name__)

# WeChat errcodes after which sending again can never succeed: the user has not subscribed
# (or refused), the openid or template is wrong, or the data does not fit the template.
PERMANENT_ERRCODES = frozenset({40003, 40037, 43101, 43107, 47003})
LEASE = timedelta(minutes=2)
KEEP_KEYS_FOR = timedelta(days=7)


def queue_subscribe_message(job: SubscribeMessageJob) -> str:
    """Enqueue a message for delivery; returns the SQS message id."""
    return queues.send_message(queues.NOTIFICATIONS, job.model_dump(mode="json"))


def deliver_subscribe_message(job: SubscribeMessageJob) -> str:
    """Send one queued message at most once per message_key; returns what happened.

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
    message = {"touser": user.openid, "template_id": job.template_id, "data": job.data}
    if job.page:
        message["page"] = job.page
    try:
        with wechat_failures_as_app_errors("subscribe message"):
            call_with_access_token(lambda token: _send_or_classify(token, message))
    except _PermanentRefusal as refusal:
        log.warning("subscribe message refused by WeChat", message_key=job.message_key, errcode=refusal.errcode)
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
