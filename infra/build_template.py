"""Build the CloudFormation resources `chalice package --merge-template` adds to the app.

    python -m infra.build_template --stage prod --out build/infra.json

Everything is derived from the code, so the deployed stack cannot drift from it:

- one `AWS::DynamoDB::Table` per PynamoDB model in `chalicelib.storage.schema.ALL_MODELS` (key
  schema, attribute definitions, GSIs/LSIs and their projections from the model; on-demand,
  point-in-time recovery, SSE, TTL where the model has a `TTLAttribute`);
- one `AWS::SQS::Queue` per `chalicelib.queues.ALL_QUEUES` entry and its dead-letter queue
  (redrive after the spec's `max_receive_count`); the visibility timeout is at least 6x the
  consuming Lambda's timeout (AWS's rule for SQS event sources);
- CloudWatch alarms (any message in a dead-letter queue; any API Gateway 5XX) sending to an SNS
  topic, with an e-mail subscription when the `AlarmEmail` parameter is set;
- the least-privilege IAM policy of the stage's functions, written to
  `.chalice/policy-<stage>.json` (the stage's `iam_policy_file`; committed, and a test checks it
  is up to date). That file is static JSON for `chalice deploy` too, so its ARNs cannot name the
  partition, region or account (`arn:*:dynamodb:*:*:table/...`). In the package it is written
  once (`FunctionsPolicy`, attached to every function's role) with its ARNs built by `Fn::Sub`:
  `arn:${AWS::Partition}:` always (cfn-lint >= 1.34 refuses a `*` partition, E3510; aws-cn and
  aws-us-gov need their own), and
  `${AWS::Region}:${AWS::AccountId}` for the stack's own tables, queues, parameters and log
  groups (see `package_policy`).

DynamoDB stream event sources (`on_dynamodb_record`) name their table in a stand-in ARN (a
stream's label is made when the stream is created): each is pointed at its table's `StreamArn`,
and the policy lets the functions read the streams of the tables that have one. The business
alert on dead letters reads the dead-letter queues' depth (GetQueueAttributes on those only).

The optional analytics archive (issue 18, docs/analytics.md "Archive"), off unless the stack's
`AnalyticsArchive` parameter is `true`: an S3 bucket, a Glue table of the archive's rows
(`chalicelib.analytics_archive.COLUMNS`), a Firehose delivery stream converting them to Parquet,
an Athena workgroup with the queries, and `firehose:PutRecordBatch` for the stream consumers'
roles only, in a policy of its own that exists only with the archive (the policy file, shared
with `chalice deploy`, never names Firehose).

The optional console hosting (issue 16), off unless the `ConsoleHosting` parameter is `true`: a
private S3 bucket for the merchant console's files (chalicelib/console_static/) behind a
CloudFront distribution that alone may read it (origin access control). The app serves the same
files under /console/ anyway; see `console_resources` for the upload.

The Lambda functions, their event sources and schedules, and the API come from Chalice itself
(its application graph, the one `chalice package` renders): the script reads the queue names
the SQS event sources point at, the functions' names and timeouts, and the API stage from it,
and adds only what Chalice cannot know: the queues' ARNs (so each event source mapping depends
on its queue), fixed function names (so the policy can name the log groups) and a per-stage API
name (so the 5XX alarm's `ApiName` dimension names this stage's API only).

The output is a fragment to merge, not a template on its own: it refers to Chalice's resources.
Table and queue names are fixed when `chalicelib` is imported, so this must run in a fresh
process: it sets the stage's environment (TABLE_PREFIX, ...) before importing the app.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent

# SSM parameters a stage may read: /wechat-store/<stage>/...
SSM_PATH = "/{app}/{stage}/"
# AWS: "set the source queue's visibility timeout to at least six times the timeout that you
# configure on your function" (plus the batching window), so a throttled or retried batch is not
# redelivered while it is still being worked on.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum, and what `make tables` uses
# SQS's default, made explicit. Shorter than the dead-letter queue's: a dead-lettered message
# keeps its first enqueue time, so the DLQ must keep messages longer than the source queue.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
ALARM_PERIOD_SECONDS = 300
# API routes WeChat Pay calls back (API.md "WeChat Pay callbacks"); checked against the app.
WECHAT_PAY_CALLBACKS = {
    "WeChatPayV3NotifyUrl": "/v1/payments/wechat/v3/notify",
    "WeChatPayV2NotifyUrl": "/v1/payments/wechat/notify",
    "WeChatPayV2RefundNotifyUrl": "/v1/payments/wechat/refund-notify",
}
# DynamoDB actions every stage needs (the storage layer reads, writes, conditionally updates and
# queries every table). Transactions (TransactWriteItems) have no IAM action of their own: each
# item in one is authorized by PutItem/UpdateItem/DeleteItem/ConditionCheckItem.
BASE_DYNAMODB_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
                         "dynamodb:Query", "dynamodb:UpdateItem")
# Added only when the storage code uses them (see `_dynamodb_usage`).
OPTIONAL_DYNAMODB_ACTIONS = {
    r"\.batch_get\(": "dynamodb:BatchGetItem",
    r"\.batch_write\(": "dynamodb:BatchWriteItem",
    r"\.condition_check\(": "dynamodb:ConditionCheckItem",
}
# What the app sends and looks up (chalicelib/queues.py), and what Lambda's SQS event source
# mapping needs on the consumer's role (ReceiveMessage, DeleteMessage, GetQueueAttributes).
SQS_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
               "sqs:ReceiveMessage", "sqs:SendMessage")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# What Lambda's DynamoDB stream event source mapping needs on the consumer's role.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams")
# The dead-letter depth alert (services/alert_rules.py) reads the DLQs' attributes, nothing more.
DLQ_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")


class TemplateError(RuntimeError):
    """The code or the stage's configuration cannot be packaged as it stands."""


@dataclass(frozen=True)
class Consumer:
    """One SQS event source, as Chalice will render it."""
    function_cfn_name: str
    event_cfn_name: str
    queue_name: str
    batch_size: int
    batching_window_seconds: int
    timeout_seconds: int


@dataclass(frozen=True)
class StreamConsumer:
    """One DynamoDB stream event source, as Chalice will render it."""
    function_cfn_name: str
    event_cfn_name: str
    table_name: str
    role_cfn_name: str | None = None  # the function's IAM role (the analytics archive's feed grant)


@dataclass(frozen=True)
class Function:
    cfn_name: str
    function_name: str
    timeout_seconds: int


