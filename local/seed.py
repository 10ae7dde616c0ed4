"""Seeds the demo store (local/demo_store.json, a fruit chain "鲜果园"): pickup stores, 3-level
categories, products with SKUs (listed and searchable), a virtual gift card, and one SKU
already at its low-stock threshold.

Idempotent: ids are fixed and every create is conditional, so a second run adds nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

DEMO_STORE = Path(__file__).with_name("demo_store.json")


def _walk(categories: list[dict[str, Any]], path: tuple[str, ...] = ()) -> Iterator[tuple]:
    for order, category in enumerate(categories):
        own_path = (*path, category["id"])
        yield category["id"], category["name"], (path[-1] if path else None), len(own_path), order, own_path
        yield from _walk(category.get("children", []), own_path)


def seed_demo_store(marketing: bool = True) -> list[str]:
    """The demo store; with `marketing`, its full-reduction activity and coupon templates too
    (the local stack has them; tests that assert amounts seed without, so no new-user gift or
    activity moves their prices)."""
    from chalicelib.storage.base import ConditionFailed

    store = json.loads(DEMO_STORE.read_text(encoding="utf-8"))
    created = {"categories": 0, "products": 0, "skus": 0, "stores": 0, "flash_sales": 0, "marketing": 0}

    def create(kind: str, write: Callable[[], Any]) -> None:
        try:
            write()
            created[kind] += 1
        except ConditionFailed:
            pass  # already seeded

    _seed_stores(store.get("stores", []), create)
    paths = _seed_categories(store["categories"], create)
    low_stock = _seed_products(store["products"], paths, create)
    sales = _seed_flash_sales(store.get("flash_sales", []), create)
    promotions = _seed_marketing(store.get("marketing", {}), create) if marketing else []
    distribution = _seed_distribution(store.get("distribution", {}))
    return [f"{store['store']}: created {created['categories']} categories, {created['products']} products, "
            f"{created['skus']} SKUs, {created['stores']} pickup stores (existing ones kept)",
            f"low stock: {', '.join(low_stock) or 'none'}",
            f"flash sales: {', '.join(sales) or 'none'}",
            f"marketing: {', '.join(promotions) or 'none'}", *distribution]


def _seed_marketing(marketing: dict[str, Any], create: Callable) -> list[str]:
    """The activities (running from the first seeding for `lasts_days`) and coupon templates,
    through the same services as the admin routes; fixed ids keep re-seeding from adding more."""
    from datetime import timedelta

    from chalicelib import clock
    from chalicelib.schemas.activities import CreateActivityBody
    from chalicelib.schemas.coupons import CreateTemplateBody
    from chalicelib.services import activities, coupons

    now, described = clock.now(), []
    for activity in marketing.get("activities", []):  # full_reduction, group_buy (拼团), bargain (砍价)
        terms = {name: value for name, value in activity.items() if name not in ("id", "lasts_days")}
        body = CreateActivityBody.model_validate({
            "kind": "full_reduction", **terms,
            "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=activity["lasts_days"])).isoformat()})
        create("marketing", lambda: activities.create_activity(body, activity_id=activity["id"]))
        described.append(f"{activity['id']} ({activity['name']})")
    for template in marketing.get("coupon_templates", []):
        fields = {name: value for name, value in template.items() if name != "id"}
        body = CreateTemplateBody.model_validate(fields)
        create("marketing", lambda: coupons.create_template(body, template_id=template["id"]))
        described.append(f"{template['id']} ({template['name']}, {template['channel']})")
    return described


def _seed_distribution(distribution: dict[str, Any]) -> list[str]:
    """Commission rates on some products, and a demo distributor: the user the simulator's login
    code `<distributor_login_code>-1` signs in as, created now so its referral code can be shown."""
    import os

    from chalicelib import clock
    from chalicelib.domain.commissions import Rate
    from chalicelib.domain.identity import referral_code_for, user_id_for
    from chalicelib.storage import commissions, users
    from chalicelib.storage.base import ConditionFailed
    from local.wechat_sim.identity import openid_for

    now = clock.now()
    for rate in distribution.get("rates", []):
        commissions.put_rate(rate["product_id"], Rate(rate["level1_permille"], rate["level2_permille"]), now)
    code, appid = distribution.get("distributor_login_code"), os.environ.get("WECHAT_APPID")
    if not code or not appid:
        return []
    openid = openid_for(appid, code)
    user_id = user_id_for(appid, openid)
    try:
        users.upsert_on_login(user_id, openid, None, now)
    except (ConditionFailed, users.OpenidMismatch):
        pass
    rates = ", ".join(f"{r['product_id']} {r['level1_permille'] / 10:g}%+{r['level2_permille'] / 10:g}%"
                      for r in distribution.get("rates", []))
    return [f"distributor: log in with code {code}-1; share referral code {referral_code_for(user_id)} "
            f"(POST /v1/referrals/bind); commissions {rates}"]


def _seed_stores(stores: list[dict[str, Any]], create: Callable) -> None:
    from chalicelib import clock
    from chalicelib.storage import stores as store_table

    for order, shop in enumerate(stores):
        create("stores", lambda: store_table.create_store(
            shop["id"], name=shop["name"], address=shop["address"], hours=shop["hours"], phone=shop.get("phone"),
            sort_order=order, lat=shop.get("lat"), lng=shop.get("lng")))
        for sku_id, units in shop.get("shelf", {}).items():  # the store's POS count, as a first sync would give it
            try:
                store_table.sync_shelf(shop["id"], sku_id, "demo-seed", "demo", delta=None, absolute=units, now=clock.now())
            except store_table.StoreSyncAlreadyApplied:
                pass  # seeded before


def _seed_categories(categories: list[dict[str, Any]], create: Callable) -> dict[str, tuple[str, ...]]:
    from chalicelib.storage import catalog

    paths: dict[str, tuple[str, ...]] = {}
    for category_id, name, parent, level, order, path in _walk(categories):
        paths[category_id] = path
        create("categories", lambda: catalog.create_category(category_id, name, parent, level, order, list(path)))
    return paths


def _seed_products(products: list[dict[str, Any]], paths: dict[str, tuple[str, ...]], create: Callable) -> list[str]:
    from chalicelib import clock
    from chalicelib.storage import catalog

    low_stock = []
    for product in products:
        create("products", lambda: catalog.create_product(
            product["id"], name=product["name"], category_path=list(paths[product["category"]]),
            description=product.get("description"), images=product.get("images", []),
            keywords=product.get("keywords", []), virtual=product.get("virtual", False), now=clock.now(),
            video_url=product.get("video_url"), sales_count=product.get("sales", 0)))
        for sku in product["skus"]:  # each SKU is added with the product's listing, in one transaction
            create("skus", lambda: catalog.create_sku(
                sku["id"], product_id=product["id"], specs=sku["specs"], price_fen=sku["price_fen"],
                stock=sku["stock"], low_stock_threshold=sku.get("low_stock_threshold", 0),
                market_price_fen=sku.get("market_price_fen")))
            if sku["stock"] <= sku.get("low_stock_threshold", 0):
                low_stock.append(f"{product['name']} {'/'.join(sku['specs'].values())} ({sku['stock']} left)")
    return low_stock


def _seed_flash_sales(sales: list[dict[str, Any]], create: Callable) -> list[str]:
    """Each demo flash sale starts when first seeded and runs `lasts_days`; a fixed id keeps
    re-seeding from carving a second one."""
    from datetime import timedelta

    from chalicelib import clock
    from chalicelib.schemas.flash_sales import CreateFlashSaleBody
    from chalicelib.services import flash_sales

    now, described = clock.now(), []
    for sale in sales:
        body = CreateFlashSaleBody.model_validate({
            "sku_id": sale["sku"], "price_fen": sale["price_fen"], "quantity": sale["quantity"],
            "per_user_limit": sale["per_user_limit"], "shards": sale.get("shards", 1), "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=sale.get("lasts_days", 7))).isoformat()})
        create("flash_sales", lambda: flash_sales.create_sale(body, sale_id=sale["id"]))
        described.append(f"{sale['id']} ({sale['quantity']} x {sale['sku']} at {sale['price_fen']} fen)")
    return described
