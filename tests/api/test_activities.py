"""Activities over HTTP (full-reduction tiers; group-buys and bargains not yet), and the running
ones as the checkout reads them (cached per container for 30 seconds)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.domain.coupons import CouponScope, FullReductionActivity
from chalicelib.services import activities
from chalicelib.storage import activities as activity_storage
from tests.api.helpers import admin_token, assert_envelope, call, log_in

ADMIN = "/v1/admin/activities"


@pytest.fixture(autouse=True)
def cold_cache():
    activities.forget_running()
    yield
    activities.forget_running()


@pytest.fixture
def admin(client) -> str:
    return admin_token(client)


def at(**delta) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def body(**overrides) -> dict:
    made = {"kind": "full_reduction", "name": "满减", "tiers": [{"threshold_fen": 20000, "off_fen": 2000},
                                                              {"threshold_fen": 30000, "off_fen": 4000}],
            "starts_at": at(hours=-1), "ends_at": at(days=7)}
    made.update(overrides)
    return made


def create(client, admin, **overrides) -> dict:
    status, answer, _ = call(client, "POST", ADMIN, body(**overrides), token=admin)
    assert status == 201, answer
    return answer


def test_create_answers_the_activity(client, admin):
    made = create(client, admin, scope={"category_ids": ["fruit"]})
    assert made["activity_id"].startswith("act-")
    assert made["tiers"] == [{"threshold_fen": 20000, "off_fen": 2000}, {"threshold_fen": 30000, "off_fen": 4000}]
    assert made["scope"] == {"category_ids": ["fruit"], "product_ids": [], "excluded_product_ids": []}
    assert (made["status"], made["running"], made["kind"]) == ("active", True, "full_reduction")


@pytest.mark.parametrize("kind", ["group_buy", "bargain"])
def test_group_buys_and_bargains_need_their_own_fields(client, admin, kind):
    """(Their routes and rules: tests/api/test_group_buys.py and test_bargains.py.)"""
    status, answer, _ = call(client, "POST", ADMIN, {"kind": kind, "tiers": [{"threshold_fen": 200, "off_fen": 10}],
                                                     "starts_at": at(), "ends_at": at(days=1)}, token=admin)
    assert status == 400
    assert_envelope(answer, "validation_error")


@pytest.mark.parametrize("overrides", [
    {"kind": "lottery"},
    {"tiers": []},
    {"tiers": [{"threshold_fen": 30000, "off_fen": 2000}, {"threshold_fen": 20000, "off_fen": 1000}]},
    {"tiers": [{"threshold_fen": 20000, "off_fen": 2000}, {"threshold_fen": 20000, "off_fen": 3000}]},
    {"tiers": [{"threshold_fen": 2000, "off_fen": 2000}]},
    {"tiers": [{"threshold_fen": 2000, "off_fen": 0}]},
    {"tiers": [{"threshold_fen": 2000.5, "off_fen": 100}]},
    {"ends_at": at(hours=-2)},  # before it starts
    {"starts_at": at(days=-3), "ends_at": at(days=-2)},  # ended already
    {"starts_at": "tomorrow"},
    {"scope": {"product_ids": "p1"}},
    {"extra": True},
])
def test_a_bad_activity_is_400(client, admin, overrides):
    status, answer, _ = call(client, "POST", ADMIN, body(**overrides), token=admin)
    assert status == 400, answer
    assert_envelope(answer, "validation_error")
    assert answer["Details"]
    assert call(client, "GET", ADMIN, token=admin)[1]["items"] == []


def test_activity_routes_need_an_admin(client, admin):
    user, _ = log_in(client)
    assert call(client, "POST", ADMIN, body(), token=user)[0] == 403
    assert call(client, "GET", ADMIN)[0] == 401
    assert call(client, "PATCH", f"{ADMIN}/act-1", {"name": "x"}, token=user)[0] == 403


def test_the_public_list_shows_running_ones_only(client, admin):
    running = create(client, admin, name="进行中")
    create(client, admin, name="未开始", starts_at=at(days=1), ends_at=at(days=2))
    create(client, admin, name="暂停", status="paused")
    status, answer, _ = call(client, "GET", "/v1/activities")  # public
    assert status == 200
    assert [item["activity_id"] for item in answer["items"]] == [running["activity_id"]]
    assert "status" not in answer["items"][0]
    assert len(call(client, "GET", ADMIN, token=admin)[1]["items"]) == 3


def test_patch_changes_tiers_times_and_status(client, admin):
    made = create(client, admin)
    path = f"{ADMIN}/{made['activity_id']}"
    status, answer, _ = call(client, "PATCH", path, {"tiers": [{"threshold_fen": 10000, "off_fen": 500}],
                                                     "name": "新满减"}, token=admin)
    assert status == 200 and answer["tiers"] == [{"threshold_fen": 10000, "off_fen": 500}] and answer["name"] == "新满减"
    assert call(client, "GET", "/v1/activities")[1]["items"][0]["tiers"] == answer["tiers"]
    status, answer, _ = call(client, "PATCH", path, {"status": "paused"}, token=admin)
    assert status == 200 and answer["running"] is False
    assert call(client, "GET", "/v1/activities")[1]["items"] == []
    status, answer, _ = call(client, "PATCH", path, {"ends_at": at(days=-1)}, token=admin)
    assert status == 400 and answer["Details"][0]["field"] == "ends_at"  # before its start
    status, answer, _ = call(client, "PATCH", path, {"starts_at": at(days=8)}, token=admin)
    assert status == 400  # after its end
    status, answer, _ = call(client, "PATCH", path, {"tiers": [{"threshold_fen": 100, "off_fen": 100}]}, token=admin)
    assert status == 400


def test_patch_of_an_unknown_activity_is_404(client, admin):
    status, answer, _ = call(client, "PATCH", f"{ADMIN}/act-nothing", {"name": "x"}, token=admin)
    assert status == 404 and answer["Code"] == "activity_not_found"


def test_the_admin_list_pages(client, admin):
    made = {create(client, admin, name=f"满减{n}")["activity_id"] for n in range(3)}
    first = call(client, "GET", f"{ADMIN}?limit=2", token=admin)[1]
    rest = call(client, "GET", f"{ADMIN}?limit=2&cursor={first['next_cursor']}", token=admin)[1]
    assert {item["activity_id"] for item in first["items"] + rest["items"]} == made


def test_running_full_reductions_for_the_checkout(client, admin):
    made = create(client, admin, scope={"product_ids": ["p1"]})
    [running] = activities.running_full_reductions()
    assert running == FullReductionActivity(
        activity_id=made["activity_id"], name="满减", tiers=((20000, 2000), (30000, 4000)),
        scope=CouponScope(product_ids=frozenset({"p1"})), starts_at=running.starts_at, ends_at=running.ends_at)
    assert running.value_fen(25000) == 2000
    assert activities.running_full_reductions(clock.now() + timedelta(days=8)) == ()


def test_the_cache_serves_30_seconds_then_reads_again(client, admin, monkeypatch):
    create(client, admin)
    assert len(activities.running_full_reductions()) == 1
    activity_storage.update_activity(  # another container's edit: this one does not know
        activity_storage.list_activities(10, None)[0][0].activity_id, {"status": "paused"}, clock.now())
    assert len(activities.running_full_reductions()) == 1
    started = activities.monotonic()
    monkeypatch.setattr(activities, "monotonic", lambda: started + activities.CACHE_SECONDS)
    assert activities.running_full_reductions() == ()


def test_an_activity_starts_on_the_second_even_from_the_cache(client, admin):
    create(client, admin, starts_at=at(seconds=10))
    assert activities.running_full_reductions() == ()
    assert len(activities.running_full_reductions(clock.now() + timedelta(seconds=11))) == 1