@dataclass
class StageApp:
    """What Chalice knows about the stage: its config and the app's resources."""
    stage: str
    app_name: str
    table_prefix: str
    api_gateway_stage: str
    environment: dict[str, str]
    autogen_policy: bool
    iam_policy_file: str | None
    functions: list[Function]
    consumers: list[Consumer]
    stream_consumers: list[StreamConsumer]
    routes: set[str]
    roles: list[str]  # logical ids of the functions' IAM roles, as `chalice package` names them
    api_role: str | None = None  # the API handler's role (the poster cache's grant)


def cfn_name(name: str) -> str:
    """A CloudFormation logical id, the way Chalice makes them."""
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


def load_stage(stage: str, project_dir: Path = PROJECT_DIR) -> StageApp:
    """Import the app with the stage's environment (as `chalice package` does) and read its
    resources from Chalice's application graph."""
    from chalice.cli.factory import CLIFactory
    from chalice.constants import DEFAULT_LAMBDA_TIMEOUT
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    factory = CLIFactory(project_dir=str(project_dir), environ=os.environ)
    if stage not in factory.load_project_config().get("stages", {}):
        raise TemplateError(f"no stage {stage!r} in .chalice/config.json")
    config = factory.create_config_obj(chalice_stage_name=stage)
    environment = dict(config.environment_variables)
    table_prefix = environment.get("TABLE_PREFIX", "")
    if not table_prefix:
        raise TemplateError(f"stage {stage!r} sets no TABLE_PREFIX: its tables and queues would "
                            "collide with every other stack's")
    # Chalice sets the stage's variables in os.environ before importing the app (the names of
    # tables and queues are read at import); set them first anyway, for the imports below.
    os.environ.update(environment)
    graph = ApplicationGraphBuilder().build(config, stage)
    resources = DependencyBuilder().build_dependencies(graph)

    api_handler = None
    api_stage = config.api_gateway_stage
    for resource in resources:
        if isinstance(resource, models.RestAPI):
            api_handler = resource.lambda_function.resource_name
            api_stage = resource.api_gateway_stage
    functions, timeouts, roles, api_role = [], {}, [], None
    for resource in resources:
        if isinstance(resource, models.LambdaFunction):
            if isinstance(resource.role, models.ManagedIAMRole) and cfn_name(resource.role.resource_name) not in roles:
                roles.append(cfn_name(resource.role.resource_name))
            if resource.resource_name == api_handler and isinstance(resource.role, models.ManagedIAMRole):
                api_role = cfn_name(resource.role.resource_name)
            timeout = int(resource.timeout or DEFAULT_LAMBDA_TIMEOUT)
            timeouts[resource.resource_name] = timeout
            # `chalice package` renames the API handler's resource to "APIHandler".
            name = "APIHandler" if resource.resource_name == api_handler else cfn_name(resource.resource_name)
            functions.append(Function(name, resource.function_name, timeout))
    consumers = []
    for resource in resources:
        if isinstance(resource, models.SQSEventSource):
            if not isinstance(resource.queue, str):
                raise TemplateError(f"{resource.resource_name}: queues are given by name, not ARN")
            consumers.append(Consumer(
                function_cfn_name=cfn_name(resource.lambda_function.resource_name),
                event_cfn_name=cfn_name(resource.resource_name),
                queue_name=resource.queue,
                batch_size=resource.batch_size,
                batching_window_seconds=int(resource.maximum_batching_window_in_seconds or 0),
                timeout_seconds=timeouts[resource.lambda_function.resource_name]))
    stream_consumers = [StreamConsumer(function_cfn_name=cfn_name(resource.lambda_function.resource_name),
                                       event_cfn_name=cfn_name(resource.resource_name),
                                       table_name=stream_table_name(resource.stream_arn),
                                       role_cfn_name=(cfn_name(resource.lambda_function.role.resource_name)
                                                      if isinstance(resource.lambda_function.role,
                                                                    models.ManagedIAMRole) else None))
                        for resource in resources if isinstance(resource, models.DynamoDBEventSource)]
    app = config.chalice_app
    return StageApp(stage=stage, app_name=config.app_name, table_prefix=table_prefix,
                    api_gateway_stage=api_stage, environment=environment,
                    autogen_policy=config.autogen_policy, iam_policy_file=config.iam_policy_file,
                    functions=functions, consumers=consumers, stream_consumers=stream_consumers,
                    routes=set(app.routes), roles=roles, api_role=api_role)


def stream_table_name(stream_arn: str) -> str:
    """`arn:...:table/<name>/stream/<label>` -> `<name>`."""
    resource = stream_arn.split(":", 5)[-1].split("/")
    if len(resource) < 2 or resource[0] != "table":
        raise TemplateError(f"{stream_arn!r} is not a DynamoDB stream ARN")
    return resource[1]


def check_stage(stage_app: StageApp) -> None:
    """Refuse a stage that would deploy a secret in plain text, read SSM outside its path, or
    not use the generated policy."""
    from chalicelib.settings import SECRET_NAMES

    plain = sorted(name for name in SECRET_NAMES if stage_app.environment.get(name))
    if plain:
        raise TemplateError(f"stage {stage_app.stage!r} gives {', '.join(plain)} in plain text; "
                            "deployed stages name SSM parameters instead (<NAME>_SSM)")
    path = ssm_path(stage_app)
    for name, value in sorted(stage_app.environment.items()):
        if name.endswith("_SSM") and not value.startswith(path):
            raise TemplateError(f"{name}={value!r} is outside {path}, the only SSM path the "
                                "stage's functions may read")
    expected = policy_file_name(stage_app.stage)
    if stage_app.autogen_policy or stage_app.iam_policy_file != expected:
        raise TemplateError(f'stage {stage_app.stage!r} must set "autogen_policy": false and '
                            f'"iam_policy_file": "{expected}" in .chalice/config.json')
    missing = [path for path in WECHAT_PAY_CALLBACKS.values() if path not in stage_app.routes]
    if missing:
        raise TemplateError(f"the app has no route {', '.join(missing)} (API.md WeChat Pay callbacks)")


def ssm_path(stage_app: StageApp) -> str:
    return SSM_PATH.format(app=stage_app.app_name, stage=stage_app.stage)


def policy_file_name(stage: str) -> str:
    return f"policy-{stage}.json"


# --- tables ---------------------------------------------------------------------------------

def _key_schema(elements: list[dict[str, str]]) -> list[dict[str, str]]:
    """HASH first, then RANGE (CloudFormation insists; PynamoDB keeps declaration order)."""
    return [{"AttributeName": e["AttributeName"], "KeyType": e["KeyType"]}
            for e in sorted(elements, key=lambda e: e["KeyType"] != "HASH")]


