"""PIPL account deletion (issue 14 part 6): what goes, what is kept anonymised, sessions revoked,
a new account on the next login, refusal while orders are open, and a retry that finishes."""
from __future__ import annotations


import pytest

from chalicelib.domain import identity
from chalicelib.services import privacy
from chalicelib.storage import orders, privacy_audit
from chalicelib.storage.addresses import AddressRecord
from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.consents import ConsentRecord
from chalicelib.storage.coupons import CouponWalletRecord
from chalicelib.storage.favorites import FavoriteRecord
from chalicelib.storage.history import ViewRecord
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.privacy_audit import DeletionRecord, LoginTombstoneRecord
from chalicelib.storage.reviews import ReviewRecord, ReviewSummaryRecord, review_id_for
from chalicelib.storage.points import PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord
from chalicelib.storage.users import BirthdayRecord, UserRecord
from tests.api.helpers import admin_token, assert_envelope, call, log_in, place_pickup_order
from tests.api.privacy_helpers import completed_order, fill_every_store
from tests.storage.order_fixtures import pay


@pytest.fixture
def shop(client, demo_store, monkeypatch):
    token, user = log_in(client, "alice-1")
    return token, user["user_id"], admin_token(client)


def _partition(model, user_id) -> list:
    return list(model.query(user_id, consistent_read=True))


def test_deletion_removes_personal_data_and_keeps_orders_anonymised(client, shop):
    token, user_id, admin = shop
    mine = fill_every_store(client, token, admin)
    assert call(client, "POST", "/v1/me/sign-in", token=token)[0] == 200
    summary_before = ReviewSummaryRecord.get("p-fuji", consistent_read=True).review_count

    status, receipt, _ = call(client, "DELETE", "/v1/me", token=token)
    assert status == 200, receipt
    assert receipt["status"] == "deleted"
    assert receipt["anonymised"] == {"orders": 1, "reviews": 1, "after_sales": 0}
    assert receipt["deleted"]["addresses"] >= 1 and receipt["deleted"]["consents"] == 1
    assert receipt["deleted"]["birthday"] == 1 and receipt["deleted"]["sessions"] >= 1

    for model in (AddressRecord, CartLineRecord, FavoriteRecord, ViewRecord, ConsentRecord, PointsEntryRecord):
        assert _partition(model, user_id) == [], model
    assert receipt["deleted"]["points"] >= 3  # the sign-in's and the completed order's entries, and the account
    with pytest.raises(PointsAccountRecord.DoesNotExist):
        PointsAccountRecord.get(user_id, consistent_read=True)
    assert list(PointsExpiryRecord.scan()) == []
    assert list(BirthdayRecord.query("05-01", consistent_read=True)) == []
    with pytest.raises(UserRecord.DoesNotExist):
        UserRecord.get(user_id, consistent_read=True)
    with pytest.raises(CouponWalletRecord.DoesNotExist):
        CouponWalletRecord.get(user_id, consistent_read=True)

    order = OrderRecord.get(mine["order_id"], consistent_read=True)
    assert order.user_id.startswith("d") and order.user_id != user_id
    assert order.address is None and order.prepay is None and "tracking_no" not in order.shipment.as_dict()
    assert order.status == "completed" and order.payable_fen > 0 and len(order.lines) == 1  # accounting keeps these
    assert list(OrderRecord.by_user.query(user_id)) == []

    review = ReviewRecord.get(review_id_for(mine["order_id"], "sku-fuji-5"), consistent_read=True)
    assert review.user_id == order.user_id and review.nickname == privacy_audit.ERASED_NICKNAME
    assert review.text == "" and list(review.images) == [] and review.rating == 5
    assert ReviewSummaryRecord.get("p-fuji", consistent_read=True).review_count == summary_before

    audit = DeletionRecord.get(user_id, consistent_read=True)
    assert audit.status == "deleted" and audit.tombstone_id is None and audit.consent_version == "2024-01"


