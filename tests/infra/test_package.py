"""The CloudFormation package (`make package`): generated from the code, linted, least privilege.

Runs the real thing, offline and without AWS: `python -m infra.build_template` and
`chalice package --merge-template` for the prod stage (in subprocesses: table and queue names
are fixed when chalicelib is imported, and this process imported it with the test prefix),
then checks the merged SAM template and runs cfn-lint on it. ~15-30 s, most of it Chalice
zipping the deployment package (its dependency cache is .chalice/deployments/).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.queues import ALL_QUEUES
from chalicelib.settings import table_prefix_from_env
from chalicelib.storage.schema import ALL_MODELS

ROOT = Path(__file__).resolve().parents[2]
STAGE = "prod"
PREFIX = "prod-"
APP = "wechat-store"
# The environment this process runs in is the tests' (TABLE_PREFIX=test-, secrets, a dead AWS
# endpoint): none of it may leak into the package.
_APP_ENV = re.compile(r"^(AWS_|WECHAT_|TABLE_PREFIX|STAGE|ADMIN_|AUTH_TOKEN_|PAY_|AUTO_CONFIRM|CORS_)")


def _env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not _APP_ENV.match(name)}
    env["AWS_DEFAULT_REGION"] = "us-east-1"  # chalice package wants one; the template uses ${AWS::Region}
    return env


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _run(args: list[str], timeout: int = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _generate(stage: str, out_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "infra.build_template", "--stage", stage,
                 "--out", str(out_dir / "infra.json"), "--policy-out", str(out_dir / f"policy-{stage}.json"),
                 *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(merge template, generated policy, merged SAM template, its path) for prod."""
    out = tmp_path_factory.mktemp("package")
    generated = _generate(STAGE, out)
    assert generated.returncode == 0, generated.stderr
    font = _run([sys.executable, "-m", "infra.poster_font"], timeout=300)  # as `make package`: into vendor/
    assert font.returncode == 0, font.stdout + font.stderr
    packaged = _run([_tool("chalice"), "package", "--stage", STAGE,
                     "--merge-template", str(out / "infra.json"), str(out / "package")], timeout=300)
    assert packaged.returncode == 0, (
        "chalice package failed (without a registry it needs its cached dependencies in "
        f".chalice/deployments/):\n{packaged.stdout}\n{packaged.stderr}")
    sam_path = out / "package" / "sam.json"
    return (json.loads((out / "infra.json").read_text()), json.loads((out / f"policy-{STAGE}.json").read_text()),
            json.loads(sam_path.read_text()), sam_path)


@pytest.fixture(scope="module")
def sam(built):
    return built[2]


def _of_type(template: dict, type_: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == type_}


def _base(model) -> str:
    return model.Meta.table_name[len(table_prefix_from_env()):]


def _tables_by_name(template: dict) -> dict[str, dict]:
    return {r["Properties"]["TableName"]: r for r in _of_type(template, "AWS::DynamoDB::Table").values()}


def _queues_by_name(template: dict) -> dict[str, tuple[str, dict]]:
    return {r["Properties"]["QueueName"]: (name, r) for name, r in _of_type(template, "AWS::SQS::Queue").items()}


# --- tables ---------------------------------------------------------------------------------

def test_one_table_per_model_with_point_in_time_recovery(sam):
    tables = _tables_by_name(sam)
    assert set(tables) == {PREFIX + _base(model) for model in ALL_MODELS}
    for name, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"] == {"SSEEnabled": True}, name
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", name


def test_key_schemas_match_the_models(sam):
    tables = _tables_by_name(sam)
    for model in ALL_MODELS:
        props = tables[PREFIX + _base(model)]["Properties"]
        hash_key = model._hash_key_attribute().attr_name
        range_key = model._range_key_attribute().attr_name if model._range_key_attribute() else None
        expected = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            expected.append({"AttributeName": range_key, "KeyType": "RANGE"})
        assert props["KeySchema"] == expected, model.__name__