def _projection(projection: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ProjectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return out


def table_logical_id(base: str) -> str:
    return cfn_name(base) + "Table"


def table_base(model: Any, prefix: str) -> str:
    name = model.Meta.table_name
    if not name.startswith(prefix):
        raise TemplateError(f"{model.__name__} is named {name!r}, not under {prefix!r}: chalicelib was "
                            "imported with another TABLE_PREFIX; run the generator in a fresh process")
    return name[len(prefix):]


def table_resource(model: Any, stage_app: StageApp) -> dict[str, Any]:
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(({"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
                                        for a in schema["attribute_definitions"]),
                                       key=lambda a: a["AttributeName"]),
        "KeySchema": _key_schema(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "Tags": _tags(stage_app),
    }
    if schema["global_secondary_indexes"]:
        properties["GlobalSecondaryIndexes"] = [
            {"IndexName": index["index_name"], "KeySchema": _key_schema(index["key_schema"]),
             "Projection": _projection(index["projection"])}
            for index in sorted(schema["global_secondary_indexes"], key=lambda i: i["index_name"])]
    if schema["local_secondary_indexes"]:
        properties["LocalSecondaryIndexes"] = [
            {"IndexName": index["index_name"], "KeySchema": _key_schema(index["key_schema"]),
             "Projection": _projection(index["projection"])}
            for index in sorted(schema["local_secondary_indexes"], key=lambda i: i["index_name"])]
    ttl = model._ttl_attribute()
    if ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl.attr_name, "Enabled": True}
    if getattr(model.Meta, "stream_view_type", None):
        properties["StreamSpecification"] = {"StreamViewType": model.Meta.stream_view_type}
    # Retain: deleting or replacing the stack must never drop a store's orders. Point-in-time
    # recovery restores into a new table, and a retained table blocks re-creating the stack with
    # the same prefix until it is deleted or imported (docs/operations.md).
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": properties}


def _tags(stage_app: StageApp) -> list[dict[str, str]]:
    return [{"Key": "app", "Value": stage_app.app_name}, {"Key": "stage", "Value": stage_app.stage}]


# --- queues ---------------------------------------------------------------------------------

def queue_logical_ids(base: str) -> tuple[str, str]:
    name = cfn_name(base)
    return f"{name}Queue", f"{name}DeadLetterQueue"


def visibility_timeout(spec: Any, consumers: list[Consumer]) -> int:
    """At least the spec's, and at least 6x each consumer's timeout plus its batching window."""
    needed = [VISIBILITY_TIMEOUT_FACTOR * c.timeout_seconds + c.batching_window_seconds for c in consumers]
    return max([spec.visibility_timeout_seconds, *needed])


def queue_resources(spec: Any, consumers: list[Consumer], stage_app: StageApp) -> dict[str, Any]:
    """A queue and its dead-letter queue. Deleted with the stack (explicitly): what a work queue
    holds is re-created by the sweeps (timers, shipping uploads) or is a notification not worth
    blocking a teardown for; a retained queue would block re-creating the stack."""
    queue_id, dlq_id = queue_logical_ids(spec.base)
    policies = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    return {
        dlq_id: {"Type": "AWS::SQS::Queue", **policies, "Properties": {
            "QueueName": spec.dead_letter_name,
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
            "Tags": _tags(stage_app),
        }},
        queue_id: {"Type": "AWS::SQS::Queue", **policies, "Properties": {
            "QueueName": spec.name,
            "VisibilityTimeout": visibility_timeout(spec, consumers),
            "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                              "maxReceiveCount": spec.max_receive_count},
            "SqsManagedSseEnabled": True,
            "Tags": _tags(stage_app),
        }},
    }


# --- alarms ---------------------------------------------------------------------------------

def api_name(stage_app: StageApp) -> str:
    """Per stage: API Gateway's metrics are keyed by API *name*, and Chalice names every stage's
    API after the app, so dev's 5XXs would otherwise trip prod's alarm."""
    return f"{stage_app.app_name}-{stage_app.stage}"


def alarm(name: str, description: str, namespace: str, metric: str, dimensions: list[dict[str, Any]],
          statistic: str) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": dimensions,
        "Statistic": statistic,
        "Period": ALARM_PERIOD_SECONDS,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": "AlarmTopic"}],
        "OKActions": [{"Ref": "AlarmTopic"}],
    }}


# --- analytics archive (optional) ------------------------------------------------------------

ARCHIVE_CONDITION = "AnalyticsArchiveOn"
ARCHIVE_PARAMETERS = {
    "AnalyticsArchive": {
        "Type": "String", "Default": "false", "AllowedValues": ["false", "true"],
        "Description": "true: archive every analytics event to S3 as Parquet through Kinesis Data Firehose, "
                       "queryable with Athena (docs/analytics.md, Archive)"},
    "AnalyticsArchiveRetentionDays": {
        "Type": "Number", "Default": 730, "MinValue": 120, "MaxValue": 3650,
        "Description": "Days the archive keeps events (moved to infrequent access after 90)"},
}
ARCHIVE_PREFIX = "events/"
ARCHIVE_IA_AFTER_DAYS = 90
ARCHIVE_SCRATCH_DAYS = 30  # Firehose's failed records and Athena's query results
# Parquet wants large files: Firehose buffers up to 128 MiB or 15 minutes (its maximums).
ARCHIVE_BUFFER_MB, ARCHIVE_BUFFER_SECONDS = 128, 900
ARCHIVE_SCAN_LIMIT_BYTES = 10 * 1024 ** 3  # Athena: a query scanning more is cancelled
PARQUET = {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
           "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                         "Parameters": {"serialization.format": "1"}}}
FIREHOSE_S3_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                       "s3:ListBucketMultipartUploads", "s3:PutObject")
FIREHOSE_GLUE_ACTIONS = ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")

