"""Coupon templates and wallets in storage: every conditional write on the path where its
condition holds and where it fails, on moto and on AWS's DynamoDB Local engine."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.coupons import CouponScope
from chalicelib.storage import coupons, users
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.batch_get import batch_get_raw
from chalicelib.storage.coupons import CouponTemplate, CouponTemplateRecord, CouponTermsRecord, CouponWalletRecord
from tests.storage.conftest import on_engine

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(engine, request):
    """Each test runs on both engines: nested map paths are where they could differ."""
    on_engine(engine, request, (CouponTemplateRecord, CouponWalletRecord, CouponTermsRecord, users.UserRecord,
                                users.BirthdayRecord))


def template(template_id: str = "tpl-1", **overrides) -> CouponTemplate:
    values = dict(template_id=template_id, name="满100减10", kind="full_reduction", threshold_fen=10000, off_fen=1000,
                  rate_permille=0, cap_fen=0, scope=CouponScope(category_ids=frozenset({"fruit"})), valid_from=None,
                  valid_to=None, valid_days=7, claim_from=None, claim_to=None, total=10, issued=0, per_user_limit=2,
                  channel="claim", stack_group="default", status="active", terms_version=1, created_at=NOW,
                  updated_at=NOW)
    values.update(overrides)
    made = CouponTemplate(**values)
    coupons.create_template(made)
    return made


def claim(made: CouponTemplate, user_id: str = "u1", now: datetime = NOW, **kwargs):
    coupons.create_wallet(user_id)
    options = dict(channel=made.channel, claim_key=made.template_id, limit=made.per_user_limit, now=now)
    options.update(kwargs)
    return coupons.claim_coupon(made, user_id, **options)[0]


def issued(template_id: str = "tpl-1") -> int:
    return coupons.get_template(template_id, consistent=True).issued


def status_of(coupon_id: str, user_id: str = "u1") -> str:
    return coupons.get_wallet(user_id, consistent=True).get(coupon_id).status


# --- claiming ---------------------------------------------------------------------------------

def test_a_claim_counts_on_the_template_and_writes_a_snapshot_into_the_wallet(db):
    made = template()
    coupon = claim(made)
    assert coupon.coupon_id.startswith("c") and len(coupon.coupon_id) == 17
    wallet = coupons.get_wallet("u1", consistent=True)
    assert wallet.exists and wallet.claims == {"tpl-1": 1} and issued() == 1
    stored = wallet.get(coupon.coupon_id)
    assert stored == coupon
    assert stored.status == "unused" and stored.terms.threshold_fen == 10000 and stored.terms.off_fen == 1000
    assert stored.terms.scope == CouponScope(category_ids=frozenset({"fruit"}))
    assert (stored.valid_from, stored.valid_to) == (NOW, NOW + timedelta(days=7))
    assert wallet.history[coupon.coupon_id].channel == "claim" and wallet.history[coupon.coupon_id].claimed_at == NOW


def test_a_wallet_is_created_once(db):
    assert coupons.create_wallet("u1") is True
    assert coupons.create_wallet("u1") is False
    assert coupons.get_wallet("u1", consistent=True).exists
    assert coupons.get_wallet("u2").exists is False


def test_the_per_user_limit_is_exact_and_a_refused_claim_issues_nothing(db):
    made = template(per_user_limit=2)
    claim(made)
    claim(made)
    with pytest.raises(coupons.ClaimLimitReached):
        claim(made)
    assert issued() == 2 and len(coupons.get_wallet("u1", consistent=True).coupons) == 2


def test_a_yearly_claim_key_counts_apart(db):
    made = template(per_user_limit=1, channel="birthday")
    claim(made, claim_key="tpl-1#2026")
    with pytest.raises(coupons.ClaimLimitReached):
        claim(made, claim_key="tpl-1#2026")
    claim(made, claim_key="tpl-1#2027")
    assert coupons.get_wallet("u1", consistent=True).claims == {"tpl-1#2026": 1, "tpl-1#2027": 1}


def test_a_sold_out_template_refuses_and_the_wallet_is_untouched(db):
    made = template(total=1)
    claim(made, user_id="u1")
    with pytest.raises(coupons.TemplateRefused):
        claim(made, user_id="u2")
    assert issued() == 1
    assert coupons.get_wallet("u2", consistent=True).coupons == ()
    assert coupons.get_wallet("u2", consistent=True).claims == {}


@pytest.mark.parametrize("changes, when", [
    ({"status": "paused"}, NOW),
    ({"claim_from": NOW + timedelta(hours=1)}, NOW),
    ({"claim_to": NOW}, NOW),
    ({"valid_days": None, "valid_from": NOW - timedelta(days=2), "valid_to": NOW - timedelta(seconds=1)}, NOW),
])
def test_a_closed_template_refuses(db, changes, when):
    made = template(**changes)
    with pytest.raises(coupons.TemplateRefused):
        claim(made, now=when)
    assert issued() == 0


def test_a_claim_through_another_channel_or_with_stale_terms_is_refused(db):
    made = template(channel="new_user")
    with pytest.raises(coupons.TemplateRefused):
        claim(made, channel="claim")
    coupons.update_template("tpl-1", {"off_fen": 500}, NOW, terms_version=1)
    with pytest.raises(coupons.TemplateRefused):  # the terms read before the change
        claim(made)
    assert issued() == 0
    fresh = coupons.get_template("tpl-1", consistent=True)
    assert fresh.terms_version == 2 and claim(fresh).terms.off_fen == 500


def test_a_claim_prunes_the_coupons_it_is_given(db):
    made = template(total=100, per_user_limit=100)
    first = claim(made)
    second = claim(made)
    claim(made, prune=[first.coupon_id, "c-never-existed"])
    wallet = coupons.get_wallet("u1", consistent=True)
    assert {coupon.coupon_id for coupon in wallet.coupons} >= {second.coupon_id}
    assert wallet.get(first.coupon_id) is None and len(wallet.coupons) == 2 and wallet.claims == {"tpl-1": 3}


def test_prunable_are_used_past_validity_and_long_expired_unused_never_locked(db):
    made = template(total=100, per_user_limit=100, valid_days=1)
    used, unused, locked = claim(made), claim(made), claim(made)
    later = NOW + timedelta(days=1)
    coupons.lock_coupons("u1", [used.coupon_id, locked.coupon_id], "o1", NOW).apply()
    coupons.use_coupons("u1", [used.coupon_id], "o1", NOW).apply()
    wallet = coupons.get_wallet("u1", consistent=True)
    assert coupons.prunable(wallet, NOW) == []
    assert coupons.prunable(wallet, later) == [used.coupon_id]
    assert set(coupons.prunable(wallet, later + timedelta(days=coupons.EXPIRED_KEPT_DAYS))) == {
        used.coupon_id, unused.coupon_id}


# --- templates --------------------------------------------------------------------------------

def test_total_never_goes_below_issued(db):
    made = template(total=5)
    claim(made)
    claim(made)
    with pytest.raises(ConditionFailed):
        coupons.update_template("tpl-1", {"total": 1}, NOW, terms_version=None)
    coupons.update_template("tpl-1", {"total": 2, "name": "改名"}, NOW, terms_version=None)
    assert coupons.get_template("tpl-1", consistent=True).total == 2


def test_terms_cannot_change_once_issued_and_a_template_is_created_once(db):
    made = template()
    claim(made)
    with pytest.raises(ConditionFailed):
        coupons.update_template("tpl-1", {"off_fen": 1}, NOW, terms_version=1)
    with pytest.raises(ConditionFailed):
        coupons.update_template("tpl-missing", {"name": "x"}, NOW, terms_version=None)
    with pytest.raises(ConditionFailed):
        coupons.create_template(made)
    assert coupons.get_template("tpl-1", consistent=True).off_fen == 1000


def test_templates_by_channel(db):
    template("tpl-1", channel="claim")
    template("tpl-2", channel="new_user", created_at=NOW + timedelta(seconds=1))
    template("tpl-3", channel="claim", created_at=NOW + timedelta(seconds=2))
    assert [t.template_id for t in coupons.templates_of_channel("claim")] == ["tpl-3", "tpl-1"]
    assert [t.template_id for t in coupons.templates_of_channel("birthday")] == []


# --- the order's wallet updates ---------------------------------------------------------------

@pytest.fixture
def two_coupons(db):
    made = template(total=10, per_user_limit=5, valid_days=None, valid_from=NOW, valid_to=NOW + timedelta(days=10))
    return claim(made).coupon_id, claim(made).coupon_id


def test_lock_release_use_and_return(two_coupons):
    first, second = two_coupons
    coupons.lock_coupons("u1", [first, second], "o1", NOW).apply()
    assert {status_of(first), status_of(second)} == {"locked"}
    assert coupons.get_wallet("u1", consistent=True).history[first].order_id == "o1"
    coupons.release_coupons("u1", [second], "o1").apply()
    assert status_of(second) == "unused" and coupons.get_wallet("u1", consistent=True).history[second].order_id is None
    coupons.use_coupons("u1", [first], "o1", NOW + timedelta(minutes=1)).apply()
    history = coupons.get_wallet("u1", consistent=True).history[first]
    assert status_of(first) == "used" and history.used_at == NOW + timedelta(minutes=1) and history.order_id == "o1"
    coupons.return_coupons("u1", [first], "o1", NOW + timedelta(days=1)).apply()
    history = coupons.get_wallet("u1", consistent=True).history[first]
    assert status_of(first) == "unused" and history.order_id is None and history.used_at is None


def test_locking_fails_for_locked_used_missing_or_invalid_coupons_and_changes_nothing(two_coupons):
    first, second = two_coupons
    coupons.lock_coupons("u1", [first], "o1", NOW).apply()
    for coupon_ids, when in [([first], NOW), ([second, first], NOW), ([second, "c-missing"], NOW),
                             ([second], NOW - timedelta(seconds=1)), ([second], NOW + timedelta(days=10))]:
        with pytest.raises(ConditionFailed):
            coupons.lock_coupons("u1", coupon_ids, "o2", when).apply()
    assert status_of(second) == "unused" and status_of(first) == "locked"
    coupons.use_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):  # a used coupon
        coupons.lock_coupons("u1", [first], "o2", NOW).apply()
    with pytest.raises(ConditionFailed):  # a user without a wallet
        coupons.lock_coupons("u-none", [first], "o2", NOW).apply()


def test_releasing_twice_or_for_another_order_fails(two_coupons):
    first, _ = two_coupons
    coupons.lock_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):
        coupons.release_coupons("u1", [first], "o2").apply()
    coupons.release_coupons("u1", [first], "o1").apply()
    with pytest.raises(ConditionFailed):
        coupons.release_coupons("u1", [first], "o1").apply()
    assert status_of(first) == "unused"


def test_using_needs_the_lock_of_this_order(two_coupons):
    first, second = two_coupons
    with pytest.raises(ConditionFailed):  # unused, never locked
        coupons.use_coupons("u1", [first], "o1", NOW).apply()
    coupons.lock_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):
        coupons.use_coupons("u1", [first], "o2", NOW).apply()
    coupons.use_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):  # twice
        coupons.use_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):  # a used coupon cannot be released
        coupons.release_coupons("u1", [first], "o1").apply()


def test_a_coupon_returns_only_while_valid_and_only_once(two_coupons):
    first, second = two_coupons
    coupons.lock_coupons("u1", [first, second], "o1", NOW).apply()
    coupons.use_coupons("u1", [first, second], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):  # past valid_to
        coupons.return_coupons("u1", [first], "o1", NOW + timedelta(days=10)).apply()
    with pytest.raises(ConditionFailed):  # another order's
        coupons.return_coupons("u1", [first], "o2", NOW).apply()
    coupons.return_coupons("u1", [first], "o1", NOW).apply()
    with pytest.raises(ConditionFailed):
        coupons.return_coupons("u1", [first], "o1", NOW).apply()
    assert (status_of(first), status_of(second)) == ("unused", "used")


def test_a_revived_order_takes_its_released_coupons_again_unless_used_meanwhile(two_coupons):
    first, second = two_coupons
    coupons.lock_coupons("u1", [first, second], "o1", NOW).apply()
    coupons.release_coupons("u1", [first, second], "o1").apply()  # the order timed out
    coupons.lock_coupons("u1", [second], "o2", NOW).apply()  # another order took one
    with pytest.raises(ConditionFailed):
        coupons.use_released_coupons("u1", [first, second], "o1", NOW + timedelta(days=30)).apply()
    assert (status_of(first), status_of(second)) == ("unused", "locked")
    coupons.use_released_coupons("u1", [first], "o1", NOW + timedelta(days=30)).apply()  # even past valid_to
    history = coupons.get_wallet("u1", consistent=True).history[first]
    assert status_of(first) == "used" and history.order_id == "o1" and history.used_at == NOW + timedelta(days=30)


def test_updates_are_refused_for_no_coupons_or_too_many():
    with pytest.raises(ValueError):
        coupons.lock_coupons("u1", [], "o1", NOW)
    with pytest.raises(ValueError):
        coupons.lock_coupons("u1", [f"c{n}" for n in range(coupons.MAX_COUPONS_PER_UPDATE + 1)], "o1", NOW)
    assert coupons.lock_coupons("u1", ["c1", "c1"], "o1", NOW).names["#k0"] == "c1"  # repeats count once


def test_a_wallet_update_joins_a_pynamodb_transaction_all_or_nothing(two_coupons):
    first, second = two_coupons
    template("tpl-2")
    lock = coupons.lock_coupons("u1", [first], "o1", NOW)
    with TransactWrite(connection=CouponTemplateRecord._get_connection().connection) as transaction:
        transaction.update(CouponTemplateRecord("tpl-1"), actions=[CouponTemplateRecord.name.set("locked one")],
                           condition=CouponTemplateRecord.status == "active")
        lock.add_to(transaction)
        transaction.condition_check(CouponTemplateRecord, "tpl-2", condition=CouponTemplateRecord.total == 10)
    assert status_of(first) == "locked" and coupons.get_template("tpl-1", consistent=True).name == "locked one"
    again = coupons.lock_coupons("u1", [first, second], "o2", NOW)
    with pytest.raises(TransactWriteError) as failure:
        with TransactWrite(connection=CouponTemplateRecord._get_connection().connection) as transaction:
            transaction.update(CouponTemplateRecord("tpl-1"), actions=[CouponTemplateRecord.name.set("changed")])
            again.add_to(transaction)
            transaction.condition_check(CouponTemplateRecord, "tpl-2", condition=CouponTemplateRecord.total == 10)
    position = again.position_in(transaction)
    assert position == 2  # the condition check, then the template update, then the wallet
    assert [reason.code if reason else None for reason in failure.value.cancellation_reasons][position] \
        == "ConditionalCheckFailed"
    assert status_of(second) == "unused" and coupons.get_template("tpl-1", consistent=True).name == "locked one"


def test_a_wallet_update_as_a_raw_transact_item(two_coupons):
    first, _ = two_coupons
    client = CouponWalletRecord._get_connection().connection.client
    client.transact_write_items(TransactItems=[coupons.lock_coupons("u1", [first], "o1", NOW).as_transact_item()])
    assert status_of(first) == "locked"


def test_the_wallet_in_a_batch_get_spanning_tables(two_coupons):
    first, second = two_coupons
    items = batch_get_raw([*coupons.wallet_keys("u1"), *coupons.wallet_keys("u-none"),
                           (CouponTemplateRecord.Meta.table_name, {"template_id": {"S": "tpl-1"}})],
                          CouponWalletRecord._get_connection().connection)
    wallet = coupons.wallet_from_items("u1", items)
    assert wallet == coupons.get_wallet("u1", consistent=True)
    assert {coupon.coupon_id for coupon in wallet.coupons} == {first, second} and wallet.claims == {"tpl-1": 2}
    assert coupons.wallet_from_items("u-none", {}).exists is False


def test_orders_write_only_the_small_status_item_and_claims_write_the_terms_once(two_coupons):
    first, _ = two_coupons
    client = CouponWalletRecord._get_connection().connection.client
    terms_before = client.get_item(TableName=CouponTermsRecord.Meta.table_name, Key={"user_id": {"S": "u1"}},
                                   ConsistentRead=True)["Item"]
    coupons.lock_coupons("u1", [first], "o1", NOW).apply()
    state = client.get_item(TableName=CouponWalletRecord.Meta.table_name, Key={"user_id": {"S": "u1"}},
                            ConsistentRead=True)["Item"]
    assert set(state["coupons"]["M"][first]["M"]) == {"status", "valid_from", "valid_to", "order_id"}
    assert client.get_item(TableName=CouponTermsRecord.Meta.table_name, Key={"user_id": {"S": "u1"}},
                           ConsistentRead=True)["Item"] == terms_before


# --- birthdays --------------------------------------------------------------------------------

def test_a_birthday_is_set_once_and_listed_under_its_day(db):
    users.upsert_on_login("u1", "openid-1", None, NOW)
    users.upsert_on_login("u2", "openid-2", None, NOW)
    assert users.update_profile("u1", NOW, birthday=date(1990, 3, 1), nickname="小明").birthday == date(1990, 3, 1)
    users.update_profile("u1", NOW, birthday=date(1990, 3, 1))  # the same again: fine
    with pytest.raises(ConditionFailed):
        users.update_profile("u1", NOW, birthday=date(1991, 3, 2))
    with pytest.raises(ConditionFailed):
        users.update_profile("u-missing", NOW, birthday=date(1991, 3, 2))
    users.update_profile("u2", NOW, birthday=date(2000, 3, 1))
    assert sorted(users.users_born_on("03-01")) == ["u1", "u2"]
    assert list(users.users_born_on("03-02")) == []
    assert users.get_user("u1").nickname == "小明" and users.get_user("u1").birthday == date(1990, 3, 1)