def test_ttl_exactly_where_the_model_has_a_ttl_attribute(sam):
    tables = _tables_by_name(sam)
    with_ttl = [model for model in ALL_MODELS if model._ttl_attribute() is not None]
    assert with_ttl, "the sessions, credentials and idempotency models expire by TTL"
    for model in ALL_MODELS:
        props = tables[PREFIX + _base(model)]["Properties"]
        ttl = model._ttl_attribute()
        if ttl is None:
            assert "TimeToLiveSpecification" not in props, model.__name__
        else:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl.attr_name, "Enabled": True}


def test_every_index_declared_on_the_models(sam):
    tables = _tables_by_name(sam)
    for model in ALL_MODELS:
        props = tables[PREFIX + _base(model)]["Properties"]
        schema = model._get_schema()
        for kind, key in (("global_secondary_indexes", "GlobalSecondaryIndexes"),
                          ("local_secondary_indexes", "LocalSecondaryIndexes")):
            declared = {i["index_name"]: (i["projection"]["ProjectionType"],
                                          sorted((k["KeyType"], k["AttributeName"]) for k in i["key_schema"]))
                        for i in schema[kind]}
            in_template = {i["IndexName"]: (i["Projection"]["ProjectionType"],
                                            sorted((k["KeyType"], k["AttributeName"]) for k in i["KeySchema"]))
                           for i in props.get(key, [])}
            assert in_template == declared, (model.__name__, key)
            for index in props.get(key, []):
                assert index["KeySchema"][0]["KeyType"] == "HASH"
        defined = {a["AttributeName"] for a in props["AttributeDefinitions"]}
        used = {k["AttributeName"] for k in props["KeySchema"]}
        for index in props.get("GlobalSecondaryIndexes", []) + props.get("LocalSecondaryIndexes", []):
            used |= {k["AttributeName"] for k in index["KeySchema"]}
        assert defined == used, model.__name__  # CloudFormation refuses unused definitions


# --- queues ---------------------------------------------------------------------------------