# The Athena queries (also in docs/analytics.md, word for word: a test compares them). `dt`
# (arrival day, UTC) bounds the files read and `day` (Asia/Shanghai, as the reports) the events
# counted; the cohorts read every paid order's few columns (a customer's first payment may be
# old). Firehose delivers at least once: money and counts deduplicate on event_key.
ATHENA_QUERIES = {
    "daily-gmv": ("Daily paid orders, GMV, AOV and refunds (fen), last 30 days", """\
WITH money AS (
  SELECT event_key, arbitrary(kind) AS kind, arbitrary(day) AS day, arbitrary(amount_fen) AS amount_fen
  FROM events
  WHERE dt >= date_format(current_date - INTERVAL '31' DAY, '%Y-%m-%d')
    AND kind IN ('order_paid', 'order_refund')
  GROUP BY event_key
)
SELECT day,
       count_if(kind = 'order_paid') AS paid_orders,
       sum(if(kind = 'order_paid', amount_fen, 0)) AS gmv_fen,
       sum(if(kind = 'order_paid', amount_fen, 0)) / nullif(count_if(kind = 'order_paid'), 0) AS aov_fen,
       sum(if(kind = 'order_refund', amount_fen, 0)) AS refund_fen
FROM money
WHERE day >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY day
ORDER BY day"""),
    "funnel": ("Funnel: unique users per stage per day, and over the whole 30 days (day NULL)", """\
SELECT day,
       count(DISTINCT if(kind IN ('page_view', 'product_view', 'add_to_cart', 'share'), user_id)) AS exposure,
       count(DISTINCT if(kind = 'product_view', user_id)) AS click,
       count(DISTINCT if(kind = 'add_to_cart', user_id)) AS cart,
       count(DISTINCT if(kind = 'order_placed', user_id)) AS ordered,
       count(DISTINCT if(kind = 'order_paid', user_id)) AS paid
FROM events
WHERE dt >= date_format(current_date - INTERVAL '31' DAY, '%Y-%m-%d')
  AND day >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY GROUPING SETS ((day), ())
ORDER BY day NULLS LAST"""),
    "repurchase-by-cohort": ("Repurchase and monthly retention by first-payment month: the cohorts of the last "
                             "13 months, first payments looked up in the whole archive", """\
WITH paid AS (
  SELECT DISTINCT event_key, user_id, substr(day, 1, 7) AS month
  FROM events
  WHERE kind = 'order_paid'
),
customers AS (
  SELECT user_id, min(month) AS cohort, count(*) AS paid_orders FROM paid GROUP BY user_id
),
cohorts AS (
  SELECT cohort, count(*) AS customers, count_if(paid_orders >= 2) AS repurchased
  FROM customers GROUP BY cohort
),
active AS (
  SELECT DISTINCT c.cohort, p.user_id,
         date_diff('month', date_parse(c.cohort || '-01', '%Y-%m-%d'), date_parse(p.month || '-01', '%Y-%m-%d'))
           AS months_after
  FROM paid p JOIN customers c ON p.user_id = c.user_id
)
SELECT h.cohort, h.customers, h.repurchased, h.repurchased * 1000 / h.customers AS rate_permille,
       a.months_after, count(*) AS paying_customers
FROM cohorts h JOIN active a ON a.cohort = h.cohort
WHERE h.cohort >= date_format(date_trunc('month', current_date) - INTERVAL '12' MONTH, '%Y-%m')
GROUP BY h.cohort, h.customers, h.repurchased, a.months_after
ORDER BY h.cohort, a.months_after"""),
}


def archive_names(stage_app: StageApp) -> dict[str, str]:
    base = f"{stage_app.app_name}-{stage_app.stage}-analytics"
    return {"stream": base, "workgroup": base, "log_group": f"/aws/kinesisfirehose/{base}",
            "database": re.sub(r"[^a-z0-9_]", "_", base.lower()), "table": "events"}


def archive_table_input(names: dict[str, str]) -> dict[str, Any]:
    """The Glue table of the archive's rows: Parquet under events/dt=<day>/, the `dt` partitions
    found by Athena's partition projection (no crawler, no MSCK REPAIR)."""
    from chalicelib.analytics_archive import COLUMNS, PARTITION_KEY

    key = PARTITION_KEY[0]
    return {
        "Name": names["table"],
        "Description": "Analytics events archived by Firehose (chalicelib/analytics_archive.py)",
        "TableType": "EXTERNAL_TABLE",
        "PartitionKeys": [{"Name": key, "Type": PARTITION_KEY[1]}],
        "Parameters": {
            "classification": "parquet",
            "projection.enabled": "true",
            f"projection.{key}.type": "date",
            f"projection.{key}.format": "yyyy-MM-dd",
            f"projection.{key}.range": "NOW-10YEARS,NOW",
            f"projection.{key}.interval": "1",
            f"projection.{key}.interval.unit": "DAYS",
            "storage.location.template": {"Fn::Sub": "s3://${AnalyticsArchiveBucket}/%s%s=${!%s}/"
                                                     % (ARCHIVE_PREFIX, key, key)},
        },
        "StorageDescriptor": {
            "Columns": [{"Name": name, "Type": type_} for name, type_ in COLUMNS],
            "Location": {"Fn::Sub": "s3://${AnalyticsArchiveBucket}/" + ARCHIVE_PREFIX},
            **PARQUET,
        },
    }


