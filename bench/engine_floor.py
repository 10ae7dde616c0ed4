"""The engine floor: raw boto3 calls on one small item, in the same DynamoDB, same process.

What a request cannot go below: a login's 2 writes and a /v1/me's 2 reads each cost at least
one of these. The client is configured like PynamoDB's (no parameter validation, same timeouts
and retry mode) and metered with the same hook (ReturnConsumedCapacity=INDEXES), so the only
difference from the app's calls is PynamoDB, the service code and the framework.

`make_client` and `update_item` are reused by bench.shop, which times this UpdateItem between
its requests (the floor beside each request). `transaction_probe` asks the engine what it
reports for one TransactWriteItems of 3 small updates on one table, which DynamoDB bills at
6 units (2 per item): the report says whether the engine's transaction figures can be trusted.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from bench import env
from bench.capacity import CapacityMeter
from bench.stats import summarize_ms

TABLE = f"{env.BASE_ENV['TABLE_PREFIX']}engine-floor"
KEY = {"pk": {"S": "floor"}}
N_OPERATIONS = 300
WARMUP = 100  # DynamoDB Local is a JVM: its first few hundred calls run interpreted


def make_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(parameter_validation=False, connect_timeout=2, read_timeout=5,
                    retries={"total_max_attempts": 4, "mode": "standard"})
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint,
                                          region_name=env.BASE_ENV["AWS_REGION"], config=config)


def ensure_table(client: Any) -> None:
    if TABLE not in client.list_tables()["TableNames"]:
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        client.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.put_item(TableName=TABLE, Item={**KEY, "n": {"N": "0"}})


def _time(operation: Callable[[], Any], meter: CapacityMeter, n: int, warmup: int) -> dict:
    for _ in range(warmup):
        operation()
    meter.reset()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - started)
    return {"latency": summarize_ms(samples), "dynamodb": meter.snapshot().per_request(n)}


UPDATE = dict(TableName=TABLE, Key=KEY, UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})


def update_item(client: Any) -> Callable[[], Any]:
    """The floor operation: one UpdateItem (ADD) on one small item."""
    return lambda: client.update_item(**UPDATE)


def transaction_probe(client: Any, items: int = 3) -> dict:
    """One TransactWriteItems of `items` small updates on one table: what the engine reports,
    against DynamoDB's bill (2 write units per item of up to 1 KB)."""
    actions = [{"Update": {"TableName": TABLE, "Key": {"pk": {"S": f"probe-{i}"}}, "UpdateExpression": "ADD n :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}} for i in range(items)]
    consumed = client.transact_write_items(TransactItems=actions, ReturnConsumedCapacity="INDEXES").get(
        "ConsumedCapacity")
    reported = sum(float(entry.get("CapacityUnits", 0.0)) for entry in consumed) if consumed else None
    return {"items": items, "expected_units": 2.0 * items, "reported_units": reported, "consumed_capacity": consumed}


def run(endpoint: str, n: int = N_OPERATIONS, warmup: int = WARMUP) -> dict:
    client = make_client(endpoint)
    ensure_table(client)
    # What the engine itself answers for consumed capacity, quoted in the report.
    sample = client.update_item(**UPDATE, ReturnConsumedCapacity="INDEXES").get("ConsumedCapacity")
    with CapacityMeter(keep_records=False) as meter:
        meter.attach_client(client)
        results = {"UpdateItem": _time(update_item(client), meter, n, warmup),
                   "GetItem": _time(lambda: client.get_item(TableName=TABLE, Key=KEY), meter, n, warmup)}
    return {"table": TABLE, "operations": results, "engine_consumed_capacity_sample": sample,
            "transaction_probe": transaction_probe(client)}
