"""Favorites and browsing history (issue 14 item 3) on the demo store, and the product page
that records a view without failing or slowing because of it."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from chalicelib import clock
from chalicelib.storage import favorites as favorite_storage
from chalicelib.storage import history as history_storage
from chalicelib.storage.favorites import COUNTER_KEY, FavoriteRecord
from chalicelib.storage.history import ViewRecord
from chalicelib.storage.products import ProductRecord, get_product, to_record
from tests.api.helpers import admin_token, assert_envelope, call, log_in

FRUIT = ["p-fuji", "p-navel", "p-cherry", "p-durian"]


@pytest.fixture
def alice(client, demo_store):
    return log_in(client, "alice-1")[0]


def favorite(client, token, product_id):
    return call(client, "POST", "/v1/me/favorites", {"product_id": product_id}, token=token)


def listing(client, token, path, **params):
    status, body, _ = call(client, "GET", f"{path}?{urlencode(params)}" if params else path, token=token)
    assert status == 200, body
    return body


def walk(client, token, path, limit):
    """Every item of a list, page by page (each page at most `limit`)."""
    seen, cursor = [], None
    for _ in range(200):
        page = listing(client, token, path, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= limit
        seen += [item["product_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


def view(client, product_id, token=None):
    status, body, _ = call(client, "GET", f"/v1/products/{product_id}", token=token)
    return status, body


def stored_views() -> list[tuple[str, str]]:
    return sorted((record.user_id, record.product_id) for record in ViewRecord.scan(consistent_read=True))


@pytest.fixture
def ticking():
    """A clock that moves 1 s each time `tick()` is called, so views and adds have distinct times."""
    with clock.frozen_at(datetime.now(timezone.utc).replace(microsecond=0)) as advance:
        yield lambda: advance(timedelta(seconds=1))


# ------------------------------------------------------------------------------- favorites

def test_adding_a_favorite_is_201_then_200_with_the_same_favorite(client, alice):
    status, first, _ = favorite(client, alice, "p-fuji")
    assert status == 201, first
    assert first == {"product_id": "p-fuji", "name": "烟台红富士苹果", "cover_image": "https://img.example.com/fuji.jpg",
                     "min_price_fen": 3990, "on_sale": True, "added_at": first["added_at"]}
    status, again, _ = favorite(client, alice, "p-fuji")
    assert (status, again) == (200, first)
    assert [item["product_id"] for item in listing(client, alice, "/v1/me/favorites")["items"]] == ["p-fuji"]
    assert favorite_storage.count(log_in(client, "alice-2")[1]["user_id"]) == 1


def test_an_unknown_or_off_sale_product_cannot_be_favorited(client, alice):
    status, body, _ = favorite(client, alice, "p-nothing")
    assert status == 404
    assert_envelope(body, "product_not_found")
    ProductRecord("p-durian").update(actions=[ProductRecord.on_sale.set(False)])
    status, body, _ = favorite(client, alice, "p-durian")
    assert status == 404
    assert_envelope(body, "product_not_found")
    assert listing(client, alice, "/v1/me/favorites")["items"] == []


@pytest.mark.parametrize("body", [{}, {"product_id": 7}, {"product_id": ""}, {"product_id": "a/b"},
                                  {"product_id": "p-fuji", "extra": 1}, {"product_id": "x" * 65}])
def test_a_bad_body_is_400_naming_the_field(client, alice, body):
    status, answer, _ = call(client, "POST", "/v1/me/favorites", body, token=alice)
    assert status == 400
    assert_envelope(answer, "validation_error")
    assert answer["Details"][0]["field"] in ("product_id", "extra")


def test_removing_is_idempotent(client, alice):
    favorite(client, alice, "p-fuji")
    status, body, _ = call(client, "DELETE", "/v1/me/favorites/p-fuji", token=alice)
    assert (status, body) == (200, {"product_id": "p-fuji", "removed": True})
    status, body, _ = call(client, "DELETE", "/v1/me/favorites/p-fuji", token=alice)
    assert (status, body) == (200, {"product_id": "p-fuji", "removed": False})
    status, body, _ = call(client, "DELETE", "/v1/me/favorites/p-never-was", token=alice)
    assert (status, body) == (200, {"product_id": "p-never-was", "removed": False})
    assert listing(client, alice, "/v1/me/favorites")["items"] == []
    user_id = log_in(client, "alice-2")[1]["user_id"]
    assert favorite_storage.count(user_id) == 0
    assert favorite(client, alice, "p-fuji")[0] == 201  # and it can be added again


def test_favorites_list_newest_first_in_pages_with_each_products_card(client, alice, ticking):
    for product_id in FRUIT:
        ticking()
        assert favorite(client, alice, product_id)[0] == 201
    ticking()
    favorite(client, alice, "p-fuji")  # already there: does not move up
    newest_first = list(reversed(FRUIT))
    assert walk(client, alice, "/v1/me/favorites", limit=3) == newest_first
    assert walk(client, alice, "/v1/me/favorites", limit=1) == newest_first
    page = listing(client, alice, "/v1/me/favorites", limit=2)
    assert [item["min_price_fen"] for item in page["items"]] == [19900, 12800]
    assert all(item["cover_image"].startswith("https://") and item["on_sale"] for item in page["items"])


def test_an_off_sale_favorite_stays_listed_as_not_on_sale(client, alice):
    favorite(client, alice, "p-cherry")
    ProductRecord("p-cherry").update(actions=[ProductRecord.on_sale.set(False)])
    [item] = listing(client, alice, "/v1/me/favorites")["items"]
    assert (item["product_id"], item["on_sale"], item["min_price_fen"]) == ("p-cherry", False, 12800)


def test_favorites_are_capped_at_500_with_409_favorites_full(client, alice):
    favorite(client, alice, "p-fuji")
    user_id = log_in(client, "alice-2")[1]["user_id"]
    FavoriteRecord(user_id, COUNTER_KEY, total=500).save()  # as if 499 more were there
    status, body, _ = favorite(client, alice, "p-navel")
    assert status == 409
    assert_envelope(body, "favorites_full")
    assert favorite(client, alice, "p-fuji")[0] == 200  # one already there still answers as before
    assert call(client, "DELETE", "/v1/me/favorites/p-fuji", token=alice)[1]["removed"] is True
    assert favorite(client, alice, "p-navel")[0] == 201  # room again
    assert favorite_storage.count(user_id) == 500


def test_the_cap_counts_through_the_api(client, alice, monkeypatch):
    from chalicelib.services import favorites as favorite_service

    monkeypatch.setattr(favorite_service, "MAX_FAVORITES", 2)
    assert [favorite(client, alice, product_id)[0] for product_id in FRUIT[:3]] == [201, 201, 409]
    call(client, "DELETE", "/v1/me/favorites/p-fuji", token=alice)
    assert favorite(client, alice, "p-cherry")[0] == 201


def test_favorites_and_history_are_each_users_own(client, alice):
    bob = log_in(client, "bob-1")[0]
    favorite(client, alice, "p-fuji")
    view(client, "p-navel", alice)
    assert listing(client, bob, "/v1/me/favorites")["items"] == []
    assert listing(client, bob, "/v1/me/history")["items"] == []
    assert call(client, "DELETE", "/v1/me/favorites/p-fuji", token=bob)[1]["removed"] is False
    assert len(listing(client, alice, "/v1/me/favorites")["items"]) == 1


def test_a_cursor_works_only_for_its_own_list_and_user(client, alice, ticking):
    bob = log_in(client, "bob-1")[0]
    for product_id in FRUIT[:3]:
        ticking()
        favorite(client, alice, product_id)
        view(client, product_id, alice)
    for path in ("/v1/me/favorites", "/v1/me/history"):
        cursor = listing(client, alice, path, limit=1)["next_cursor"]
        assert cursor
        for token, query in ((bob, {"cursor": cursor}), (alice, {"cursor": "bogus"}), (alice, {"cursor": cursor + "x"})):
            status, body, _ = call(client, "GET", f"{path}?{urlencode(query)}", token=token)
            assert status == 400, (path, query)
            assert_envelope(body, "invalid_cursor")
    other = listing(client, alice, "/v1/me/history", limit=1)["next_cursor"]
    status, body, _ = call(client, "GET", "/v1/me/favorites?" + urlencode({"cursor": other}), token=alice)
    assert status == 400


@pytest.mark.parametrize("query", ["limit=0", "limit=51", "limit=x", "extra=1"])
def test_list_queries_are_validated(client, alice, query):
    for path in ("/v1/me/favorites", "/v1/me/history"):
        status, body, _ = call(client, "GET", f"{path}?{query}", token=alice)
        assert status == 400, (path, query)
        assert_envelope(body, "validation_error")


def test_every_route_needs_a_user_token(client, demo_store):
    admin = admin_token(client)
    for method, path, body in (("GET", "/v1/me/favorites", None), ("POST", "/v1/me/favorites", {"product_id": "p-fuji"}),
                               ("DELETE", "/v1/me/favorites/p-fuji", None), ("GET", "/v1/me/history", None)):
        status, answer, _ = call(client, method, path, body)
        assert status == 401, path
        assert_envelope(answer)
        assert call(client, method, path, body, token=admin)[0] == 403, path


# --------------------------------------------------------------------------------- history

def test_a_view_with_a_user_token_goes_into_the_history(client, alice):
    assert view(client, "p-cherry", alice)[0] == 200
    [item] = listing(client, alice, "/v1/me/history")["items"]
    assert {key: item[key] for key in ("product_id", "name", "min_price_fen", "on_sale")} == \
        {"product_id": "p-cherry", "name": "智利车厘子 JJ级", "min_price_fen": 12800, "on_sale": True}
    assert item["cover_image"] == "https://img.example.com/cherry.jpg" and item["viewed_at"]


def test_history_is_newest_first_and_a_repeated_view_moves_the_product_to_the_top(client, alice, ticking):
    for product_id in ["p-fuji", "p-navel", "p-cherry", "p-fuji", "p-durian", "p-navel"]:
        ticking()
        assert view(client, product_id, alice)[0] == 200
    assert walk(client, alice, "/v1/me/history", limit=2) == ["p-navel", "p-durian", "p-fuji", "p-cherry"]
    assert len(stored_views()) == 4  # one item per (user, product)


def test_an_older_view_written_late_does_not_move_a_product_down(aws):
    now = clock.now()
    assert history_storage.record_view("u1", "p-a", now, timedelta(days=90)) is True
    assert history_storage.record_view("u1", "p-b", now + timedelta(seconds=1), timedelta(days=90)) is True
    assert history_storage.record_view("u1", "p-a", now - timedelta(seconds=5), timedelta(days=90)) is False
    views = history_storage.recent_views("u1", now, timedelta(days=90), 100)
    assert [(v.product_id, v.viewed_at_ms) for v in views] == [("p-b", int(now.timestamp() * 1000) + 1000),
                                                               ("p-a", int(now.timestamp() * 1000))]


def test_history_shows_the_last_100_views_only(client, alice, ticking):
    user_id = log_in(client, "alice-2")[1]["user_id"]
    extra = [f"p-many-{n:03d}" for n in range(105)]
    fuji = get_product("p-fuji")
    with ProductRecord.batch_write() as batch:
        for product_id in extra:
            batch.save(to_record(replace(fuji, product_id=product_id)))
    for product_id in extra:  # straight into storage: 105 product pages would be slow on moto
        ticking()
        history_storage.record_view(user_id, product_id, clock.now(), timedelta(days=90))
    seen = walk(client, alice, "/v1/me/history", limit=50)
    assert seen == list(reversed(extra))[:100]
    assert len(stored_views()) == 105  # never trimmed: the oldest 5 are just not shown (TTL removes them)


def test_views_expire_after_90_days_by_ttl_and_are_hidden_before_dynamodb_deletes_them(client, alice):
    view(client, "p-fuji", alice)
    [record] = list(ViewRecord.scan(consistent_read=True))
    kept = record.expires_at - clock.from_epoch(record.viewed_at / 1000)  # TTL is in whole seconds
    assert timedelta(days=90) - timedelta(seconds=1) < kept <= timedelta(days=90)
    ttl = ViewRecord._get_connection().connection.client.describe_time_to_live(TableName=ViewRecord.Meta.table_name)
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    with clock.frozen_at(clock.now() + timedelta(days=89)):  # tokens last less: log in again
        assert len(listing(client, log_in(client, "alice-3")[0], "/v1/me/history")["items"]) == 1
    with clock.frozen_at(clock.now() + timedelta(days=90, seconds=1)):
        assert listing(client, log_in(client, "alice-4")[0], "/v1/me/history")["items"] == []


def test_the_product_page_stays_public_and_records_nothing_without_a_valid_user_token(client, alice):
    admin = admin_token(client)
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    for token in (None, "not-a-token", forged, admin, "v1.é.x"):
        status, body = view(client, "p-fuji", token)
        assert status == 200 and body["product_id"] == "p-fuji", token
    status, body, _ = call(client, "GET", "/v1/products/p-fuji", headers={"Authorization": "Basic abc"})
    assert status == 200
    assert stored_views() == []


def test_an_expired_token_reads_the_page_and_records_nothing(client, alice):
    with clock.frozen_at(clock.now() + timedelta(days=365)):
        assert view(client, "p-fuji", alice)[0] == 200
    assert stored_views() == []


def test_an_off_sale_or_unknown_product_is_404_and_not_recorded(client, alice):
    ProductRecord("p-durian").update(actions=[ProductRecord.on_sale.set(False)])
    assert view(client, "p-durian", alice)[0] == 404
    assert view(client, "p-nothing", alice)[0] == 404
    assert stored_views() == []


def test_an_off_sale_product_stays_in_the_history_greyed_out(client, alice):
    view(client, "p-durian", alice)
    ProductRecord("p-durian").update(actions=[ProductRecord.on_sale.set(False)])
    [item] = listing(client, alice, "/v1/me/history")["items"]
    assert (item["product_id"], item["on_sale"]) == ("p-durian", False)


@pytest.mark.parametrize("target", ["chalicelib.storage.history.record_view", "chalicelib.services.history.record_view",
                                    "chalicelib.services.history.start_recording"])
def test_the_product_page_answers_200_when_history_writing_fails(client, alice, monkeypatch, target):
    module, name = target.rsplit(".", 1)

    def broken(*args, **kwargs):
        raise RuntimeError("history table unavailable")

    monkeypatch.setattr(f"{module}.{name}", broken)
    status, body = view(client, "p-fuji", alice)
    assert status == 200 and body["product_id"] == "p-fuji"
    assert stored_views() == []


def test_the_page_answers_200_when_dynamodb_refuses_the_view(client, alice, monkeypatch):
    from pynamodb.exceptions import PutError

    attempts = []

    def throttled(self, *args, **kwargs):
        attempts.append(self.product_id)
        raise PutError("throttled")

    monkeypatch.setattr(ViewRecord, "save", throttled)
    assert view(client, "p-fuji", alice)[0] == 200
    assert attempts == ["p-fuji"]  # the view was tried, and its failure stayed off the page


def test_a_view_costs_one_put_of_one_write_unit_and_nothing_without_a_token(client, alice):
    from bench.capacity import CapacityMeter
    from chalicelib.storage import schema

    with CapacityMeter(keep_records=False) as meter:
        meter.attach_models(schema.ALL_MODELS)
        assert view(client, "p-cherry")[0] == 200
        assert {name: op.calls for name, op in meter.snapshot().operations.items()} == {"GetItem": 1, "BatchGetItem": 1}
        meter.reset()
        assert view(client, "p-cherry", alice)[0] == 200
        usage = meter.snapshot()
        assert {name: op.calls for name, op in usage.operations.items()} == \
            {"GetItem": 1, "BatchGetItem": 1, "PutItem": 1}
        assert usage.operations["PutItem"].write_units == 1.0
        assert usage.unmetered in (0, None)


# ----------------------------------------------------------------- races on DynamoDB Local

@pytest.mark.dynamodb_local
def test_concurrent_adds_never_pass_the_cap_nor_count_twice(dynamodb_local):
    from tests.integration.concurrency import race

    from pynamodb.exceptions import TransactWriteError

    def add(user_id, product_id):
        for _ in range(20):  # a transaction conflict is the client's 503: it retries
            try:
                favorite_storage.add(user_id, product_id, clock.now(), cap=5)
                return "added"
            except favorite_storage.FavoritesFull:
                return "full"
            except favorite_storage.AlreadyFavorite:
                return "already"
            except TransactWriteError:
                continue
        return "gave up"

    outcomes = Counter(race(20, lambda n: add("racer", f"p-{n}")))
    assert outcomes == {"added": 5, "full": 15}, outcomes
    assert favorite_storage.count("racer") == 5
    outcomes = Counter(race(10, lambda n: add("twin", "p-same")))
    assert outcomes == {"added": 1, "already": 9}, outcomes
    assert favorite_storage.count("twin") == 1