def archive_resources(stage_app: StageApp) -> dict[str, Any]:
    """The archive's resources, each only when the AnalyticsArchive parameter is true."""
    from chalicelib.analytics_archive import PARTITION_KEY

    names = archive_names(stage_app)
    roles = sorted({stream.role_cfn_name for stream in stage_app.stream_consumers if stream.role_cfn_name})
    if len(roles) != len(stage_app.stream_consumers):
        raise TemplateError("every stream consumer needs its own Chalice-managed role for the archive's grant")
    bucket_arn = {"Fn::GetAtt": ["AnalyticsArchiveBucket", "Arn"]}
    objects_arn = {"Fn::Sub": "${AnalyticsArchiveBucket.Arn}/*"}
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
    log_stream = "S3Delivery"
    conditional = {"Condition": ARCHIVE_CONDITION}
    resources: dict[str, Any] = {
        "AnalyticsArchiveBucket": {"Type": "AWS::S3::Bucket", **conditional,
                                   "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
            **PRIVATE_BUCKET,
            "LifecycleConfiguration": {"Rules": [
                {"Id": "events", "Status": "Enabled", "Prefix": ARCHIVE_PREFIX,
                 "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": ARCHIVE_IA_AFTER_DAYS}],
                 "ExpirationInDays": {"Ref": "AnalyticsArchiveRetentionDays"}},
                {"Id": "errors", "Status": "Enabled", "Prefix": "errors/", "ExpirationInDays": ARCHIVE_SCRATCH_DAYS},
                {"Id": "athena-results", "Status": "Enabled", "Prefix": "athena-results/",
                 "ExpirationInDays": ARCHIVE_SCRATCH_DAYS},
                {"Id": "incomplete-uploads", "Status": "Enabled",
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
            ]},
            "Tags": _tags(stage_app),
        }},
        "AnalyticsArchiveBucketPolicy": {"Type": "AWS::S3::BucketPolicy", **conditional, "Properties": {
            "Bucket": {"Ref": "AnalyticsArchiveBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [bucket_arn, objects_arn],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
        }},
        "AnalyticsGlueDatabase": {"Type": "AWS::Glue::Database", **conditional, "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseInput": {"Name": names["database"],
                              "Description": f"{stage_app.app_name} ({stage_app.stage}): archived analytics events"},
        }},
        "AnalyticsGlueTable": {"Type": "AWS::Glue::Table", **conditional, "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseName": {"Ref": "AnalyticsGlueDatabase"},
            "TableInput": archive_table_input(names),
        }},
        "AnalyticsArchiveLogGroup": {"Type": "AWS::Logs::LogGroup", **conditional, "Properties": {
            "LogGroupName": names["log_group"], "RetentionInDays": 30}},
        "AnalyticsArchiveLogStream": {"Type": "AWS::Logs::LogStream", **conditional, "Properties": {
            "LogGroupName": {"Ref": "AnalyticsArchiveLogGroup"}, "LogStreamName": log_stream}},
        "AnalyticsArchiveDeliveryRole": {"Type": "AWS::IAM::Role", **conditional, "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}}]},
            "Policies": [{"PolicyName": "AnalyticsArchiveDelivery", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [
                    {"Sid": "WriteTheArchive", "Effect": "Allow", "Action": list(FIREHOSE_S3_ACTIONS),
                     "Resource": [bucket_arn, objects_arn]},
                    {"Sid": "ReadTheSchema", "Effect": "Allow", "Action": list(FIREHOSE_GLUE_ACTIONS),
                     "Resource": [{"Fn::Sub": glue + "catalog"},
                                  {"Fn::Sub": glue + "database/${AnalyticsGlueDatabase}"},
                                  {"Fn::Sub": glue + "table/${AnalyticsGlueDatabase}/${AnalyticsGlueTable}"}]},
                    {"Sid": "LogDeliveryErrors", "Effect": "Allow", "Action": ["logs:PutLogEvents"],
                     "Resource": [{"Fn::Sub": "${AnalyticsArchiveLogGroup.Arn}"}]},
                ]}}],
        }},
        "AnalyticsDeliveryStream": {"Type": "AWS::KinesisFirehose::DeliveryStream", **conditional, "Properties": {
            "DeliveryStreamName": names["stream"],
            "DeliveryStreamType": "DirectPut",
            "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"},
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": bucket_arn,
                "RoleARN": {"Fn::GetAtt": ["AnalyticsArchiveDeliveryRole", "Arn"]},
                "Prefix": f"{ARCHIVE_PREFIX}{PARTITION_KEY[0]}=!{{timestamp:yyyy-MM-dd}}/",
                "ErrorOutputPrefix": ("errors/!{firehose:error-output-type}/"
                                      f"{PARTITION_KEY[0]}=!{{timestamp:yyyy-MM-dd}}/"),
                "BufferingHints": {"SizeInMBs": ARCHIVE_BUFFER_MB, "IntervalInSeconds": ARCHIVE_BUFFER_SECONDS},
                "CompressionFormat": "UNCOMPRESSED",  # Parquet compresses itself (Snappy, below)
                "CloudWatchLoggingOptions": {"Enabled": True, "LogGroupName": {"Ref": "AnalyticsArchiveLogGroup"},
                                             "LogStreamName": {"Ref": "AnalyticsArchiveLogStream"}},
                "DataFormatConversionConfiguration": {
                    "Enabled": True,
                    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
                    "SchemaConfiguration": {
                        "CatalogId": {"Ref": "AWS::AccountId"}, "Region": {"Ref": "AWS::Region"},
                        "DatabaseName": {"Ref": "AnalyticsGlueDatabase"}, "TableName": {"Ref": "AnalyticsGlueTable"},
                        "RoleARN": {"Fn::GetAtt": ["AnalyticsArchiveDeliveryRole", "Arn"]}, "VersionId": "LATEST"},
                },
            },
            "Tags": _tags(stage_app),
        }},
        # The app's grant: only the stream consumers, only this stream, only with the archive.
        "AnalyticsArchiveFeedPolicy": {"Type": "AWS::IAM::Policy", **conditional, "Properties": {
            "PolicyName": "AnalyticsArchiveFeed",
            "Roles": [{"Ref": role} for role in roles],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "FeedTheArchive", "Effect": "Allow", "Action": ["firehose:PutRecordBatch"],
                "Resource": [{"Fn::GetAtt": ["AnalyticsDeliveryStream", "Arn"]}]}]},
        }},
        "AnalyticsAthenaWorkGroup": {"Type": "AWS::Athena::WorkGroup", **conditional, "Properties": {
            "Name": names["workgroup"],
            "Description": "Queries over the archived analytics events (docs/analytics.md)",
            "RecursiveDeleteOption": True,
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "PublishCloudWatchMetricsEnabled": True,
                "BytesScannedCutoffPerQuery": ARCHIVE_SCAN_LIMIT_BYTES,
                "ResultConfiguration": {
                    "OutputLocation": {"Fn::Sub": "s3://${AnalyticsArchiveBucket}/athena-results/"},
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
            },
            "Tags": _tags(stage_app),
        }},
    }
    for name, (description, sql) in ATHENA_QUERIES.items():
        resources["AnalyticsQuery" + cfn_name(name.replace("-", "_"))] = {
            "Type": "AWS::Athena::NamedQuery", **conditional, "Properties": {
                "Name": name, "Description": description, "Database": {"Ref": "AnalyticsGlueDatabase"},
                "WorkGroup": {"Ref": "AnalyticsAthenaWorkGroup"}, "QueryString": sql}}
    return resources


def archive_feed_environment(resources: dict[str, Any], stage_app: StageApp) -> None:
    """The stream consumers name the delivery stream (ANALYTICS_FIREHOSE_STREAM) only with the
    archive; without it the variable is absent and they send nothing."""
    from chalicelib.analytics_archive import STREAM_ENV

    for stream in stage_app.stream_consumers:
        function = resources.setdefault(stream.function_cfn_name, {"Properties": {}})
        variables = function["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        variables[STREAM_ENV] = {"Fn::If": [ARCHIVE_CONDITION, {"Ref": "AnalyticsDeliveryStream"},
                                            {"Ref": "AWS::NoValue"}]}


# --- share posters ---------------------------------------------------------------------------

POSTER_PREFIX = "posters/"  # chalicelib/storage/poster_cache.py PREFIX
POSTER_EXPIRY_DAYS = 30  # a poster not made again within this is deleted (made again on demand)
POSTER_ACTIONS = ("s3:GetObject", "s3:PutObject")


