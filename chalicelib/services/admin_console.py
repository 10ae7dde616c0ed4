"""Reads for the merchant console: the dashboard and the product list with stock.

The dashboard reads only what is kept for it already: today's totals from the analytics
counters (one BatchGetItem; Asia/Shanghai day), and counts of a few index partitions with
Select=COUNT on keys (paid orders waiting to ship, after-sales requests waiting for the merchant,
alerts of the last 24 hours). Index counts are eventually consistent and for display only:
nothing decides money or stock from them.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.settings import get_settings
from chalicelib.storage import after_sales, alerts, analytics, orders, products, skus

OPEN_AFTER_SALES = ("requested", "approved", "disputed")
ALERT_KINDS = ("low_stock", "shipping_upload_failed", "refund_failed", "refund_abnormal", "refund_stuck",
               "after_sales_respond_late", "after_sales_review_late", "after_sales_disputed", "pay_mismatch")


def dashboard() -> dict[str, Any]:
    now = clock.now()
    day = now.astimezone(clock.CHINA_TZ).date().isoformat()
    counts = analytics.totals([day]).get(day, {})
    since = now - timedelta(hours=24)
    return {
        "today": {"date": day, "orders": counts.get("orders", 0), "paid_orders": counts.get("paid_orders", 0),
                  "gmv_fen": counts.get("gmv_fen", 0)},
        "pending_shipments": orders.OrderRecord.by_status.count("paid"),
        "open_after_sales": sum(after_sales.AfterSaleRecord.by_status.count(status) for status in OPEN_AFTER_SALES),
        "open_alerts": sum(alerts.AlertRecord.count(kind, alerts.AlertRecord.sort_key >= since.isoformat())
                           for kind in ALERT_KINDS),
    }


def list_products(limit: int, cursor: str | None, category_id: str | None,
                  on_sale: bool | None) -> tuple[list[dict[str, Any]], str | None]:
    secret, scope = get_settings().auth_token_secret, f"admin-products:{category_id}:{on_sale}"
    position = cursors.decode_cursor(cursor, secret, scope)
    if category_id:
        ids, last_key = products.product_ids_in_category(category_id, limit, position)
        page = [products.get_product(product_id) for product_id in ids]
        if on_sale is not None:
            page = [product for product in page if product.on_sale == on_sale]
    else:
        page, last_key = products.scan_products(limit, position, on_sale)
    stock = {sku.sku_id: sku for sku in skus.get_skus([entry.sku_id for p in page for entry in p.skus])}
    items = [{"product_id": p.product_id, "name": p.name, "category_id": p.category_id, "on_sale": p.on_sale,
              "virtual": p.virtual, "images": list(p.images),
              "skus": [_sku(stock[entry.sku_id]) for entry in p.skus if entry.sku_id in stock]} for p in page]
    return items, cursors.encode_cursor(last_key, secret, scope)


def _sku(sku: skus.Sku) -> dict[str, Any]:
    return {"sku_id": sku.sku_id, "specs": sku.specs, "price_fen": sku.price_fen, "on_sale": sku.on_sale,
            "available": sku.available, "reserved": sku.reserved, "sold": sku.sold, "allocated": sku.allocated,
            "low_stock_threshold": sku.low_stock_threshold}
