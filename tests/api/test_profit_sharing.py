"""Profit sharing (分账, Pay v3) against the WeChat simulator with real signatures both ways: a
flagged prepay, the split after completion and the after-sales window (the distributor's commission
and the store's share), the unfreeze, idempotency by out_order_no, the store's share returned once
after a refund; the simulator's own refusals; a v2 store never flags."""
from __future__ import annotations

import pytest

from chalicelib import clock, distribution_settings
from chalicelib.services import commissions, profit_sharing, withdrawals
from chalicelib.storage import orders
from chalicelib.storage import profit_sharing as sharing_store
from chalicelib.wechat.pay_types import PayApiError
from tests.api.helpers import call, place_pickup_order, sim_call
from tests.api.test_commissions import SKU, _ledger, shop  # noqa: F401 - the fixture
from tests.services.commission_helpers import refund

STORE_MCHID = "1900009191"
STORE_NAME = "深圳市示例门店有限公司"


@pytest.fixture
def sharing_shop(shop, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PROFIT_SHARING", "on")
    monkeypatch.setenv("COMMISSION_SETTLEMENT", "profit_sharing")
    monkeypatch.setenv("PROFIT_SHARING_STORE_MCHID", STORE_MCHID)
    monkeypatch.setenv("PROFIT_SHARING_STORE_PERMILLE", "100")
    monkeypatch.setenv("PROFIT_SHARING_STORE_NAME", STORE_NAME)
    return shop


def _sim(wechat_sim) -> dict:
    return sim_call(wechat_sim, "GET", "/__sim/pay/profit-sharing")


def _paid(client, wechat_sim, token: str) -> dict:
    order = place_pickup_order(client, token, SKU, quantity=2)
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    commissions.reconcile(order["order_id"])
    return order


def _complete(order_id: str) -> None:
    orders.change_status(order_id, "paid", "completed", completed_at=clock.now())
    commissions.reconcile(order_id)


def test_a_flagged_order_is_split_to_the_distributor_and_the_store_then_unfrozen_once(client, wechat_sim,
                                                                                       sharing_shop):
    order = _paid(client, wechat_sim, sharing_shop["buyer"])
    assert orders.get_order(order["order_id"]).prepay["profit_sharing"] is True
    _complete(order["order_id"])
    payable = order["payable_fen"]
    assert commissions.settle_due() == {"settled": 0}  # paid by the split, not made available
    assert profit_sharing.run_due() == {"finished": 1}
    assert profit_sharing.run_due() == {"finished": 0}
    assert profit_sharing.share_order(order["order_id"]) == "nothing"
    sim = _sim(wechat_sim)
    split, unfreeze = sorted(sim["orders"], key=lambda o: o["out_order_no"])  # ps<order>, pu<order>
    assert split["out_order_no"] == f"ps{order['order_id']}"
    assert sorted((r["type"], r["amount"]) for r in split["receivers"]) == \
        [("MERCHANT_ID", payable // 10), ("PERSONAL_OPENID", payable // 10)]
    assert unfreeze["out_order_no"] == f"pu{order['order_id']}" and len(sim["unfrozen"]) == 1
    ledger = _ledger(client, sharing_shop["distributor"])
    assert (ledger["frozen"], ledger["available"], ledger["withdrawn"]) == (0, 0, payable // 10)
    assert [e["kind"] for e in ledger["items"]] == ["shared", "earn"]
    # The same out_order_no asked again is the same split (what makes a retry after a crash safe).
    funds = withdrawals._funds()
    receivers = [{k: r[k] for k in ("type", "account", "amount", "description")} for r in split["receivers"]]
    again = funds.share(orders.get_order(order["order_id"]).transaction_id, split["out_order_no"], receivers)
    assert again.order_id == split["order_id"] and len(_sim(wechat_sim)["orders"]) == 2


def test_a_refund_of_a_shared_order_returns_the_stores_share_once_and_claws_back_the_distributor(
        client, wechat_sim, sharing_shop):
    order = _paid(client, wechat_sim, sharing_shop["buyer"])
    _complete(order["order_id"])
    profit_sharing.run_due()
    refund(order["order_id"], "rf1", ((SKU, 1),), order["payable_fen"] // 2)
    for _ in range(3):  # the refund's record, redelivered
        commissions.reconcile(order["order_id"])
    (returned,) = _sim(wechat_sim)["returns"]
    store_share = order["payable_fen"] // 10
    assert (returned["out_return_no"], returned["return_mchid"], returned["amount"]) == \
        ("rf1", STORE_MCHID, store_share * (order["payable_fen"] // 2) // order["payable_fen"])
    assert sharing_store.get(order["order_id"]).returns == {"rf1"}
    ledger = _ledger(client, sharing_shop["distributor"])
    # Paid out by the split already: the clawback is a debt on available (WeChat cannot return a
    # personal receiver's share).
    assert ledger["available"] == -ledger["clawed_back"] and ledger["clawed_back"] == store_share // 2


def test_the_simulator_refuses_splitting_an_unflagged_payment_or_beyond_30_percent(client, wechat_sim, shop):
    order = _paid(client, wechat_sim, shop["buyer"])  # PROFIT_SHARING off: not flagged
    transaction_id = orders.get_order(order["order_id"]).transaction_id
    funds = withdrawals._funds()
    funds.add_receiver("MERCHANT_ID", STORE_MCHID, STORE_NAME)
    with pytest.raises(PayApiError) as refused:
        funds.share(transaction_id, "psx1", [{"type": "MERCHANT_ID", "account": STORE_MCHID, "amount": 1,
                                              "description": "x"}])
    assert refused.value.code == "NO_AUTH"
    with pytest.raises(PayApiError) as unknown:
        funds.return_share("ps-none", "rx1", STORE_MCHID, 1)
    assert unknown.value.code == "RESOURCE_NOT_EXISTS"


def test_the_simulator_checks_the_merchants_signature_on_transfers(client, wechat_sim):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{wechat_sim.base_url}/v3/transfer/batches", method="POST",
                                     data=json.dumps({"out_batch_no": "x"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401 and json.loads(refused.value.read())["code"] == "SIGN_ERROR"


def test_a_v2_store_never_flags_and_cannot_settle_by_profit_sharing(monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_VERSION", "v2")
    monkeypatch.setenv("PROFIT_SHARING", "on")
    assert distribution_settings.load().profit_sharing is False
    assert profit_sharing.flag_prepay() is False
    monkeypatch.setenv("COMMISSION_SETTLEMENT", "profit_sharing")
    with pytest.raises(distribution_settings.DistributionSettingsError):
        distribution_settings.load()


def test_the_store_receiver_is_added_with_its_name_encrypted_and_the_simulator_requires_it(client, wechat_sim,
                                                                                           sharing_shop):
    order = _paid(client, wechat_sim, sharing_shop["buyer"])
    _complete(order["order_id"])
    assert profit_sharing.run_due() == {"finished": 1}
    assert _sim(wechat_sim)["names"] == {STORE_MCHID: STORE_NAME}  # decrypted by the platform key named
    with pytest.raises(PayApiError) as refused:
        withdrawals._funds().add_receiver("MERCHANT_ID", "1900000001")  # no name
    assert refused.value.code == "PARAM_ERROR"


@pytest.mark.parametrize("given", [{"PROFIT_SHARING_STORE_MCHID": STORE_MCHID, "PROFIT_SHARING_STORE_PERMILLE": "100"},
                                   {"PROFIT_SHARING_STORE_NAME": STORE_NAME, "PROFIT_SHARING_STORE_PERMILLE": "100"},
                                   {"PROFIT_SHARING_STORE_MCHID": STORE_MCHID, "PROFIT_SHARING_STORE_NAME": STORE_NAME}])
def test_a_store_receiver_needs_its_merchant_id_name_and_share_together(monkeypatch, given):
    for name in ("PROFIT_SHARING_STORE_MCHID", "PROFIT_SHARING_STORE_NAME", "PROFIT_SHARING_STORE_PERMILLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(distribution_settings.DistributionSettingsError):
        distribution_settings.load()


def _completed_order(client, wechat_sim, parties) -> dict:
    order = _paid(client, wechat_sim, parties["buyer"])
    _complete(order["order_id"])
    return order


def _breaking(monkeypatch, owner, name: str, error: Exception):
    """owner.name raises `error` until the function returned mends it."""
    original = getattr(owner, name)

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(owner, name, broken)
    return lambda: monkeypatch.setattr(owner, name, original)


def test_a_return_waits_for_the_refunds_index_and_a_failed_return_is_raised_not_skipped(client, wechat_sim,
                                                                                        sharing_shop, monkeypatch):
    from chalicelib.storage import payments
    from chalicelib.wechat.pay_types import PayUnavailable
    from chalicelib.wechat.pay_v3_funds import FundsV3

    order = _completed_order(client, wechat_sim, sharing_shop)
    profit_sharing.run_due()
    refund(order["order_id"], "rf1", ((SKU, 1),), order["payable_fen"] // 2)
    listed = payments.refunds_of_order
    monkeypatch.setattr(payments, "refunds_of_order", lambda order_id: [])  # the index lags
    with pytest.raises(commissions.RefundsNotListedYet):
        profit_sharing.return_store_share(orders.get_order(order["order_id"]))
    monkeypatch.setattr(payments, "refunds_of_order", listed)
    mend = _breaking(monkeypatch, FundsV3, "return_share", PayUnavailable("down"))
    with pytest.raises(commissions.ShareReturnPending):  # the stream batch comes again
        commissions.reconcile(order["order_id"])
    assert _sim(wechat_sim)["returns"] == []
    mend()
    commissions.reconcile(order["order_id"])
    assert [r["out_return_no"] for r in _sim(wechat_sim)["returns"]] == ["rf1"]


def test_a_plan_made_stale_by_a_clawback_while_share_kept_failing_is_made_again(client, wechat_sim, sharing_shop,
                                                                                monkeypatch):
    from chalicelib.wechat.pay_types import PayUnavailable
    from chalicelib.wechat.pay_v3_funds import FundsV3

    order = _completed_order(client, wechat_sim, sharing_shop)
    payable = order["payable_fen"]
    mend = _breaking(monkeypatch, FundsV3, "share", PayUnavailable("down"))
    assert profit_sharing.run_due() == {"finished": 0}
    assert sharing_store.get(order["order_id"]).status == "planned"
    refund(order["order_id"], "rf1", ((SKU, 1),), payable // 2)  # days later, still not split
    commissions.reconcile(order["order_id"])
    mend()
    assert profit_sharing.run_due() == {"finished": 1}  # the old plan (20% of payable) is over WeChat's 30% now
    (split,) = [o for o in _sim(wechat_sim)["orders"] if o["out_order_no"].startswith("ps")]
    assert sorted((r["type"], r["amount"]) for r in split["receivers"]) == \
        [("MERCHANT_ID", (payable - payable // 2) // 10), ("PERSONAL_OPENID", payable // 10 - payable // 20)]
    ledger = _ledger(client, sharing_shop["distributor"])
    assert (ledger["frozen"], ledger["available"]) == (0, 0)
    assert ledger["withdrawn"] == payable // 10 - payable // 20


def test_a_split_wechat_made_before_a_clawback_books_the_shortfall_as_a_debt(client, wechat_sim, sharing_shop,
                                                                              monkeypatch):
    from chalicelib.services.commissions import store as commission_store

    order = _completed_order(client, wechat_sim, sharing_shop)
    payable = order["payable_fen"]
    mend = _breaking(monkeypatch, profit_sharing, "_settle_shared", RuntimeError("died after WeChat split"))
    with pytest.raises(RuntimeError):
        profit_sharing.run_due()
    mend()
    refund(order["order_id"], "rf1", ((SKU, 2),), payable, whole=True)  # wholly refunded: the commission is void
    commissions.reconcile(order["order_id"])
    assert [c.status for c in commission_store.commissions_of_order(order["order_id"])] == ["void"]
    assert profit_sharing.run_due() == {"finished": 1}
    ledger = _ledger(client, sharing_shop["distributor"])  # the account is its entries' sum (figures)
    assert (ledger["frozen"], ledger["withdrawn"], ledger["clawed_back"]) == (0, payable // 10, payable // 10)
    assert ledger["available"] == -(payable // 10)  # WeChat paid it: a debt against later commissions
    assert "shared_debt" in [e["kind"] for e in ledger["items"]]
    assert [r["out_return_no"] for r in _sim(wechat_sim)["returns"]] == ["rf1"]  # the store's share came back


def test_an_order_flagged_while_profit_sharing_was_on_is_still_unfrozen_after_it_is_turned_off(client, wechat_sim,
                                                                                               sharing_shop,
                                                                                               monkeypatch):
    order = _paid(client, wechat_sim, sharing_shop["buyer"])
    monkeypatch.setenv("PROFIT_SHARING", "off")
    monkeypatch.setenv("COMMISSION_SETTLEMENT", "transfer")
    _complete(order["order_id"])
    assert profit_sharing.run_due() == {"finished": 1}
    assert len(_sim(wechat_sim)["unfrozen"]) == 1