def test_every_queue_has_a_dead_letter_queue_and_redrive(sam):
    queues = _queues_by_name(sam)
    expected = {PREFIX + spec.base for spec in ALL_QUEUES} | {PREFIX + spec.base + "-dlq" for spec in ALL_QUEUES}
    assert set(queues) == expected
    logical_to_name = {logical: name for name, (logical, _) in queues.items()}
    for spec in ALL_QUEUES:
        _, queue = queues[PREFIX + spec.base]
        _, dlq = queues[PREFIX + spec.base + "-dlq"]
        redrive = queue["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == spec.max_receive_count
        target, attribute = redrive["deadLetterTargetArn"]["Fn::GetAtt"]
        assert (logical_to_name[target], attribute) == (PREFIX + spec.base + "-dlq", "Arn")
        assert "RedrivePolicy" not in dlq["Properties"]
        # A dead-lettered message keeps its first enqueue time: the DLQ must keep it longer.
        assert dlq["Properties"]["MessageRetentionPeriod"] > queue["Properties"]["MessageRetentionPeriod"]
        assert queue["Properties"]["SqsManagedSseEnabled"] and dlq["Properties"]["SqsManagedSseEnabled"]


def test_sqs_event_sources_use_the_stack_queues_with_enough_visibility(sam):
    queues = _queues_by_name(sam)
    by_logical = {logical: r for logical, r in queues.values()}
    consumed = set()
    for name, function in _of_type(sam, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            match = re.fullmatch(r"\$\{(\w+)\.Arn\}", event["Properties"]["Queue"].get("Fn::Sub", ""))
            assert match and match.group(1) in by_logical, (name, event["Properties"]["Queue"])
            queue = by_logical[match.group(1)]["Properties"]
            assert not queue["QueueName"].endswith("-dlq")
            consumed.add(queue["QueueName"])
            window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
            needed = 6 * function["Properties"]["Timeout"] + window
            assert queue["VisibilityTimeout"] >= needed, (name, queue["VisibilityTimeout"], needed)
    assert consumed == {PREFIX + spec.base for spec in ALL_QUEUES}, "every queue has a consumer"


def test_shipping_sweep_waits_longer_than_a_redelivery(sam):
    """The sweep re-queues uploads idle for SWEEP_IDLE_AFTER on the assumption that by then SQS
    has given up on the message; the deployed visibility timeout must stay below it."""
    from chalicelib.queues import SHIPPING_UPLOADS
    from chalicelib.services.shipping_info import SWEEP_IDLE_AFTER

    _, queue = _queues_by_name(sam)[PREFIX + SHIPPING_UPLOADS.base]
    assert queue["Properties"]["VisibilityTimeout"] < SWEEP_IDLE_AFTER.total_seconds()


# --- alarms ---------------------------------------------------------------------------------

def test_an_alarm_on_every_dead_letter_queue(sam):
    queues = _queues_by_name(sam)
    alarms = _of_type(sam, "AWS::CloudWatch::Alarm").values()
    watched = {}
    for alarm in alarms:
        props = alarm["Properties"]
        if props["Namespace"] != "AWS/SQS":
            continue
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        [dimension] = props["Dimensions"]
        logical, attribute = dimension["Value"]["Fn::GetAtt"]
        assert (dimension["Name"], attribute) == ("QueueName", "QueueName")
        watched[logical] = alarm
    assert {queues[PREFIX + spec.base + "-dlq"][0] for spec in ALL_QUEUES} == set(watched)


def test_a_5xx_alarm_on_this_stages_api(sam):
    api = sam["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api"
    name = api["Properties"]["Name"]
    assert name == api["Properties"]["DefinitionBody"]["info"]["title"] == f"{APP}-{STAGE}"
    [alarm] = [a for a in _of_type(sam, "AWS::CloudWatch::Alarm").values()
               if a["Properties"]["Namespace"] == "AWS/ApiGateway"]
    props = alarm["Properties"]
    assert props["MetricName"] == "5XXError"
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {
        "ApiName": name, "Stage": api["Properties"]["StageName"]}
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert sam["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert "AlarmEmail" in sam["Parameters"]


def test_outputs_give_the_wechat_pay_callback_urls(sam):
    outputs = sam["Outputs"]
    assert outputs["WeChatPayV3NotifyUrl"]["Value"]["Fn::Sub"].endswith("/api/v1/payments/wechat/v3/notify")
    assert outputs["WeChatPayV2NotifyUrl"]["Value"]["Fn::Sub"].endswith("/api/v1/payments/wechat/notify")
    assert outputs["EndpointURL"]  # Chalice's own


# --- IAM ------------------------------------------------------------------------------------

def _committed_policy(stage: str) -> dict:
    return json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())


def test_committed_policy_files_are_up_to_date(built, tmp_path):
    _, generated, _, _ = built
    assert _committed_policy(STAGE) == generated, "run: python -m infra.build_template --stage prod"
    dev = _generate("dev", tmp_path)
    assert dev.returncode == 0, dev.stderr
    assert _committed_policy("dev") == json.loads((tmp_path / "policy-dev.json").read_text()), \
        "run: python -m infra.build_template --stage dev"


def test_config_uses_the_policy_files_for_deployed_stages_only():
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    for stage in ("dev", "prod"):
        assert stages[stage]["autogen_policy"] is False
        assert stages[stage]["iam_policy_file"] == f"policy-{stage}.json"
    assert "iam_policy_file" not in stages["local"] and "autogen_policy" not in stages["local"]


def test_every_function_role_carries_the_policy_file_with_its_arns_built_by_cloudformation(sam):
    from infra.build_template import FUNCTIONS_POLICY, package_policy

    # The archive's delivery role is Firehose's, not a function's (test_analytics_archive_* below).
    roles = {name: role for name, role in _of_type(sam, "AWS::IAM::Role").items()
             if name != "AnalyticsArchiveDeliveryRole"}
    functions = _of_type(sam, "AWS::Serverless::Function")
    assert functions and len(roles) == len(functions)
    # Written once, on every role (not Chalice's inline copy per role: 28 copies made the template
    # bigger than CloudFormation's 1 MB), and every function waits for it.
    policy = sam["Resources"][FUNCTIONS_POLICY]
    assert policy["Type"] == "AWS::IAM::Policy"
    assert policy["Properties"]["PolicyDocument"] == package_policy(_committed_policy(STAGE))
    assert sorted(ref["Ref"] for ref in policy["Properties"]["Roles"]) == sorted(roles)
    for name, role in roles.items():
        assert role["Properties"]["Policies"] == [], name
    for name, function in functions.items():
        assert function["Properties"]["Role"]["Fn::GetAtt"][0] in roles
        assert function["DependsOn"] == [FUNCTIONS_POLICY], name


def test_the_package_is_well_under_cloudformations_template_size_limit(built):
    # 1,000,000 bytes through S3 (cfn-lint E1002 checks the limit itself); keep room to grow.
    # `aws cloudformation package` re-serializes sam.json (YAML, or JSON indented by 4 with
    # --use-json), so the room is in the content, not in how sam.json is spaced.
    *_, sam_path = built
    assert sam_path.stat().st_size < 700_000


def _strings(value, path: str = "", key: str = ""):
    """(path, string, what holds it: a key, or key[index] in a list) for every string in a template."""
    if isinstance(value, str):
        yield path, value, key
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, f"{path}/{name}", name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]", f"{key}[{index}]")


_ARN_START = re.compile(r"(?<![A-Za-z0-9])arn:")


def test_every_arn_in_the_package_names_its_partition_with_aws_partition(sam):
    # cfn-lint 1.34 refuses `arn:*:dynamodb:...` (E3510), and a literal `arn:aws:` would not
    # deploy to aws-cn or aws-us-gov: every ARN is `Fn::Sub` of `arn:${AWS::Partition}:...`.
    found = 0
    for path, text, key in _strings(sam):
        for match in _ARN_START.finditer(text):
            found += 1
            assert key in ("Fn::Sub", "Fn::Sub[0]"), (path, text)  # Fn::Sub's string or [string, variables]
            assert text[match.end():].startswith("${AWS::Partition}:"), (path, text)
    assert found > 100  # the roles' policies, Chalice's API permissions and integrations


def test_the_stacks_own_resources_are_pinned_to_its_region_and_account(sam):
    from infra.build_template import FUNCTIONS_POLICY

    for statement in sam["Resources"][FUNCTIONS_POLICY]["Properties"]["PolicyDocument"]["Statement"]:
        for resource in statement["Resource"]:
            arn = resource["Fn::Sub"]
            service = arn.removeprefix("arn:${AWS::Partition}:").partition(":")[0]
            if service == "kms":  # the key SSM decrypts with may be anywhere; kms:ViaService limits it
                assert arn == "arn:${AWS::Partition}:kms:*:*:key/*"
            else:
                assert service in ("dynamodb", "sqs", "ssm", "logs"), arn
                assert arn.startswith(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"), arn


@pytest.mark.parametrize("arn, expected", [
    ("arn:*:dynamodb:*:*:table/prod-users", "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/prod-users"),
    ("arn:*:dynamodb:*:*:table/prod-orders/index/*",
     "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/prod-orders/index/*"),
    ("arn:*:ssm:*:*:parameter/wechat-store/prod/*",
     "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/wechat-store/prod/*"),
    ("arn:*:logs:*:*:log-group:/aws/lambda/x:*", "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/x:*"),
    ("arn:*:kms:*:*:key/*", "arn:${AWS::Partition}:kms:*:*:key/*"),
])
def test_package_arn_fills_in_the_partition_and_for_the_stacks_resources_region_and_account(arn, expected):
    from infra.build_template import package_arn

    assert package_arn(arn) == {"Fn::Sub": expected}


@pytest.mark.parametrize("arn", ["arn:aws:dynamodb:*:*:table/x", "arn:*:dynamodb:us-east-1:*:table/x", "table/x"])
def test_package_arn_refuses_an_arn_not_in_the_policy_files_form(arn):
    from infra.build_template import TemplateError, package_arn

    with pytest.raises(TemplateError):
        package_arn(arn)


def _statements(policy: dict):
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        yield statement, actions, resources


def test_policy_grants_no_wildcard_on_dynamodb_or_sqs():
    policy = _committed_policy(STAGE)
    tables = {PREFIX + _base(model) for model in ALL_MODELS}
    queues = {PREFIX + spec.base for spec in ALL_QUEUES}
    for statement, actions, resources in _statements(policy):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in actions:
            service, _, name = action.partition(":")
            assert "*" not in name and action != "*", action
            if service in ("dynamodb", "sqs"):
                assert {a.partition(":")[0] for a in actions} == {service}, "one service per statement"
        services = {a.partition(":")[0] for a in actions}
        if "dynamodb" in services:
            for resource in resources:
                match = re.fullmatch(r"arn:\*:dynamodb:\*:\*:table/([\w.-]+)(/index/\*|/stream/\*)?", resource)
                assert match and match.group(1) in tables, resource
        if "sqs" in services:
            for resource in resources:
                match = re.fullmatch(r"arn:\*:sqs:\*:\*:([\w-]+)", resource)
                dead_letters = {name + "-dlq" for name in queues} if statement["Sid"] == "SQSDeadLetterDepth" else set()
                assert match and match.group(1) in queues | dead_letters, resource
        if "ssm" in services:
            assert resources == [f"arn:*:ssm:*:*:parameter/{APP}/{STAGE}/*"]
        if "kms" in services:
            assert statement["Condition"]["StringLike"]["kms:ViaService"]
        if "logs" in services:
            assert all(f":log-group:/aws/lambda/{APP}-{STAGE}" in r for r in resources)


def test_functions_are_named_so_their_log_groups_are_in_the_policy(sam):
    for name, function in _of_type(sam, "AWS::Serverless::Function").items():
        function_name = function["Properties"]["FunctionName"]
        assert function_name == f"{APP}-{STAGE}" or function_name.startswith(f"{APP}-{STAGE}-"), name
        assert len(function_name) <= 64


def _code_outside_table_creation() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "chalicelib").rglob("*.py"))
                     if p.relative_to(ROOT).as_posix() != "chalicelib/storage/schema.py")


