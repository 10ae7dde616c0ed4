"""The demo store seeded by `make run` / `make tables`."""
from __future__ import annotations

from chalicelib.storage.catalog import CategoryRecord, ProductRecord, SkuRecord
from local.seed import seed_demo_store


def test_the_demo_store_has_three_category_levels_a_virtual_good_and_a_low_stock_sku(aws):
    seed_demo_store()
    levels = {category.level for category in CategoryRecord.scan()}
    assert levels == {1, 2, 3}
    assert any(product.virtual for product in ProductRecord.scan())
    skus = list(SkuRecord.scan())
    assert any(sku.available <= sku.low_stock_threshold for sku in skus)
    for sku in skus:  # every SKU starts with the stock invariant holding
        assert sku.stock_in == sku.available + sku.allocated + sku.reserved + sku.sold


def test_seeding_twice_adds_nothing(aws):
    seed_demo_store()
    counts = (CategoryRecord.count(), ProductRecord.count(), SkuRecord.count())
    assert "created 0 categories, 0 products, 0 SKUs" in seed_demo_store()[0]
    assert (CategoryRecord.count(), ProductRecord.count(), SkuRecord.count()) == counts


def test_the_demo_flash_sale_is_carved_once_however_often_the_store_is_seeded(aws):
    from chalicelib.storage.flash_sales import FlashSaleRecord
    from tests.storage.order_fixtures import counters

    seed_demo_store()
    seed_demo_store()
    assert [sale.sale_id for sale in FlashSaleRecord.scan()] == ["fs-demo-cherry"]
    assert counters("sku-cherry-1kg")["allocated"] == 20


def test_the_demo_marketing_is_seeded_once_and_preview_picks_its_best_combination_with_reasons(client):
    """README's walk-through: a new user (new-user gift at login) claims the fruit 9折 and the
    满100减15 coupons and previews 247.80 yuan of fruit for pickup."""
    from chalicelib.services import activities
    from chalicelib.storage.activities import ActivityRecord
    from chalicelib.storage.coupons import CouponTemplateRecord
    from tests.api.helpers import call, log_in

    seed_demo_store()
    assert seed_demo_store()[3].startswith("marketing: act-demo-full-reduction")
    assert ActivityRecord.count() == 3 and CouponTemplateRecord.count() == 3  # 满减, 拼团, 砍价
    activities.forget_running()
    token, _ = log_in(client, "newcomer-1")
    for template_id in ("tpl-demo-fruit-90", "tpl-demo-100-15"):
        assert call(client, "POST", f"/v1/coupons/{template_id}/claim", token=token)[0] == 201
    status, quote, _ = call(client, "POST", "/v1/checkout/preview", {
        "items": [{"sku_id": "sku-cherry-1kg", "quantity": 1}, {"sku_id": "sku-fuji-10", "quantity": 1},
                  {"sku_id": "sku-navel-10", "quantity": 1}],
        "delivery_method": "pickup", "store_id": "store-xuhui"}, token=token)
    assert status == 200, quote
    assert [(a["kind"], a["description"]) for a in quote["adjustments"]][0][0] == "full_reduction"
    by_name = {coupon["coupon_id"]: coupon for coupon in quote["coupons"]}
    applied = {c["coupon_id"] for c in by_name.values() if c["applied"]}
    assert len(applied) == 2  # the fruit 9折 and the new-user 5 yuan
    assert [c["reason"] for c in by_name.values() if not c["applied"]] == ["does_not_stack"]  # 满100减15
    assert (quote["goods_fen"], quote["discount_fen"], quote["payable_fen"]) == (24780, 4778, 20002)
    activities.forget_running()