def test_deletion_revokes_every_session(client, shop):
    token, user_id, _ = shop
    other_device, _ = log_in(client, "alice-2")
    assert call(client, "DELETE", "/v1/me", token=token)[0] == 200
    for old in (token, other_device):
        status, body, _ = call(client, "GET", "/v1/me/consents", token=old)
        assert status == 401
        assert_envelope(body, "token_revoked")


def test_a_login_after_deletion_starts_a_new_account(client, shop):
    token, user_id, admin = shop
    mine = fill_every_store(client, token, admin)
    assert call(client, "DELETE", "/v1/me", token=token)[0] == 200

    status, login, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-3"})
    assert status == 200 and login["is_new_user"] is True
    new_token, new_id = login["token"], login["user"]["user_id"]
    assert new_id != user_id and login["user"]["nickname"] is None
    assert call(client, "GET", "/v1/orders", token=new_token)[1]["items"] == []
    assert call(client, "GET", "/v1/addresses", token=new_token)[1]["items"] == []
    assert call(client, "GET", f"/v1/orders/{mine['order_id']}", token=new_token)[0] == 404
    base_id = identity.user_id_for("wx_test_appid", UserRecord.get(new_id).openid)
    assert LoginTombstoneRecord.get(base_id).deletions == 1

    # and deleting the second account gives a third id
    assert call(client, "DELETE", "/v1/me", token=new_token)[0] == 200
    third = call(client, "POST", "/v1/auth/login", {"code": "alice-4"})[1]["user"]["user_id"]
    assert third not in (user_id, new_id)


@pytest.mark.parametrize("stage", ["pending_payment", "paid"])
def test_deletion_is_refused_while_an_order_is_open_and_changes_nothing(client, shop, stage):
    token, user_id, _ = shop
    address = call(client, "POST", "/v1/addresses",
                   {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市",
                    "district": "徐汇区", "detail": "漕溪北路88号"}, token=token)[1]
    order = place_pickup_order(client, token)
    if stage == "paid":
        pay(orders.get_order(order["order_id"]))
    status, body, _ = call(client, "DELETE", "/v1/me", token=token)
    assert status == 409
    assert_envelope(body, "open_orders")
    assert body["Details"] == [{"order_id": order["order_id"], "reason": stage}]
    assert "refund an erased person" in body["Message"]
    assert [r.address_id for r in _partition(AddressRecord, user_id)][-1] == address["address_id"]
    assert privacy_audit.get_deletion(user_id) is None
    assert call(client, "GET", "/v1/me", token=token)[0] == 200  # the session lives on


def test_an_open_after_sales_request_on_a_completed_order_blocks_deletion(client, shop):
    token, user_id, admin = shop
    order = completed_order(client, token, admin)
    status, request, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                              {"kind": "return", "reason": "坏了"}, token=token)
    assert status == 201, request
    status, body, _ = call(client, "DELETE", "/v1/me", token=token)
    assert status == 409 and body["Code"] == "open_orders"
    assert body["Details"] == [{"order_id": order["order_id"], "reason": "after_sales_open"}]
    assert call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/reject", {"reason": "无质量问题"},
                token=admin)[0] == 200
    status, receipt, _ = call(client, "DELETE", "/v1/me", token=token)  # finished: the deletion goes ahead
    assert status == 200 and receipt["anonymised"]["after_sales"] == 1, receipt


def test_a_deletion_that_crashed_midway_finishes_on_retry(client, shop, monkeypatch):
    token, user_id, admin = shop
    mine = fill_every_store(client, token, admin)
    real = privacy_audit.anonymise_order

    def crash(*args, **kwargs):
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(privacy_audit, "anonymise_order", crash)
    with pytest.raises(RuntimeError):
        privacy.delete_account(user_id)
    started = privacy_audit.get_deletion(user_id)
    assert started.status == "deleting" and started.tombstone_id
    assert _partition(AddressRecord, user_id) == []  # steps before the crash are done
    assert OrderRecord.get(mine["order_id"]).user_id == user_id  # the crashed step is not

    monkeypatch.setattr(privacy_audit, "anonymise_order", real)
    status, receipt, _ = call(client, "DELETE", "/v1/me", token=token)  # sessions were not revoked yet
    assert status == 200, receipt
    assert OrderRecord.get(mine["order_id"], consistent_read=True).user_id == started.tombstone_id
    assert ReviewRecord.get(review_id_for(mine["order_id"], "sku-fuji-5")).user_id == started.tombstone_id
    finished = privacy_audit.get_deletion(user_id)
    assert finished.status == "deleted" and finished.attempts == 2 and finished.tombstone_id is None


