"""The notifications queue consumer: each subscribe message spends one unit of the user's quota
for its template, once, whatever SQS redelivers (services/notifications.py)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib import queues
from chalicelib.lazy import lazy_module
from chalicelib.schemas.messages import SubscribeMessageJob

notifications = lazy_module("chalicelib.services.notifications")

bp = Blueprint(__name__)


# batch_size=1: a failing message is retried (and dead-lettered) alone, without replaying others.
@bp.on_sqs_message(queue=queues.NOTIFICATIONS.name, batch_size=1)
def deliver_notifications(event) -> None:
    for record in event:
        notifications.deliver_subscribe_message(SubscribeMessageJob.model_validate_json(record.body))