def test_scan_and_describe_granted_only_where_the_code_uses_them():
    policy = _committed_policy(STAGE)
    code = _code_outside_table_creation()
    scans = [(statement, resources) for statement, actions, resources in _statements(policy)
             if "dynamodb:Scan" in actions]
    scanned_models = set(re.findall(r"(\w+)\.scan\(", code))
    if not scanned_models:
        assert not scans
    else:
        [(_, resources)] = scans
        by_class = {model.__name__: model for model in ALL_MODELS}
        if scanned_models <= set(by_class):
            assert sorted(resources) == sorted(f"arn:*:dynamodb:*:*:table/{PREFIX}{_base(by_class[c])}"
                                               for c in scanned_models)
    described = re.search(r"\.(count|describe_table)\(\)", code)
    granted = any("dynamodb:DescribeTable" in actions for _, actions, _ in _statements(policy))
    assert granted == bool(described)


def test_a_stage_with_plain_text_secrets_is_refused(tmp_path):
    refused = _generate("local", tmp_path)
    assert refused.returncode == 2
    assert "plain text" in refused.stderr
    assert not (tmp_path / "infra.json").exists()


# --- analytics archive (optional) ------------------------------------------------------------

ARCHIVE_RESOURCES = {"AnalyticsArchiveBucket", "AnalyticsArchiveBucketPolicy", "AnalyticsGlueDatabase",
                     "AnalyticsGlueTable", "AnalyticsArchiveLogGroup", "AnalyticsArchiveLogStream",
                     "AnalyticsArchiveDeliveryRole", "AnalyticsDeliveryStream", "AnalyticsArchiveFeedPolicy",
                     "AnalyticsAthenaWorkGroup"}


