"""Login and the shared access token under real concurrency, on AWS's DynamoDB Local engine."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.services import access_token, auth
from chalicelib.storage.credentials import CredentialRecord
from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.users import UserRecord
from tests.api.helpers import sim_call

pytestmark = pytest.mark.dynamodb_local


def test_concurrent_first_logins_of_one_user_create_exactly_one_user(dynamodb_local, wechat_sim):
    barrier = threading.Barrier(20)

    def log_in(n: int) -> str:
        barrier.wait()
        return auth.log_in_with_wechat(f"carol-{n}").user.user_id

    with ThreadPoolExecutor(max_workers=20) as pool:
        user_ids = set(pool.map(log_in, range(20)))
    assert len(user_ids) == 1
    assert UserRecord.count() == 1
    assert SessionRecord.count() == 20  # one revocable session per login


def test_concurrent_cold_lambdas_agree_on_one_access_token(dynamodb_local, wechat_sim):
    barrier = threading.Barrier(10)

    def cold_lambda(_: int) -> str:
        barrier.wait()
        # Each call behaves as a cold process: no in-memory token yet.
        access_token.clear_memory_cache()
        return access_token.get_access_token()

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = set(pool.map(cold_lambda, range(10)))
    assert len(tokens) == 1
    assert CredentialRecord.count() == 1
    # The process lock makes threads single-flight; separate processes may each call
    # stable_token once, which hands them the same token.
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["stable_token"] >= 1


def test_a_revoked_token_is_refused_by_every_reader_at_once(dynamodb_local, wechat_sim):
    login = auth.log_in_with_wechat("dave-1")
    principal = auth.authenticate(login.issued.token, "user")
    auth.log_out(principal)

    def check(_: int) -> str:
        try:
            auth.authenticate(login.issued.token, "user")
            return "accepted"
        except Exception as error:  # noqa: BLE001 - we assert on the kind below
            return getattr(error, "code", type(error).__name__)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(check, range(16))) == {"token_revoked"}
