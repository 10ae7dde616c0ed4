"""The package wires the analytics stream consumers to their tables' streams, and the policy
lets the functions read exactly those streams and the dead-letter queues' depth (the
generator only, in a fresh process: ~3 s; test_package.py runs `chalice package` and cfn-lint)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.infra.test_package import ROOT, _env


def test_each_stream_consumer_reads_its_tables_stream_and_the_policy_allows_only_those(tmp_path):
    done = subprocess.run([sys.executable, "-m", "infra.build_template", "--stage", "prod",
                           "--out", str(tmp_path / "infra.json"), "--policy-out", str(tmp_path / "policy.json")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resources = json.loads((tmp_path / "infra.json").read_text())["Resources"]
    streams = {name: event["Properties"]["Stream"] for name, resource in resources.items()
               for event in resource.get("Properties", {}).get("Events", {}).values()
               if "Stream" in event.get("Properties", {})}
    assert streams == {"CountOrderChanges": {"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
                       "CountTrackingEvents": {"Fn::GetAtt": ["EventsTable", "StreamArn"]}}
    assert resources["OrdersTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert resources["EventsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert resources["EventsTable"]["Properties"]["TimeToLiveSpecification"]["Enabled"] is True
    statements = {s["Sid"]: s for s in json.loads((tmp_path / "policy.json").read_text())["Statement"]}
    assert statements["DynamoDBStreams"]["Resource"] == ["arn:*:dynamodb:*:*:table/prod-orders/stream/*",
                                                         "arn:*:dynamodb:*:*:table/prod-events/stream/*"]
    assert all(arn.endswith("-dlq") for arn in statements["SQSDeadLetterDepth"]["Resource"])
    assert statements["SQSDeadLetterDepth"]["Action"] == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    assert "arn:*:dynamodb:*:*:table/prod-analytics_customers" in statements["DynamoDBScans"]["Resource"]
