"""`make screenshots`: PNGs of the console's main pages under docs/console/, on a fresh local stack
with a few orders in every state a merchant acts on.

    python -m tests.console.screenshots [--out docs/console]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import expect

from local.chromium import install
from local.processes import ROOT
from local.stack import LocalStack
from tests.console.helpers import admin_token, chromium_context, log_in, paid_order
from tests.e2e.test_stack_flows import http

PAGES = [  # (file, hash route, wait for this text, whole page)
    ("dashboard", "#/dashboard", "待审核售后", False),
    ("products", "#/products", "烟台红富士苹果", False),
    ("orders", "#/orders", "门店自提", False),
    ("order-detail", None, "顾客要求工作日白天送达", True),
    ("after-sales", "#/after-sales?status=", "买错规格了", False),
    ("marketing", "#/marketing", "满¥200.00减¥20.00", True),
]


def seed_orders(stack: LocalStack) -> str:
    """Paid, shipped and refund-requested orders; answers the shipped order's id."""
    api, admin = stack.api_url, admin_token(stack)
    for sku in ("sku-navel-5", "sku-fuji-10", "sku-cherry-1kg"):
        paid_order(stack, sku_id=sku, quantity=2 if sku == "sku-fuji-10" else 1)
    shipped, _ = paid_order(stack, items=[("sku-fuji-5", 2), ("sku-navel-5", 1)], express=True)
    order_path = f"{api}/v1/admin/orders/{shipped['order_id']}"
    for path, body in ((f"{order_path}/remarks", {"text": "顾客要求工作日白天送达"}),
                       (f"{order_path}/shipments", {"lines": [{"sku_id": "sku-fuji-5", "quantity": 2}],
                                                    "carrier": "顺丰速运", "tracking_no": "SF1234567890"}),
                       (f"{order_path}/shipments", {"lines": [{"sku_id": "sku-navel-5", "quantity": 1}],
                                                    "carrier": "中通快递", "tracking_no": "ZT9876543210"})):
        status, reply = http("POST", path, body, token=admin)
        assert status in (200, 201), reply
    for reason in ("买错规格了", "收货地址填错"):
        order, buyer = paid_order(stack, sku_id="sku-navel-10")
        status, body = http("POST", f"{api}/v1/orders/{order['order_id']}/after-sales", {"kind": "refund", "reason": reason},
                            token=buyer)
        assert status == 201, body
    return shipped["order_id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    executable = install()
    with LocalStack() as stack, chromium_context(executable) as context:
        shipped_id = seed_orders(stack)
        page = context.new_page()
        log_in(page, stack)
        for name, route, marker, full_page in PAGES:
            page.goto(f"{stack.api_url}/console/{route or '#/orders/' + shipped_id}")
            page.get_by_text(marker).first.wait_for()
            expect(page.get_by_text("加载中…")).to_have_count(0)  # every list on the page loaded
            path = args.out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            print(f"screenshots: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
