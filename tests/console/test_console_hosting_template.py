"""The package's optional console hosting (infra/build_template.py): off by default, all of it on
one condition, a private bucket that only this stack's CloudFront distribution reads. cfn-lint
checks the whole package in tests/infra."""
from __future__ import annotations

import json
from types import SimpleNamespace

from infra.build_template import CONSOLE_CONDITION, CONSOLE_PARAMETERS, console_resources

STAGE_APP = SimpleNamespace(app_name="wechat-store", stage="prod")


def test_console_hosting_is_off_by_default_and_every_resource_hangs_on_its_condition():
    parameter = CONSOLE_PARAMETERS["ConsoleHosting"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["false", "true"])
    resources = console_resources(STAGE_APP)
    assert set(resources) == {"ConsoleBucket", "ConsoleOriginAccessControl", "ConsoleDistribution", "ConsoleBucketPolicy"}
    assert {resource["Condition"] for resource in resources.values()} == {CONSOLE_CONDITION}


def test_the_console_bucket_is_private_and_only_its_distribution_reads_it_over_tls():
    resources = console_resources(STAGE_APP)
    blocked = resources["ConsoleBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(blocked.values()) and len(blocked) == 4
    statements = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allow) == 1 and allow[0]["Action"] == "s3:GetObject"
    assert allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"] == {"Fn::Sub": (
        "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ConsoleDistribution}")}
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    config = resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    assert config["Origins"][0]["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert "arn:aws:" not in json.dumps(resources)  # every ARN names its partition
