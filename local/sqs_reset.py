"""Empty every queue of the app by re-creating it (tests and benchmarks on moto's SQS only).

Draining would miss delayed messages (order timers), and PurgeQueue is limited to once a minute
per queue; moto allows the quick re-create. moto's SQS also gets slower with every message a
queue holds (SendMessageBatch ~0.1 ms more per queued message: 16 ms empty, 78 ms at 1,200
delayed timers), so a benchmark that has queued thousands of timers measures moto, not the app,
unless it starts again from empty queues.
"""
from __future__ import annotations

from chalicelib import queues


def recreate_all_queues() -> None:
    client = queues._client()
    for spec in queues.ALL_QUEUES:
        for name in (spec.name, spec.dead_letter_name):
            client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
    queues.queue_url.cache_clear()
    queues.create_all_queues()
