"""`python -m infra.first_admin --stage prod` against moto's server (standing in for the deployed
stack's tables and SSM): the first admin comes from the stage's SSM parameter, once."""
from __future__ import annotations

import sys

import boto3
import pytest

from local.processes import free_port
from tests.infra.test_package import _env, _run


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_first_admin_is_created_from_the_stage_ssm_parameters(moto_server):
    dynamodb, ssm = _client("dynamodb", moto_server), _client("ssm", moto_server)
    dynamodb.create_table(TableName="prod-admins", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "username", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "username", "AttributeType": "S"}])
    env = {**_env(), "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "ADMIN_USERNAME": "boss"}
    missing = _run([sys.executable, "-m", "infra.first_admin", "--stage", "prod"], env=env)
    assert missing.returncode == 1 and "ParameterNotFound" in missing.stderr, missing.stderr

    ssm.put_parameter(Name="/wechat-store/prod/wechat-secret", Type="SecureString", Value="app-secret")
    ssm.put_parameter(Name="/wechat-store/prod/admin-password", Type="SecureString", Value="a-long-admin-password")
    ssm.put_parameter(Name="/wechat-store/prod/auth-token-secret", Type="SecureString", Value="x" * 40)

    first = _run([sys.executable, "-m", "infra.first_admin", "--stage", "prod"], env=env)
    assert first.returncode == 0, first.stderr
    assert "'boss' created in prod-admins" in first.stdout
    item = dynamodb.get_item(TableName="prod-admins", Key={"username": {"S": "boss"}})["Item"]
    assert "a-long-admin-password" not in str(item)

    again = _run([sys.executable, "-m", "infra.first_admin", "--stage", "prod"], env=env)
    assert again.returncode == 0, again.stderr
    assert "already present" in again.stdout