def test_a_crash_after_the_sessions_were_revoked_is_finished_by_logging_in_again(client, shop, monkeypatch):
    token, user_id, _ = shop
    monkeypatch.setattr(privacy_audit, "finish_deletion", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        privacy.delete_account(user_id)
    assert call(client, "GET", "/v1/me", token=token)[0] == 401
    monkeypatch.undo()
    # the account is not finished: the same WeChat user logs in to the same id and retries
    again, user = log_in(client, "alice-5")
    assert user["user_id"] == user_id
    assert call(client, "DELETE", "/v1/me", token=again)[0] == 200
    assert privacy_audit.get_deletion(user_id).status == "deleted"


def test_a_repeated_deletion_of_a_finished_account_answers_its_receipt(client, shop):
    token, user_id, _ = shop
    first = call(client, "DELETE", "/v1/me", token=token)[1]
    again = privacy.delete_account(user_id)  # e.g. a retry whose first answer was lost
    assert again.status == "deleted" and again.completed_at == first["completed_at"]


def test_other_users_are_untouched(client, shop):
    token, user_id, admin = shop
    bob_token, bob = log_in(client, "bob-1")
    theirs = fill_every_store(client, bob_token, admin)
    assert call(client, "DELETE", "/v1/me", token=token)[0] == 200
    assert call(client, "GET", "/v1/me", token=bob_token)[0] == 200
    assert OrderRecord.get(theirs["order_id"]).user_id == bob["user_id"]
    assert len(_partition(AddressRecord, bob["user_id"])) >= 1
    assert len(_partition(ConsentRecord, bob["user_id"])) == 1


def test_commissions_not_yet_withdrawn_block_deletion(client, shop):
    """Money the store owes a distributor is never erased with the account: withdraw it first."""
    from chalicelib.storage.commissions import CommissionAccountRecord

    token, user_id, _ = shop
    CommissionAccountRecord(user_id, frozen_fen=0, available_fen=1200, pending_fen=0).save()
    status, body, _ = call(client, "DELETE", "/v1/me", token=token)
    assert status == 409
    assert_envelope(body, "commission_balance")
    assert body["Details"] == [{"frozen_fen": 0, "available_fen": 1200, "pending_fen": 0}]
    assert privacy_audit.get_deletion(user_id) is None and call(client, "GET", "/v1/me", token=token)[0] == 200
    CommissionAccountRecord(user_id, available_fen=99).save()  # under the smallest withdrawal: it can never leave
    assert call(client, "DELETE", "/v1/me", token=token)[0] == 200


def test_deletion_takes_the_nickname_and_avatar_off_the_users_group_buy_places(client, shop):
    from chalicelib.storage.group_buys import MEMBER_PREFIX, GroupBuyRecord

    token, user_id, admin = shop
    order = completed_order(client, token, admin)
    OrderRecord(order["order_id"]).update(actions=[OrderRecord.offer.set(
        {"kind": "group_buy", "id": "g-test-1", "activity_id": "act-1"})])
    GroupBuyRecord("g-test-1", MEMBER_PREFIX + user_id, user_id=user_id, order_id=order["order_id"],
                   nickname="小爱", avatar_url="https://img.example.com/a.png", leader=True).save()
    status, receipt, _ = call(client, "DELETE", "/v1/me", token=token)
    assert status == 200 and receipt["deleted"]["group_members"] == 1, receipt
    member = GroupBuyRecord.get("g-test-1", MEMBER_PREFIX + user_id, consistent_read=True)
    assert member.nickname is None and member.avatar_url is None and member.leader  # the place itself stays