def _archive(sam) -> dict[str, dict]:
    return {name: r for name, r in sam["Resources"].items() if r.get("Condition") == "AnalyticsArchiveOn"}


def test_analytics_archive_is_off_by_default_and_all_of_it_hangs_on_one_condition(sam):
    parameter = sam["Parameters"]["AnalyticsArchive"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["false", "true"])
    assert sam["Conditions"]["AnalyticsArchiveOn"] == {"Fn::Equals": [{"Ref": "AnalyticsArchive"}, "true"]}
    archive = _archive(sam)
    assert ARCHIVE_RESOURCES <= set(archive)
    assert set(archive) - ARCHIVE_RESOURCES == {n for n in archive if n.startswith("AnalyticsQuery")}
    # Nothing else in the package names an archive resource except through the same condition.
    for name, resource in sam["Resources"].items():
        if name in archive:
            continue
        for path, text, key in _strings(resource):
            if text in archive and key in ("Ref", "Fn::GetAtt[0]"):
                assert "Fn::If" in path and "AnalyticsArchiveOn" in json.dumps(resource), (name, path)


def test_analytics_archive_bucket_is_encrypted_private_expiring_and_tls_only(sam):
    archive = _archive(sam)
    bucket = archive["AnalyticsArchiveBucket"]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["events"]["ExpirationInDays"] == {"Ref": "AnalyticsArchiveRetentionDays"}
    assert rules["errors"]["ExpirationInDays"] and rules["athena-results"]["ExpirationInDays"]
    assert rules["incomplete-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7
    [deny] = archive["AnalyticsArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_analytics_archive_glue_table_is_the_apps_row_schema_and_firehose_converts_to_it(sam):
    from chalicelib.analytics_archive import COLUMNS, PARTITION_KEY

    archive = _archive(sam)
    table = archive["AnalyticsGlueTable"]["Properties"]["TableInput"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == list(COLUMNS)
    assert table["PartitionKeys"] == [{"Name": PARTITION_KEY[0], "Type": PARTITION_KEY[1]}]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["Parameters"]["projection.enabled"] == "true"
    destination = archive["AnalyticsDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == ({"Ref": "AnalyticsGlueDatabase"},
                                                             {"Ref": "AnalyticsGlueTable"})
    # Firehose writes where the table's partition projection looks.
    template = table["Parameters"]["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${AnalyticsArchiveBucket}/" + destination["Prefix"].replace(
        "!{timestamp:yyyy-MM-dd}", "${!dt}")
    assert destination["BufferingHints"]["SizeInMBs"] >= 64  # Firehose's minimum with conversion
    assert archive["AnalyticsDeliveryStream"]["Properties"]["DeliveryStreamEncryptionConfigurationInput"]


def test_analytics_archive_put_is_granted_only_with_it_only_to_the_stream_consumers_only_on_its_stream(sam):
    archive = _archive(sam)
    feed = archive["AnalyticsArchiveFeedPolicy"]["Properties"]
    [statement] = feed["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["firehose:PutRecordBatch"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["AnalyticsDeliveryStream", "Arn"]}]
    streamed = {name for name, f in _of_type(sam, "AWS::Serverless::Function").items()
                if any(e["Type"] == "DynamoDB" for e in f["Properties"].get("Events", {}).values())}
    assert streamed == {"CountOrderChanges", "CountTrackingEvents"}
    functions = _of_type(sam, "AWS::Serverless::Function")
    assert feed["Roles"] == [{"Ref": functions[name]["Properties"]["Role"]["Fn::GetAtt"][0]}
                             for name in sorted(streamed)]
    for name, function in functions.items():
        variable = function["Properties"]["Environment"]["Variables"].get("ANALYTICS_FIREHOSE_STREAM")
        if name in streamed:
            assert variable == {"Fn::If": ["AnalyticsArchiveOn", {"Ref": "AnalyticsDeliveryStream"},
                                           {"Ref": "AWS::NoValue"}]}
        else:
            assert variable is None, name
    # Neither the policy file (shared with `chalice deploy`) nor any function role names Firehose.
    assert "firehose" not in json.dumps(_committed_policy(STAGE))
    for name, role in _of_type(sam, "AWS::IAM::Role").items():
        if name != "AnalyticsArchiveDeliveryRole":
            assert "firehose" not in json.dumps(role["Properties"]["Policies"]), name
    trust = archive["AnalyticsArchiveDeliveryRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "firehose.amazonaws.com"}]
    [delivery] = archive["AnalyticsArchiveDeliveryRole"]["Properties"]["Policies"]
    for statement in delivery["PolicyDocument"]["Statement"]:
        assert "*" not in statement["Resource"] and all("*" not in a.partition(":")[2] for a in statement["Action"])


def test_analytics_archive_queries_are_in_the_package_and_the_docs_word_for_word(sam):
    from infra.build_template import ATHENA_QUERIES

    named = {r["Properties"]["Name"]: r["Properties"] for r in _archive(sam).values()
             if r["Type"] == "AWS::Athena::NamedQuery"}
    assert set(named) == set(ATHENA_QUERIES) >= {"daily-gmv", "funnel", "repurchase-by-cohort"}
    docs = (ROOT / "docs" / "analytics.md").read_text(encoding="utf-8")
    for name, (_, sql) in ATHENA_QUERIES.items():
        assert named[name]["QueryString"] == sql
        assert named[name]["Database"] == {"Ref": "AnalyticsGlueDatabase"}
        assert f"```sql\n-- {name}\n{sql}\n```" in docs, f"docs/analytics.md: query {name} differs"


# --- cfn-lint -------------------------------------------------------------------------------

def test_cfn_lint_passes_on_the_merged_package(built):
    *_, sam_path = built
    linted = _run([_tool("cfn-lint"), "--", str(sam_path)])
    assert linted.returncode == 0, linted.stdout + linted.stderr


# --- share posters ----------------------------------------------------------------------------

def test_the_zip_carries_the_posters_font_cut_to_gb2312_not_the_full_collection(built):
    from chalicelib.services.poster_render import SUBSET_FONT

    *_, sam_path = built
    with zipfile.ZipFile(sam_path.with_name("deployment.zip")) as archive:
        entries = {entry.filename: entry for entry in archive.infolist()}
    font = entries[f"poster_fonts/{SUBSET_FONT.name}"]  # where poster_render looks, beside chalicelib/
    assert "chalicelib/services/poster_render.py" in entries
    assert 2_000_000 < font.file_size < 4_000_000
    assert (font.external_attr >> 16) & 0o444 == 0o444  # readable by Lambda's user
    assert not [name for name in entries if name.startswith("manimgx_fonts_cjk") or name.endswith(".ttc")]
    assert sum(entry.file_size for entry in entries.values()) < 70_000_000  # unzipped; Lambda allows 250 MB


def test_the_poster_cache_is_a_private_expiring_bucket_only_the_api_may_use(sam):
    from infra.build_template import POSTER_EXPIRY_DAYS

    resources = sam["Resources"]
    bucket = resources["PosterBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    [expiry] = [rule for rule in bucket["LifecycleConfiguration"]["Rules"] if rule["Id"] == "posters"]
    assert expiry == {"Id": "posters", "Status": "Enabled", "Prefix": "posters/", "ExpirationInDays": POSTER_EXPIRY_DAYS}
    [deny] = resources["PosterBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    grant = resources["PosterCachePolicy"]["Properties"]
    assert grant["Roles"] == [{"Ref": "ApiHandlerRole"}]
    statements = {s["Sid"]: s for s in grant["PolicyDocument"]["Statement"]}
    assert statements["ReadAndWritePosters"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert statements["ReadAndWritePosters"]["Resource"] == [{"Fn::Sub": "${PosterBucket.Arn}/posters/*"}]
    assert statements["SeeMissingPosters"]["Action"] == ["s3:ListBucket"]
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["POSTER_BUCKET"] == {"Ref": "PosterBucket"}
    # The policy file (shared with `chalice deploy`) names no bucket.
    assert "s3:" not in json.dumps(_committed_policy(STAGE))
