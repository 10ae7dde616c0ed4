"""Coupons over HTTP: the merchant's templates (create, list, change, grant), the buyer's claims
and wallet, and the gifts (new user at login, birthday by the daily job)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import clock
from chalicelib.services import gifts
from chalicelib.storage import coupons
from tests.api.helpers import admin_token, assert_envelope, call, log_in

TEMPLATES = "/v1/admin/coupon-templates"


@pytest.fixture(autouse=True)
def cold_caches():
    gifts.forget_cached_templates()
    yield
    gifts.forget_cached_templates()


@pytest.fixture
def admin(client) -> str:
    return admin_token(client)


def full_reduction(**overrides) -> dict:
    body = {"name": "满100减10", "kind": "full_reduction", "threshold_fen": 10000, "off_fen": 1000, "valid_days": 7,
            "total": 100, "per_user_limit": 1, "channel": "claim"}
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def create(client, admin: str, **overrides) -> dict:
    status, body, _ = call(client, "POST", TEMPLATES, full_reduction(**overrides), token=admin)
    assert status == 201, body
    return body


def iso(moment: datetime) -> str:
    return moment.isoformat()


# --- the merchant's templates -----------------------------------------------------------------

def test_create_answers_the_template_with_its_id(client, admin):
    body = create(client, admin, scope={"category_ids": ["fruit"], "excluded_product_ids": ["p-durian"]},
                  stack_group="shop")
    assert body["template_id"].startswith("tpl-")
    assert body["kind"] == "full_reduction" and body["threshold_fen"] == 10000 and body["off_fen"] == 1000
    assert body["rate_permille"] == 0 and body["cap_fen"] == 0
    assert body["scope"] == {"category_ids": ["fruit"], "product_ids": [], "excluded_product_ids": ["p-durian"]}
    assert (body["total"], body["issued"], body["remaining"], body["status"]) == (100, 0, 100, "active")
    assert body["valid_days"] == 7 and body["valid_from"] is None and body["stack_group"] == "shop"


@pytest.mark.parametrize("overrides, field", [
    ({"off_fen": 10000}, "off_fen"),  # not below the threshold
    ({"threshold_fen": None}, "threshold_fen"),
    ({"rate_permille": 900}, "rate_permille"),  # not a discount
    ({"kind": "discount", "threshold_fen": None, "off_fen": None}, "rate_permille"),
    ({"kind": "discount", "rate_permille": 1000, "off_fen": None}, "rate_permille"),
    ({"kind": "no_threshold", "threshold_fen": None, "off_fen": None}, "off_fen"),
    ({"valid_from": "2026-01-01T00:00:00+08:00", "valid_to": "2026-02-01T00:00:00+08:00"}, "valid_days"),  # both
    ({"valid_days": None}, "valid_days"),  # neither
    ({"valid_days": None, "valid_from": "2026-02-01T00:00:00+08:00", "valid_to": "2026-01-01T00:00:00+08:00"},
     "valid_to"),
    ({"claim_from": "2026-02-01T00:00:00+08:00", "claim_to": "2026-01-01T00:00:00+08:00"}, "claim_to"),
    ({"total": 0}, "total"),
    ({"channel": "everyone"}, "channel"),
    ({"threshold_fen": "10000"}, "threshold_fen"),  # money is an integer, not text
    ({"unknown": 1}, "unknown"),
    ({"scope": {"product_ids": [f"p{n}" for n in range(51)]}}, "scope.product_ids"),
])
def test_a_bad_template_is_400_naming_the_field(client, admin, overrides, field):
    status, body, _ = call(client, "POST", TEMPLATES, full_reduction(**overrides), token=admin)
    assert status == 400, body
    assert_envelope(body, "validation_error")
    assert any(field in (detail["field"] + " " + detail["message"]) for detail in body["Details"]), body
    assert call(client, "GET", TEMPLATES, token=admin)[1]["items"] == []


def test_discount_and_no_threshold_templates(client, admin):
    discount = create(client, admin, kind="discount", threshold_fen=None, off_fen=None, rate_permille=850,
                      cap_fen=2000)
    assert (discount["rate_permille"], discount["cap_fen"], discount["threshold_fen"], discount["off_fen"]) == \
        (850, 2000, 0, 0)
    gift = create(client, admin, kind="no_threshold", threshold_fen=None, off_fen=500)
    assert (gift["off_fen"], gift["threshold_fen"]) == (500, 0)


def test_template_routes_need_an_admin(client, admin):
    user, _ = log_in(client)
    assert call(client, "POST", TEMPLATES, full_reduction(), token=user)[0] == 403
    assert call(client, "GET", TEMPLATES)[0] == 401
    assert call(client, "PATCH", f"{TEMPLATES}/tpl-x", {"name": "x"}, token=user)[0] == 403


def test_the_admin_list_pages_with_a_cursor(client, admin):
    made = {create(client, admin, name=f"券{n}")["template_id"] for n in range(3)}
    status, first, _ = call(client, "GET", f"{TEMPLATES}?limit=2", token=admin)
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"]
    rest = call(client, "GET", f"{TEMPLATES}?limit=2&cursor={first['next_cursor']}", token=admin)[1]
    assert {item["template_id"] for item in first["items"] + rest["items"]} == made
    status, body, _ = call(client, "GET", f"{TEMPLATES}?cursor=forged", token=admin)
    assert status == 400 and body["Code"] == "invalid_cursor"


def test_patch_changes_name_status_total_limit_and_window(client, admin):
    template_id = create(client, admin)["template_id"]
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {
        "name": "新名字", "status": "paused", "total": 50, "per_user_limit": 3,
        "claim_to": "2099-01-01T00:00:00+08:00"}, token=admin)
    assert status == 200, body
    assert (body["name"], body["status"], body["total"], body["per_user_limit"]) == ("新名字", "paused", 50, 3)
    assert body["claim_to"] == "2099-01-01T00:00:00+08:00"


def test_patch_of_terms_is_checked_whole_and_refused_once_issued(client, admin):
    template_id = create(client, admin, total=2, per_user_limit=2)["template_id"]
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"kind": "discount"}, token=admin)
    assert status == 400 and any(d["field"] == "rate_permille" for d in body["Details"]), body
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}",
                           {"kind": "discount", "rate_permille": 900}, token=admin)
    assert status == 200 and (body["kind"], body["threshold_fen"], body["off_fen"]) == ("discount", 0, 0)
    user, _ = log_in(client)
    assert call(client, "POST", f"/v1/coupons/{template_id}/claim", token=user)[0] == 201
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"rate_permille": 800}, token=admin)
    assert status == 409 and body["Code"] == "coupon_template_in_use"
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"rate_permille": 900, "name": "同样"},
                           token=admin)
    assert status == 200 and body["name"] == "同样"  # the same terms again are no change
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"total": 0}, token=admin)
    assert status == 400
    user2, _ = log_in(client, "bob-1")
    assert call(client, "POST", f"/v1/coupons/{template_id}/claim", token=user2)[0] == 201
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"total": 1}, token=admin)
    assert status == 409 and body["Code"] == "total_below_issued"


def test_patch_switches_the_validity_mode(client, admin):
    template_id = create(client, admin)["template_id"]
    window = {"valid_from": "2030-01-01T00:00:00+08:00", "valid_to": "2030-02-01T00:00:00+08:00"}
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", window, token=admin)
    assert status == 200 and body["valid_days"] is None and body["valid_from"] == window["valid_from"]
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"valid_days": 3}, token=admin)
    assert status == 200 and (body["valid_days"], body["valid_from"], body["valid_to"]) == (3, None, None)
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"valid_to": "2030-02-01T00:00:00+08:00"},
                           token=admin)
    assert status == 400 and body["Details"][0]["field"] == "valid_to"  # a window needs both ends


def test_a_claimed_coupon_keeps_the_terms_it_was_claimed_with(client, admin):
    template_id = create(client, admin, total=5)["template_id"]
    user, _ = log_in(client)
    coupon = call(client, "POST", f"/v1/coupons/{template_id}/claim", token=user)[1]
    assert call(client, "PATCH", f"{TEMPLATES}/{template_id}", {"name": "改了"}, token=admin)[0] == 200
    [mine] = call(client, "GET", "/v1/me/coupons", token=user)[1]["items"]
    assert mine["name"] == "满100减10" and mine["coupon_id"] == coupon["coupon_id"]


def test_patch_of_an_unknown_template_is_404(client, admin):
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/tpl-nothing", {"name": "x"}, token=admin)
    assert status == 404 and body["Code"] == "coupon_template_not_found"
    status, body, _ = call(client, "PATCH", f"{TEMPLATES}/tpl-nothing", {"name": ""}, token=admin)
    assert status == 400


def test_grant_gives_each_user_within_the_total_and_their_limit(client, admin):
    template_id = create(client, admin, channel="grant", total=2, per_user_limit=1)["template_id"]
    _, alice = log_in(client, "alice-1")
    _, bob = log_in(client, "bob-1")
    _, carol = log_in(client, "carol-1")
    status, body, _ = call(client, "POST", f"{TEMPLATES}/{template_id}/grant",
                           {"user_ids": [alice["user_id"], "u-nobody", alice["user_id"], bob["user_id"],
                                         carol["user_id"]]}, token=admin)
    assert status == 200, body
    by_user = {result["user_id"]: result for result in body["results"]}
    assert body["granted"] == 2 and len(body["results"]) == 4  # the repeated id once
    assert by_user[alice["user_id"]]["granted"] and by_user[alice["user_id"]]["coupon_id"].startswith("c")
    assert by_user["u-nobody"] == {"user_id": "u-nobody", "granted": False, "coupon_id": None,
                                   "code": "user_not_found"}
    assert by_user[carol["user_id"]]["code"] == "coupon_sold_out"
    assert coupons.get_template(template_id, consistent=True).issued == 2
    again = call(client, "POST", f"{TEMPLATES}/{template_id}/grant", {"user_ids": [alice["user_id"]]}, token=admin)[1]
    assert again["results"][0]["code"] in ("claim_limit_reached", "coupon_sold_out")
    [coupon] = coupons.get_wallet(alice["user_id"], consistent=True).coupons
    assert coupons.get_wallet(alice["user_id"]).history[coupon.coupon_id].channel == "grant"


def test_grant_refuses_other_channels_unknown_templates_and_too_many_users(client, admin):
    template_id = create(client, admin, channel="claim")["template_id"]
    status, body, _ = call(client, "POST", f"{TEMPLATES}/{template_id}/grant", {"user_ids": ["u1"]}, token=admin)
    assert status == 409 and body["Code"] == "coupon_template_not_grantable"
    status, body, _ = call(client, "POST", f"{TEMPLATES}/tpl-nothing/grant", {"user_ids": ["u1"]}, token=admin)
    assert status == 404
    status, body, _ = call(client, "POST", f"{TEMPLATES}/{template_id}/grant",
                           {"user_ids": [f"u{n}" for n in range(101)]}, token=admin)
    assert status == 400 and body["Details"][0]["field"] == "user_ids"
    assert call(client, "POST", f"{TEMPLATES}/{template_id}/grant", {"user_ids": []}, token=admin)[0] == 400


# --- the buyer's coupons ----------------------------------------------------------------------

def test_the_public_list_shows_open_claim_templates_with_remaining(client, admin):
    open_one = create(client, admin, total=3)["template_id"]
    create(client, admin, status="paused")
    create(client, admin, channel="new_user")
    create(client, admin, claim_from=iso(clock.now() + timedelta(days=1)))
    create(client, admin, claim_to=iso(clock.now() - timedelta(seconds=1)),
           claim_from=iso(clock.now() - timedelta(days=1)))
    user, _ = log_in(client)
    assert call(client, "POST", f"/v1/coupons/{open_one}/claim", token=user)[0] == 201
    status, body, _ = call(client, "GET", "/v1/coupons")  # no token needed
    assert status == 200
    [item] = body["items"]
    assert item["template_id"] == open_one and item["remaining"] == 2 and item["per_user_limit"] == 1
    assert "issued" not in item and "channel" not in item


def test_claim_answers_201_with_the_coupon(client, admin):
    template_id = create(client, admin)["template_id"]
    token, user = log_in(client)
    status, coupon, _ = call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)
    assert status == 201, coupon
    assert coupon["coupon_id"].startswith("c") and coupon["template_id"] == template_id
    assert (coupon["status"], coupon["channel"], coupon["order_id"], coupon["used_at"]) == ("unused", "claim", None, None)
    valid_from = datetime.fromisoformat(coupon["valid_from"])
    assert datetime.fromisoformat(coupon["valid_to"]) - valid_from == timedelta(days=7)
    assert call(client, "GET", "/v1/me/coupons", token=token)[1]["items"] == [coupon]


def test_claim_refusals(client, admin):
    token, _ = log_in(client)
    sold = create(client, admin, total=1)["template_id"]
    assert call(client, "POST", f"/v1/coupons/{sold}/claim", token=token)[0] == 201
    status, body, _ = call(client, "POST", f"/v1/coupons/{sold}/claim", token=token)
    assert status == 409 and body["Code"] == "coupon_sold_out"
    limited = create(client, admin, total=5, per_user_limit=1)["template_id"]
    assert call(client, "POST", f"/v1/coupons/{limited}/claim", token=token)[0] == 201
    status, body, _ = call(client, "POST", f"/v1/coupons/{limited}/claim", token=token)
    assert status == 409 and body["Code"] == "claim_limit_reached"
    for closed in (create(client, admin, status="paused"), create(client, admin, channel="grant"),
                   create(client, admin, claim_from=iso(clock.now() + timedelta(hours=1)))):
        status, body, _ = call(client, "POST", f"/v1/coupons/{closed['template_id']}/claim", token=token)
        assert status == 409 and body["Code"] == "claim_not_open"
    status, body, _ = call(client, "POST", "/v1/coupons/tpl-nothing/claim", token=token)
    assert status == 404 and body["Code"] == "coupon_template_not_found"
    assert call(client, "POST", f"/v1/coupons/{limited}/claim")[0] == 401
    assert coupons.get_template(limited, consistent=True).issued == 1


def test_my_coupons_by_status_expired_derived(client, admin):
    token, user = log_in(client)
    template_id = create(client, admin, total=10, per_user_limit=4, valid_days=1)["template_id"]
    ids = [call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)[1]["coupon_id"] for _ in range(3)]
    coupons.lock_coupons(user["user_id"], ids[:2], "o1", clock.now()).apply()
    coupons.use_coupons(user["user_id"], ids[:1], "o1", clock.now()).apply()

    def statuses(query: str = "") -> dict:
        status, body, _ = call(client, "GET", f"/v1/me/coupons{query}", token=token)
        assert status == 200, body
        return {item["coupon_id"]: item["status"] for item in body["items"]}

    assert statuses() == {ids[0]: "used", ids[1]: "locked", ids[2]: "unused"}
    assert statuses("?status=locked") == {ids[1]: "locked"}
    assert statuses("?status=expired") == {}
    with clock.frozen_at(clock.now() + timedelta(days=1, seconds=1)):
        token, _ = log_in(client, "alice-2")  # the first token would not outlive the day
        assert statuses("?status=expired") == {ids[2]: "expired"}
        assert statuses("?status=unused") == {}
    status, body, _ = call(client, "GET", "/v1/me/coupons?status=lost", token=token)
    assert status == 400 and body["Details"][0]["field"] == "status"


def test_an_empty_wallet(client):
    token, _ = log_in(client)
    assert call(client, "GET", "/v1/me/coupons", token=token)[1] == {"items": []}


# --- gifts ------------------------------------------------------------------------------------

def test_a_new_user_gets_the_new_user_coupons_once(client, admin):
    create(client, admin, channel="new_user", per_user_limit=2, kind="no_threshold", threshold_fen=None, off_fen=500)
    create(client, admin, channel="new_user", status="paused")
    create(client, admin, channel="claim")
    token, user = log_in(client)
    first = call(client, "GET", "/v1/me/coupons", token=token)[1]["items"]
    assert len(first) == 2 and {coupon["channel"] for coupon in first} == {"new_user"}
    token, _ = log_in(client, "alice-2")  # the same user again: nothing more
    assert call(client, "GET", "/v1/me/coupons", token=token)[1]["items"] == first


def test_the_new_user_gift_is_only_for_the_first_day(client, admin):
    token, user = log_in(client)  # before any new-user template exists
    create(client, admin, channel="new_user")
    gifts.forget_cached_templates()
    with clock.frozen_at(clock.now() + timedelta(hours=gifts.NEW_USER_HOURS, seconds=1)):
        token, _ = log_in(client, "alice-2")
        assert call(client, "GET", "/v1/me/coupons", token=token)[1]["items"] == []
    token, _ = log_in(client, "alice-3")  # still within its first day
    assert len(call(client, "GET", "/v1/me/coupons", token=token)[1]["items"]) == 1


def test_a_failing_gift_never_fails_the_login(client, admin, monkeypatch):
    create(client, admin, channel="new_user")

    def broken(*args, **kwargs):
        raise RuntimeError("storage down")

    monkeypatch.setattr(gifts, "give_new_user_gifts", broken)
    status, body, _ = call(client, "POST", "/v1/auth/login", {"code": "alice-1"})
    assert status == 200 and body["token"]


def test_birthday_is_set_once_in_the_profile(client):
    token, _ = log_in(client)
    status, me, _ = call(client, "PATCH", "/v1/me", {"birthday": "1990-05-20"}, token=token)
    assert status == 200 and me["birthday"] == "1990-05-20"
    assert call(client, "PATCH", "/v1/me", {"birthday": "1990-05-20", "nickname": "n"}, token=token)[0] == 200
    status, body, _ = call(client, "PATCH", "/v1/me", {"birthday": "1991-05-20"}, token=token)
    assert status == 409 and body["Code"] == "birthday_already_set"
    for bad in ("05-20", "1990-02-30", "2999-01-01", "1800-01-01", 19900520):
        status, body, _ = call(client, "PATCH", "/v1/me", {"birthday": bad}, token=token)
        assert status == 400 and body["Details"][0]["field"] == "birthday", bad
    assert call(client, "GET", "/v1/me", token=token)[1]["birthday"] == "1990-05-20"


def test_the_birthday_job_gives_once_a_year_to_those_born_today(client, admin):
    template_id = create(client, admin, channel="birthday", total=10)["template_id"]
    alice, _ = log_in(client, "alice-1")
    bob, _ = log_in(client, "bob-1")
    assert call(client, "PATCH", "/v1/me", {"birthday": "1990-05-20"}, token=alice)[0] == 200
    assert call(client, "PATCH", "/v1/me", {"birthday": "1990-05-21"}, token=bob)[0] == 200
    birthday = datetime(2030, 5, 19, 16, 5, tzinfo=timezone.utc)  # 00:05 on May 20 in Shanghai
    assert gifts.give_birthday_gifts(birthday) == {"users": 1, "given": 1}
    assert gifts.give_birthday_gifts(birthday + timedelta(hours=3)) == {"users": 1}  # had it: no write
    assert gifts.give_birthday_gifts(birthday + timedelta(days=365)) == {"users": 1, "given": 1}
    assert coupons.get_template(template_id, consistent=True).issued == 2
    assert gifts.give_birthday_gifts(birthday + timedelta(days=3)) == {}  # nobody born on May 23


def test_feb_29_birthdays_are_kept_on_feb_28_of_common_years():
    assert gifts.birthday_keys(datetime(2027, 2, 28).date()) == ["02-28", "02-29"]
    assert gifts.birthday_keys(datetime(2028, 2, 28).date()) == ["02-28"]
    assert gifts.birthday_keys(datetime(2028, 2, 29).date()) == ["02-29"]


def test_the_birthday_job_is_scheduled_daily_after_midnight_in_shanghai():
    from app import app

    [job] = [handler for handler in app.event_sources if getattr(handler, "name", "") == "give_birthday_gifts"]
    assert job.schedule_expression.to_string() == "cron(5 16 * * ? *)"


def test_a_contended_claim_is_retried_then_answered_503(client, admin, monkeypatch):
    from chalicelib.services import coupons as coupon_service

    template_id = create(client, admin, total=5, per_user_limit=5)["template_id"]
    token, _ = log_in(client)
    monkeypatch.setattr(coupon_service, "BACKOFF_BASE_SECONDS", 0.0)
    real, attempts = coupons.claim_coupon, []

    def contended(*args, **kwargs):  # what a TransactionConflict on the hot template item raises
        attempts.append(1)
        if len(attempts) < 3:
            raise coupons.ClaimContended()
        return real(*args, **kwargs)

    monkeypatch.setattr(coupons, "claim_coupon", contended)
    assert call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)[0] == 201 and len(attempts) == 3

    def always_contended(*args, **kwargs):
        raise coupons.ClaimContended()

    monkeypatch.setattr(coupons, "claim_coupon", always_contended)
    status, body, headers = call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)
    assert status == 503 and body["Code"] == "service_unavailable" and headers["Retry-After"] == "1"
    assert coupons.get_template(template_id, consistent=True).issued == 1
