"""Cart lines and the cart's catalog read: each conditional write on the path where its
condition fails (nothing written), and the one-BatchGetItem read of SKUs with their products."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import carts, catalog_batch
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.catalog import ProductRecord
from tests.storage.call_counter import dynamodb_calls

NOW = clock.now()
MAX = 99


def _quantity(user_id: str, sku_id: str) -> int | None:
    line = next((line for line in carts.list_lines(user_id) if line.sku_id == sku_id), None)
    return None if line is None else line.quantity


# ------------------------------------------------------------------------- add_quantity


def test_adding_answers_the_line_as_stored_and_keeps_its_product(aws):
    first = carts.add_quantity("u1", "sku-a", 2, MAX, NOW, product_id="p-a")
    again = carts.add_quantity("u1", "sku-a", 3, MAX, NOW + timedelta(seconds=5))
    assert (first.quantity, first.product_id, first.selected) == (2, "p-a", True)
    assert (again.quantity, again.product_id, again.added_at) == (5, "p-a", first.added_at)
    assert carts.list_lines("u1") == [again]


def test_adding_up_to_exactly_the_per_line_max_is_allowed(aws):
    carts.add_quantity("u1", "sku-a", 98, MAX, NOW)
    assert carts.add_quantity("u1", "sku-a", 1, MAX, NOW).quantity == MAX


def test_adding_past_the_per_line_max_fails_and_changes_nothing(aws):
    carts.add_quantity("u1", "sku-a", 98, MAX, NOW, product_id="p-a")
    with pytest.raises(ConditionFailed):
        carts.add_quantity("u1", "sku-a", 2, MAX, NOW + timedelta(seconds=1), product_id="p-a")
    assert _quantity("u1", "sku-a") == 98


def test_a_first_add_over_the_max_creates_no_line(aws):
    with pytest.raises(ConditionFailed):
        carts.add_quantity("u1", "sku-a", MAX + 1, MAX, NOW)
    assert CartLineRecord.count() == 0


def test_lines_written_before_lines_kept_their_product_read_as_none_and_learn_it_on_the_next_add(aws):
    CartLineRecord("u1", "sku-old", quantity=1, selected=True, added_at=NOW, updated_at=NOW).save()
    assert carts.list_lines("u1")[0].product_id is None
    assert carts.add_quantity("u1", "sku-old", 1, MAX, NOW, product_id="p-old").product_id == "p-old"


def test_lines_come_oldest_first(aws):
    carts.add_quantity("u1", "sku-b", 1, MAX, NOW + timedelta(seconds=2))
    carts.add_quantity("u1", "sku-a", 1, MAX, NOW + timedelta(seconds=1))
    carts.add_quantity("u1", "sku-c", 1, MAX, NOW + timedelta(seconds=1))
    assert [line.sku_id for line in carts.list_lines("u1")] == ["sku-a", "sku-c", "sku-b"]


# --------------------------------------------------------------------- other conditions


def test_updating_a_line_that_is_not_there_fails_and_creates_nothing(aws):
    with pytest.raises(ConditionFailed):
        carts.update_line("u1", "sku-a", NOW, quantity=3)
    assert CartLineRecord.count() == 0


def test_switching_spec_fails_whole_when_the_old_line_changed_meanwhile(aws):
    carts.add_quantity("u1", "sku-a", 2, MAX, NOW)
    with pytest.raises(ConditionFailed):
        carts.switch_sku("u1", "sku-a", "sku-b", 3, MAX, NOW, product_id="p")  # the line holds 2, not 3
    assert _quantity("u1", "sku-a") == 2 and _quantity("u1", "sku-b") is None


def test_switching_spec_fails_whole_when_the_new_line_would_pass_the_max(aws):
    carts.add_quantity("u1", "sku-a", 5, MAX, NOW)
    carts.add_quantity("u1", "sku-b", 95, MAX, NOW)
    with pytest.raises(ConditionFailed):
        carts.switch_sku("u1", "sku-a", "sku-b", 5, MAX, NOW, product_id="p")
    assert _quantity("u1", "sku-a") == 5 and _quantity("u1", "sku-b") == 95


def test_switching_spec_moves_the_quantity_and_keeps_the_product(aws):
    carts.add_quantity("u1", "sku-a", 2, MAX, NOW)
    carts.switch_sku("u1", "sku-a", "sku-b", 2, MAX, NOW, product_id="p")
    assert [(line.sku_id, line.quantity, line.product_id) for line in carts.list_lines("u1")] == [("sku-b", 2, "p")]


def test_removing_a_missing_line_reports_false(aws):
    carts.add_quantity("u1", "sku-a", 1, MAX, NOW)
    assert carts.remove_line("u1", "sku-a") is True
    assert carts.remove_line("u1", "sku-a") is False


# ------------------------------------------------------------- the cart's catalog read


@pytest.fixture
def cold_catalog(demo_store):
    catalog_batch.forget_known_products()
    yield
    catalog_batch.forget_known_products()


def test_skus_and_named_products_come_in_one_batch_get(cold_catalog):
    wanted = ["sku-fuji-5", "sku-navel-5", "sku-cherry-1kg"]
    with dynamodb_calls() as calls:
        found = catalog_batch.get_sellable_skus_with_products(
            wanted, {"sku-fuji-5": "p-fuji", "sku-navel-5": "p-navel", "sku-cherry-1kg": "p-cherry"})
    assert calls == {"BatchGetItem": 1}
    assert found == catalog_batch.get_sellable_skus(wanted)


def test_an_unknown_product_costs_a_second_batch_get_once_per_process(cold_catalog):
    with dynamodb_calls() as calls:
        found = catalog_batch.get_sellable_skus_with_products(["sku-fuji-5"], {})
    assert calls == {"BatchGetItem": 2} and found["sku-fuji-5"].name == "烟台红富士苹果"
    with dynamodb_calls() as calls:  # the process now knows sku-fuji-5's product
        assert catalog_batch.get_sellable_skus_with_products(["sku-fuji-5"], {}) == found
    assert calls == {"BatchGetItem": 1}


def test_a_wrong_product_hint_costs_a_call_never_a_wrong_answer(cold_catalog):
    with dynamodb_calls() as calls:
        found = catalog_batch.get_sellable_skus_with_products(["sku-fuji-5"], {"sku-fuji-5": "p-navel"})
    assert calls == {"BatchGetItem": 2}
    assert found["sku-fuji-5"].product_id == "p-fuji" and found["sku-fuji-5"].name == "烟台红富士苹果"


def test_missing_skus_and_skus_of_missing_products_are_absent(cold_catalog):
    ProductRecord("p-durian").delete()
    found = catalog_batch.get_sellable_skus_with_products(["sku-nope", "sku-durian-3kg", "sku-fuji-5"],
                                                          {"sku-nope": "p-nope"})
    assert set(found) == {"sku-fuji-5"}
    assert catalog_batch.get_sellable_skus_with_products([], {}) == {}


def test_more_than_100_keys_are_read_in_pages(cold_catalog):
    sku_ids = [f"sku-missing-{i}" for i in range(70)] + ["sku-fuji-5"]
    hints = {sku_id: f"p-missing-{i}" for i, sku_id in enumerate(sku_ids[:-1])} | {"sku-fuji-5": "p-fuji"}
    with dynamodb_calls() as calls:
        found = catalog_batch.get_sellable_skus_with_products(sku_ids, hints)
    assert set(found) == {"sku-fuji-5"} and calls == {"BatchGetItem": 2}  # 142 keys: pages of 100 and 42
