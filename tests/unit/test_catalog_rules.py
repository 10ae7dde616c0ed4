"""Pure catalog rules: stock status, search tokens, listing keys and query plans (no AWS)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import catalog as rules


@pytest.mark.parametrize("available, threshold, status", [
    (0, 5, "sold_out"), (-1, 0, "sold_out"), (1, 5, "low"), (5, 5, "low"), (6, 5, "in_stock"),
    (1, 0, "in_stock"), (0, 0, "sold_out"),
])
def test_stock_status_is_sold_out_at_zero_low_at_or_under_the_threshold(available, threshold, status):
    assert rules.stock_status(available, threshold) == status


def test_chinese_text_is_indexed_as_bigrams_then_single_characters():
    tokens = rules.index_tokens("红富士苹果", [])
    assert tokens == ["红富", "富士", "士苹", "苹果", "红", "富", "士", "苹", "果"]


def test_ascii_words_are_whole_lowercased_and_full_width_folded():
    tokens = rules.index_tokens("智利车厘子 ＪＪ级", ["Cherry"])
    assert "jj" in tokens and "cherry" in tokens
    assert "j" not in tokens  # single ASCII letters would make huge partitions


def test_keywords_are_indexed_and_duplicates_dropped():
    tokens = rules.index_tokens("赣南脐橙", ["橙子", "脐橙"])
    assert "橙子" in tokens and tokens.count("脐橙") == 1


def test_index_tokens_are_capped_dropping_single_characters_first():
    name = "".join(chr(0x4E00 + i) for i in range(40))  # 39 bigrams + 40 characters
    tokens = rules.index_tokens(name, [])
    assert len(tokens) == rules.MAX_INDEXED_TOKENS
    assert all(len(token) == 2 for token in tokens[:39])


def test_query_tokens_put_a_bigram_or_word_first_so_it_picks_the_partition():
    assert rules.query_tokens("车厘") == ["车厘"]
    assert rules.query_tokens("红富士 苹果") == ["红富", "富士", "苹果"]
    assert rules.query_tokens("级 JJ") == ["jj", "级"]
    assert rules.query_tokens("梨") == ["梨"]
    assert rules.query_tokens("!! ? a") == []


def test_search_text_keeps_name_and_keywords_apart():
    text = rules.search_text("苹果", ["果汁"])
    assert "果果" not in text and "苹果" in text and "果汁" in text


def test_a_product_is_listed_under_everything_each_category_level_and_each_token():
    facets = rules.listing_facets(["c1", "c2", "c3"], ["苹果", "jj"])
    assert facets == ["all", "cat#c1", "cat#c2", "cat#c3", "kw#苹果", "kw#jj"]


def test_zero_padded_keys_sort_as_the_numbers_do():
    prices = [5, 100, 3990, 23800, 10 ** 9]
    keys = [rules.price_key(price, "p") for price in prices]
    assert sorted(keys) == keys
    assert rules.sales_key(10 ** 15, "p") > rules.sales_key(10 ** 11, "p")  # clamped, still ordered


def test_newest_keys_follow_creation_time_whatever_the_offset():
    moment = datetime(2025, 1, 1, tzinfo=timezone.utc)
    later_in_china = (moment + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=8)))
    assert rules.newest_key(moment, "b") < rules.newest_key(later_in_china, "a")


def test_a_plain_list_reads_the_all_partition_in_the_table_order():
    plan = rules.plan_listing_query()
    assert (plan.partition, plan.index, plan.ascending, plan.filtered) == ("all", None, False, False)
    assert plan.key_names == ("facet", "newest_key")


def test_a_category_list_reads_the_category_partition():
    assert rules.plan_listing_query(category_id="c-fruit").partition == "cat#c-fruit"


def test_a_price_range_on_the_price_order_is_a_key_condition_not_a_filter():
    plan = rules.plan_listing_query(min_price_fen=3000, max_price_fen=20000, sort="price_desc")
    assert (plan.index, plan.ascending, plan.filtered) == ("by_price", False, False)
    assert plan.lower == "000000003000" and plan.upper == "000000020001"
    assert plan.lower <= rules.price_key(3000, "p") < plan.upper
    assert plan.lower <= rules.price_key(20000, "p") < plan.upper
    assert not plan.lower <= rules.price_key(20001, "p") < plan.upper
    assert plan.key_names == ("facet", "newest_key", "price_key")


def test_a_price_range_on_another_order_is_a_filter():
    plan = rules.plan_listing_query(min_price_fen=100, sort="sales")
    assert (plan.index, plan.lower, plan.min_price_fen, plan.filtered) == ("by_sales", None, 100, True)


def test_a_search_queries_its_first_token_and_filters_the_rest_and_the_category():
    plan = rules.plan_listing_query(q="红富士苹果", category_id="c-fruit")
    assert plan.partition == "kw#红富"
    assert plan.contains_tokens == ("富士", "士苹", "苹果") and plan.category_id == "c-fruit"


def test_a_query_without_searchable_characters_matches_nothing():
    assert rules.plan_listing_query(q="!!!") is None


def test_each_distinct_query_has_its_own_cursor_scope():
    scopes = {rules.plan_listing_query(**kwargs).scope for kwargs in (
        {}, {"sort": "sales"}, {"category_id": "c"}, {"q": "苹果"}, {"min_price_fen": 1}, {"max_price_fen": 1})}
    assert len(scopes) == 6


def test_the_category_tree_nests_and_orders_each_level():
    flat = [{"category_id": "b", "name": "B", "parent_id": None, "level": 1, "sort_order": 1},
            {"category_id": "a", "name": "A", "parent_id": None, "level": 1, "sort_order": 0},
            {"category_id": "a2", "name": "Z", "parent_id": "a", "level": 2, "sort_order": 0},
            {"category_id": "a1", "name": "Y", "parent_id": "a", "level": 2, "sort_order": 0},
            {"category_id": "a11", "name": "X", "parent_id": "a1", "level": 3, "sort_order": 0}]
    tree = rules.category_tree(flat)
    assert [node["category_id"] for node in tree] == ["a", "b"]
    assert [node["category_id"] for node in tree[0]["children"]] == ["a1", "a2"]
    assert tree[0]["children"][0]["children"][0]["category_id"] == "a11"


def test_the_largest_catalog_write_fits_one_transaction():
    """Create: product + 50 SKUs + listings; re-list: product + SKU + new listings + stale ones."""
    listings = len(rules.listing_facets(["c1", "c2", "c3"], [str(i) * 2 for i in range(rules.MAX_INDEXED_TOKENS)]))
    assert 1 + 50 + listings <= 100
    stale = 3 + rules.MAX_INDEXED_TOKENS
    assert 1 + 1 + listings + stale <= 100