def poster_resources(stage_app: StageApp) -> dict[str, Any]:
    """The posters' cache bucket (private, encrypted, TLS only, expiring) and the API function's
    grant on it, in a policy of its own: the policy file, shared with `chalice deploy`, names no
    bucket (a deploy without the package sets POSTER_BUCKET and grants these by hand)."""
    from chalicelib.storage.poster_cache import PREFIX

    if PREFIX != POSTER_PREFIX:
        raise TemplateError(f"the poster cache writes under {PREFIX!r}, the lifecycle rule expires {POSTER_PREFIX!r}")
    if stage_app.api_role is None:
        raise TemplateError("the API handler needs its own Chalice-managed role for the poster cache's grant")
    bucket_arn = {"Fn::GetAtt": ["PosterBucket", "Arn"]}
    return {
        # Retain: a non-empty bucket would fail the stack's deletion; the rule below empties it.
        "PosterBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
                         "Properties": {
            **PRIVATE_BUCKET,
            "LifecycleConfiguration": {"Rules": [
                {"Id": "posters", "Status": "Enabled", "Prefix": POSTER_PREFIX, "ExpirationInDays": POSTER_EXPIRY_DAYS},
                {"Id": "incomplete-uploads", "Status": "Enabled",
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
            ]},
            "Tags": _tags(stage_app),
        }},
        "PosterBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "PosterBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [bucket_arn, {"Fn::Sub": "${PosterBucket.Arn}/*"}],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
        }},
        # Only the API function, only the posters' objects (ListBucket: a missing poster is then a
        # 404 to the cache's read, not a 403).
        "PosterCachePolicy": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "PosterCache",
            "Roles": [{"Ref": stage_app.api_role}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "ReadAndWritePosters", "Effect": "Allow", "Action": list(POSTER_ACTIONS),
                 "Resource": [{"Fn::Sub": "${PosterBucket.Arn}/" + POSTER_PREFIX + "*"}]},
                {"Sid": "SeeMissingPosters", "Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": [bucket_arn]},
            ]},
        }},
    }


# --- console hosting (optional) --------------------------------------------------------------

CONSOLE_CONDITION = "ConsoleHostingOn"
CONSOLE_PARAMETERS = {
    "ConsoleHosting": {
        "Type": "String", "Default": "false", "AllowedValues": ["false", "true"],
        "Description": "true: an S3 bucket and a CloudFront distribution for the merchant console's files "
                       "(chalicelib/console_static/; the app also serves them under /console/)"},
}
# AWS's managed CloudFront policies: cache by the origin's Cache-Control (the files say no-cache,
# so every view revalidates: no hashed names without a build step), and the usual security headers.
CLOUDFRONT_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CLOUDFRONT_SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"
PRIVATE_BUCKET = {  # encrypted, never public, no ACLs
    "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                                       "RestrictPublicBuckets": True},
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
}


def console_resources(stage_app: StageApp) -> dict[str, Any]:
    """The console's bucket (private, encrypted, TLS only) and its CloudFront distribution, which
    alone reads it (origin access control, the bucket policy names this distribution), each only
    when the ConsoleHosting parameter is true.

    Upload: write config.js naming the API (`export default { apiBase:
    "<ApiBaseUrl>" };`), then `aws s3 sync chalicelib/console_static/ s3://<ConsoleBucketName>/
    --cache-control no-cache`, and add the ConsoleUrl origin to the app's CORS_ALLOW_ORIGINS.
    CloudFront has no edge in mainland China: merchants there may prefer the app's /console/."""
    conditional = {"Condition": CONSOLE_CONDITION}
    bucket_arn = {"Fn::GetAtt": ["ConsoleBucket", "Arn"]}
    objects_arn = {"Fn::Sub": "${ConsoleBucket.Arn}/*"}
    return {
        # Not retained: its files are the repository's, uploaded again after a re-creation.
        "ConsoleBucket": {"Type": "AWS::S3::Bucket", **conditional, "Properties": {
            **PRIVATE_BUCKET, "Tags": _tags(stage_app)}},
        "ConsoleOriginAccessControl": {"Type": "AWS::CloudFront::OriginAccessControl", **conditional, "Properties": {
            "OriginAccessControlConfig": {
                "Name": {"Fn::Sub": f"{api_name(stage_app)}-console-${{AWS::Region}}"},
                "Description": f"{stage_app.app_name} ({stage_app.stage}): CloudFront reads the console's bucket",
                "OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4"}}},
        "ConsoleDistribution": {"Type": "AWS::CloudFront::Distribution", **conditional, "Properties": {
            "DistributionConfig": {
                "Comment": f"{stage_app.app_name} ({stage_app.stage}) merchant console",
                "Enabled": True, "HttpVersion": "http2and3", "IPV6Enabled": True, "PriceClass": "PriceClass_All",
                "DefaultRootObject": "index.html",
                "Origins": [{"Id": "console", "DomainName": {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]},
                             "S3OriginConfig": {"OriginAccessIdentity": ""},
                             "OriginAccessControlId": {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}}],
                "DefaultCacheBehavior": {"TargetOriginId": "console", "ViewerProtocolPolicy": "redirect-to-https",
                                         "AllowedMethods": ["GET", "HEAD"], "CachedMethods": ["GET", "HEAD"],
                                         "Compress": True, "CachePolicyId": CLOUDFRONT_CACHING_OPTIMIZED,
                                         "ResponseHeadersPolicyId": CLOUDFRONT_SECURITY_HEADERS},
            },
            "Tags": _tags(stage_app),
        }},
        "ConsoleBucketPolicy": {"Type": "AWS::S3::BucketPolicy", **conditional, "Properties": {
            "Bucket": {"Ref": "ConsoleBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "CloudFrontReadsTheConsole", "Effect": "Allow",
                 "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
                 "Resource": [objects_arn],
                 "Condition": {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": (
                     "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ConsoleDistribution}")}}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [bucket_arn, objects_arn], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]},
        }},
    }


# --- IAM policy -----------------------------------------------------------------------------

def _dynamodb_usage(models_by_class: dict[str, Any], source_dir: Path) -> tuple[set[str], set[str], bool]:
    """Scan the app's code for the DynamoDB calls beyond the base set: the optional actions used,
    the model classes scanned (`XRecord.scan(`), and whether something else is scanned or a
    whole table counted/described. `storage/schema.py` (table creation, run by `make tables`,
    never by a Lambda) is left out."""
    actions, scanned, other = set(), set(), False
    for path in sorted(source_dir.rglob("*.py")):
        if path.name == "schema.py" and path.parent.name == "storage":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern, action in OPTIONAL_DYNAMODB_ACTIONS.items():
            if re.search(pattern, text):
                actions.add(action)
        for receiver in re.findall(r"(\w+)\.scan\(", text):
            if receiver in models_by_class:
                scanned.add(receiver)
            else:
                other = True
        for receiver in re.findall(r"(\w+)\.(?:count|describe_table|exists)\(\)", text):
            if receiver in models_by_class:
                actions.add("dynamodb:DescribeTable")
    return actions, scanned, other


def _table_arn(name: str) -> str:
    # The policy file is static JSON, shared by `chalice deploy` and `chalice package`, so it
    # cannot name the partition, account or region; the table's own name pins the resource.
    # The package fills them in (package_policy).
    return f"arn:*:dynamodb:*:*:table/{name}"


