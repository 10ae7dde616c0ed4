"""Storage tests that run every test on both engines: moto, then AWS's DynamoDB Local."""
from __future__ import annotations

import pytest

from chalicelib.storage import schema
from tests.conftest import reset_process_caches


@pytest.fixture(scope="module", params=["aws", pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)])
def engine(request) -> str:
    """Module-scoped, so pytest runs every test of a module on moto, then every test on DynamoDB
    Local (switching engines costs seconds). A module asks for it through its own `db` fixture."""
    return request.param


@pytest.fixture(scope="module")
def local_tables(dynamodb_local_endpoint):
    """DynamoDB Local with every table, once for the module (conftest's `dynamodb_local` sets up
    every table and queue again for each test: seconds a test, for tables these tests never use)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint.endpoint)
        reset_process_caches(switching_endpoints=True)
        schema.create_all_tables()
        yield
    reset_process_caches(switching_endpoints=True)


def on_engine(engine: str, request, models) -> None:
    """The `db` fixtures' body: moto's emptied tables, or DynamoDB Local's with `models` emptied."""
    if engine == "aws":
        request.getfixturevalue("aws")
        return
    request.getfixturevalue("local_tables")
    for model in models:
        with model.batch_write() as batch:
            for item in model.scan(consistent_read=True):
                batch.delete(item)
