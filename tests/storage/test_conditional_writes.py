"""Every conditional write, on the path where its condition fails (moto)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import admins, credentials, idempotency, sessions, users
from chalicelib.storage.base import ConditionFailed

NOW = clock.now()


def test_a_user_id_owned_by_another_openid_is_never_overwritten(aws):
    users.upsert_on_login("u1", "openid-a", None, NOW)
    with pytest.raises(users.OpenidMismatch):
        users.upsert_on_login("u1", "openid-b", None, NOW)
    assert users.get_user("u1").openid == "openid-a"


def test_a_returning_login_keeps_created_at_and_profile(aws):
    users.upsert_on_login("u1", "openid-a", None, NOW)
    users.update_profile("u1", NOW, nickname="小红")
    again = users.upsert_on_login("u1", "openid-a", None, NOW + timedelta(days=1))
    assert again.created_at == NOW and again.nickname == "小红" and again.is_new is False


def test_updating_a_profile_of_a_missing_user_fails_and_creates_nothing(aws):
    with pytest.raises(ConditionFailed):
        users.update_profile("u-missing", NOW, nickname="x")
    assert users.get_user("u-missing") is None


def test_a_session_id_cannot_be_created_twice(aws):
    sessions.create_session("s1", "u1", "user", 1, 2_000_000_000)
    with pytest.raises(ConditionFailed):
        sessions.create_session("s1", "u2", "admin", 1, 2_000_000_000)
    assert sessions.get_session("s1").subject == "u1"


def test_revoking_twice_or_revoking_a_missing_session_reports_false(aws):
    sessions.create_session("s1", "u1", "user", 1, 2_000_000_000)
    assert sessions.revoke_session("s1", 10) is True
    assert sessions.revoke_session("s1", 11) is False
    assert sessions.revoke_session("s-missing", 11) is False
    assert sessions.get_session("s-missing") is None


def test_an_older_credential_never_replaces_a_newer_one(aws):
    assert credentials.put_credential_if_newer("c", "new", 2_000)
    assert not credentials.put_credential_if_newer("c", "old", 1_000)
    assert credentials.get_credential("c").value == "new"
    credentials.delete_credential_if_value("c", "old")  # someone else's: kept
    assert credentials.get_credential("c").value == "new"
    credentials.delete_credential_if_value("c", "new")
    assert credentials.get_credential("c") is None


def test_an_admin_account_is_never_overwritten(aws):
    assert admins.create_admin_if_absent("boss", "hash-1", NOW)
    assert not admins.create_admin_if_absent("boss", "hash-2", NOW)
    assert admins.get_admin("boss").password_hash == "hash-1"


def test_an_idempotency_key_is_claimed_once_until_its_lease_expires(aws):
    lease, keep = timedelta(seconds=60), timedelta(days=1)
    assert idempotency.claim("k", NOW, lease, keep) is idempotency.Claim.CLAIMED
    assert idempotency.claim("k", NOW, lease, keep) is idempotency.Claim.BUSY
    # A worker that crashed holding the lease: after it expires, another may take over.
    assert idempotency.claim("k", NOW + timedelta(seconds=61), lease, keep) is idempotency.Claim.CLAIMED
    idempotency.complete("k")
    assert idempotency.claim("k", NOW + timedelta(days=2), lease, keep) is idempotency.Claim.ALREADY_DONE


def test_completing_a_key_that_is_not_in_progress_fails(aws):
    with pytest.raises(ConditionFailed):
        idempotency.complete("never-claimed")
    idempotency.claim("k", NOW, timedelta(seconds=60), timedelta(days=1))
    idempotency.complete("k")
    idempotency.release("k")  # a completed key is never released
    assert idempotency.claim("k", NOW, timedelta(seconds=60), timedelta(days=1)) is idempotency.Claim.ALREADY_DONE