# Services whose resources in the policy are the stack's own (or its stage's SSM parameters and
# log groups): in the package, their ARNs name this stack's region and account. KMS keys are left
# to any region and account (a customer managed key may live elsewhere; kms:ViaService limits
# their use to SSM).
PINNED_SERVICES = ("dynamodb", "sqs", "ssm", "logs")


def package_arn(arn: str) -> dict[str, str]:
    """A static policy ARN (`arn:*:<service>:*:*:<resource>`) as CloudFormation builds it."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "*":
        raise TemplateError(f"{arn!r} is not an ARN of the policy file's form arn:*:<service>:...")
    _, _, service, region, account, rest = parts
    if service in PINNED_SERVICES:
        if (region, account) != ("*", "*"):
            raise TemplateError(f"{arn!r}: the policy file names no region or account")
        region, account = "${AWS::Region}", "${AWS::AccountId}"
    return {"Fn::Sub": ":".join(["arn", "${AWS::Partition}", service, region, account, rest])}


def package_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy file with every ARN built by Fn::Sub (the form the package's roles carry)."""
    statements = []
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        statements.append({**statement, "Resource": [package_arn(arn) if arn != "*" else arn for arn in resources]})
    return {**policy, "Statement": statements}


def policy_document(stage_app: StageApp, models: tuple[Any, ...], queue_specs: tuple[Any, ...],
                    source_dir: Path) -> dict[str, Any]:
    by_class = {model.__name__: model for model in models}
    optional, scanned, scan_other = _dynamodb_usage(by_class, source_dir)
    table_arns = []
    for model in models:
        name = model.Meta.table_name
        table_arns.append(_table_arn(name))
        if model._indexes:
            table_arns.append(_table_arn(name) + "/index/*")
    statements: list[dict[str, Any]] = [{
        "Sid": "DynamoDBTables",
        "Effect": "Allow",
        "Action": sorted({*BASE_DYNAMODB_ACTIONS, *optional}),
        "Resource": table_arns,
    }]
    if scanned or scan_other:
        scan_arns = table_arns if scan_other else [_table_arn(by_class[c].Meta.table_name)
                                                   for c in sorted(scanned)]
        statements.append({"Sid": "DynamoDBScans", "Effect": "Allow", "Action": ["dynamodb:Scan"],
                           "Resource": scan_arns})
    streamed = [model.Meta.table_name for model in models if getattr(model.Meta, "stream_view_type", None)]
    if streamed:
        statements.append({"Sid": "DynamoDBStreams", "Effect": "Allow", "Action": list(STREAM_ACTIONS),
                           "Resource": [_table_arn(name) + "/stream/*" for name in streamed]})
    statements.append({
        "Sid": "SQSQueues",
        "Effect": "Allow",
        "Action": list(SQS_ACTIONS),
        # Only the work queues: SQS itself moves failed messages to the dead-letter queues.
        "Resource": [f"arn:*:sqs:*:*:{spec.name}" for spec in queue_specs],
    })
    statements.append({
        "Sid": "SQSDeadLetterDepth",
        "Effect": "Allow",
        "Action": list(DLQ_ACTIONS),
        "Resource": [f"arn:*:sqs:*:*:{spec.dead_letter_name}" for spec in queue_specs],
    })
    path = ssm_path(stage_app)
    statements.append({
        "Sid": "SSMParameters",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter"],
        "Resource": [f"arn:*:ssm:*:*:parameter{path}*"],
    })
    statements.append({
        # SecureString parameters: decrypting through SSM only. (The AWS managed key aws/ssm
        # already allows this by its key policy; this covers a customer managed key.)
        "Sid": "KMSDecryptThroughSSM",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": ["arn:*:kms:*:*:key/*"],
        "Condition": {"StringLike": {"kms:ViaService": ["ssm.*.amazonaws.com", "ssm.*.amazonaws.com.cn"]}},
    })
    log_group = f"arn:*:logs:*:*:log-group:/aws/lambda/{stage_app.app_name}-{stage_app.stage}"
    statements.append({
        # Every function is named <app>-<stage>[-<function>] (by `chalice deploy`, and by the
        # FunctionName this template sets), so the log groups are known in advance.
        "Sid": "FunctionLogs",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [log_group, f"{log_group}:*", f"{log_group}-*"],
    })
    return {"Version": "2012-10-17", "Statement": statements}


# --- the template ---------------------------------------------------------------------------

FUNCTIONS_POLICY = "FunctionsPolicy"  # the policy file in the package, on every function's role


def build(stage: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    """(merge template, IAM policy) for the stage."""
    stage_app = load_stage(stage, project_dir)
    check_stage(stage_app)
    from chalicelib.queues import ALL_QUEUES
    from chalicelib.storage.schema import ALL_MODELS

    resources: dict[str, Any] = {}
    for model in ALL_MODELS:
        resources[table_logical_id(table_base(model, stage_app.table_prefix))] = table_resource(model, stage_app)

    by_queue: dict[str, list[Consumer]] = {}
    for consumer in stage_app.consumers:
        by_queue.setdefault(consumer.queue_name, []).append(consumer)
    specs_by_name = {spec.name: spec for spec in ALL_QUEUES}
    unknown = sorted(set(by_queue) - set(specs_by_name))
    if unknown:
        raise TemplateError(f"SQS event sources on {unknown}, which are not in chalicelib.queues.ALL_QUEUES")
    for spec in ALL_QUEUES:
        if not spec.name.startswith(stage_app.table_prefix):
            raise TemplateError(f"queue {spec.name!r} is not under {stage_app.table_prefix!r}")
        resources.update(queue_resources(spec, by_queue.get(spec.name, []), stage_app))

    # Chalice points each SQS event source at arn:...:<queue name>; point it at the queue's ARN
    # instead (the same ARN, since the names match) so the mapping is created after the queue.
    for consumer in stage_app.consumers:
        queue_id, _ = queue_logical_ids(specs_by_name[consumer.queue_name].base)
        function = resources.setdefault(consumer.function_cfn_name, {"Properties": {}})
        function["Properties"].setdefault("Events", {})[consumer.event_cfn_name] = {
            "Properties": {"Queue": {"Fn::Sub": "${%s.Arn}" % queue_id}}}
    # Chalice renders each stream event source with the stand-in ARN the app was given; point it
    # at the table's stream instead (so the mapping also waits for the table).
    tables_by_name = {model.Meta.table_name: model for model in ALL_MODELS}
    for stream in stage_app.stream_consumers:
        model = tables_by_name.get(stream.table_name)
        if model is None or not getattr(model.Meta, "stream_view_type", None):
            raise TemplateError(f"{stream.event_cfn_name} reads the stream of {stream.table_name!r}, "
                                "which is not a table with a stream (Meta.stream_view_type) in ALL_MODELS")
        table_id = table_logical_id(table_base(model, stage_app.table_prefix))
        function = resources.setdefault(stream.function_cfn_name, {"Properties": {}})
        function["Properties"].setdefault("Events", {})[stream.event_cfn_name] = {
            "Properties": {"Stream": {"Fn::GetAtt": [table_id, "StreamArn"]}}}
    for function in stage_app.functions:
        resources.setdefault(function.cfn_name, {"Properties": {}})["Properties"]["FunctionName"] = \
            function.function_name

    # Chalice renders one role per function, each with its own inline copy of the policy file
    # (~12 KB of JSON each, most of the template's size: CloudFormation takes at most 1 MB). The
    # package instead writes the policy once, with real ARNs, in one AWS::IAM::Policy attached to
    # every role (the merge empties Chalice's Policies lists); each function waits for it, so no
    # event source mapping is created before its role may read the queue or stream.
    policy = policy_document(stage_app, ALL_MODELS, ALL_QUEUES, project_dir / "chalicelib")
    if not stage_app.roles:
        raise TemplateError("Chalice renders no IAM role for the stage's functions")
    for role in stage_app.roles:
        resources.setdefault(role, {"Properties": {}})["Properties"]["Policies"] = []
    resources[FUNCTIONS_POLICY] = {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": FUNCTIONS_POLICY, "PolicyDocument": package_policy(policy),
        "Roles": [{"Ref": role} for role in stage_app.roles]}}
    for function in stage_app.functions:
        resources.setdefault(function.cfn_name, {"Properties": {}})["DependsOn"] = [FUNCTIONS_POLICY]

    resources.update(archive_resources(stage_app))
    archive_feed_environment(resources, stage_app)
    resources.update(poster_resources(stage_app))
    resources.update(console_resources(stage_app))
    resources.setdefault("APIHandler", {"Properties": {}})["Properties"].setdefault("Environment", {}).setdefault(
        "Variables", {})["POSTER_BUCKET"] = {"Ref": "PosterBucket"}

    name = api_name(stage_app)
    resources["RestAPI"] = {"Properties": {"Name": name, "DefinitionBody": {"info": {"title": name}}}}

    resources["AlarmTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {
        "DisplayName": f"{name} alarms", "Tags": _tags(stage_app)}}
    resources["AlarmEmailSubscription"] = {"Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail",
                                           "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                                          "Endpoint": {"Ref": "AlarmEmail"}}}
    for spec in ALL_QUEUES:
        _, dlq_id = queue_logical_ids(spec.base)
        resources[dlq_id + "Alarm"] = alarm(
            f"{spec.dead_letter_name}-not-empty",
            f"Messages failed {spec.max_receive_count} times on {spec.name} and were dead-lettered; "
            "see docs/operations.md to inspect and redrive them.",
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}], "Maximum")
    resources["Api5xxAlarm"] = alarm(
        f"{name}-api-5xx",
        f"API Gateway answered 5XX on {name} stage {stage_app.api_gateway_stage} "
        "(app errors, Lambda failures or timeouts, and 502 when WeChat fails).",
        "AWS/ApiGateway", "5XXError",
        [{"Name": "ApiName", "Value": name}, {"Name": "Stage", "Value": stage_app.api_gateway_stage}], "Sum")

    base_url = "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + stage_app.api_gateway_stage
    outputs: dict[str, Any] = {
        "AnalyticsArchiveBucketName": {"Condition": ARCHIVE_CONDITION, "Value": {"Ref": "AnalyticsArchiveBucket"}},
        "AnalyticsAthenaWorkGroupName": {"Condition": ARCHIVE_CONDITION, "Value": {"Ref": "AnalyticsAthenaWorkGroup"}},
        "ApiBaseUrl": {"Description": "The API's execute-api base URL (WECHAT_PAY_NOTIFY_URL when no custom "
                                      "domain fronts the API)",
                       "Value": {"Fn::Sub": base_url}},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        "PosterBucketName": {"Description": "The share posters' cache (POSTER_BUCKET of the API function)",
                             "Value": {"Ref": "PosterBucket"}},
        "ConsoleBucketName": {"Condition": CONSOLE_CONDITION, "Description": "Upload the console's files here",
                              "Value": {"Ref": "ConsoleBucket"}},
        "ConsoleUrl": {"Condition": CONSOLE_CONDITION, "Description": "The merchant console on CloudFront",
                       "Value": {"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}},
    }
    for output, path in WECHAT_PAY_CALLBACKS.items():
        outputs[output] = {"Value": {"Fn::Sub": base_url + path}}

    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{stage_app.app_name} ({stage_app.stage}): API, workers, tables, queues and alarms",
        "Parameters": {"AlarmEmail": {
            "Type": "String", "Default": "",
            "Description": "E-mail address subscribed to the alarms (empty: no subscription)",
            "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"}, **ARCHIVE_PARAMETERS, **CONSOLE_PARAMETERS},
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
                       ARCHIVE_CONDITION: {"Fn::Equals": [{"Ref": "AnalyticsArchive"}, "true"]},
                       CONSOLE_CONDITION: {"Fn::Equals": [{"Ref": "ConsoleHosting"}, "true"]}},
        "Resources": resources,
        "Outputs": outputs,
    }
    return template, policy


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build_template", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", default="build/infra.json", help="the merge template to write")
    parser.add_argument("--policy-out", help="where to write the IAM policy "
                        "(default .chalice/policy-<stage>.json, the stage's iam_policy_file)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if the stage's policy file is not up to date")
    args = parser.parse_args(argv)
    try:
        template, policy = build(args.stage)
    except TemplateError as error:
        print(f"build_template: {error}", file=sys.stderr)
        return 2
    policy_path = Path(args.policy_out) if args.policy_out else PROJECT_DIR / ".chalice" / policy_file_name(args.stage)
    if args.check:
        current = policy_path.read_text(encoding="utf-8") if policy_path.exists() else ""
        if current != dump(policy):
            print(f"build_template: {policy_path} is not up to date; run "
                  f"python -m infra.build_template --stage {args.stage}", file=sys.stderr)
            return 1
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(template), encoding="utf-8")
    policy_path.parent.mkdir(parents=True, exist_ok=True)
    if not policy_path.exists() or policy_path.read_text(encoding="utf-8") != dump(policy):
        policy_path.write_text(dump(policy), encoding="utf-8")
    print(f"wrote {out} ({len(template['Resources'])} resources) and {policy_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
