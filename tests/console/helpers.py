"""What the console tests and `make screenshots` share: the browser, logging in, paid orders."""
from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

from local.chromium import LAUNCH_FLAGS
from tests.e2e.test_stack_flows import http

VIEWPORT = {"width": 1280, "height": 860}


@contextlib.contextmanager
def chromium_context(executable: Path) -> Iterator[Any]:
    """Headless Debian Chromium with a throwaway profile, in Beijing time and Chinese."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="console-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(executable), headless=True, args=[*LAUNCH_FLAGS, "--lang=zh-CN"], viewport=VIEWPORT,
            locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()


def log_in(page: Any, stack: Any, password: str | None = None) -> None:
    """Log in through the login page; with the right password, wait for the dashboard."""
    from playwright.sync_api import expect

    page.goto(f"{stack.api_url}/console/")
    page.get_by_label("账号").fill(stack.env["ADMIN_USERNAME"])
    page.get_by_label("密码").fill(password or stack.env["ADMIN_PASSWORD"])
    page.get_by_role("button", name="登录").click()
    if password is None:
        expect(page.get_by_role("heading", name="概览")).to_be_visible()


def admin_token(stack: Any) -> str:
    return http("POST", f"{stack.api_url}/v1/admin/auth/login", {"username": stack.env["ADMIN_USERNAME"],
                                                               "password": stack.env["ADMIN_PASSWORD"]})[1]["token"]


ADDRESS = {"name": "王小明", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路1号"}


def paid_order(stack: Any, sku_id: str = "sku-navel-5", quantity: int = 1, *,
               items: list[tuple[str, int]] | None = None, express: bool = False) -> tuple[dict, str]:
    """An order paid through the simulator, as the mini-program would (picked up at a store, or
    delivered by express to ADDRESS); (order, buyer token)."""
    api = stack.api_url
    token = http("POST", f"{api}/v1/auth/login", {"code": f"console-{uuid.uuid4().hex[:10]}"})[1]["token"]
    body: dict[str, Any] = {"items": [{"sku_id": sku, "quantity": units} for sku, units in items or [(sku_id, quantity)]],
                            "checkout_token": f"console-{uuid.uuid4().hex[:12]}"}
    if express:
        body["address_id"] = http("POST", f"{api}/v1/addresses", ADDRESS, token=token)[1]["address_id"]
    else:
        body.update(delivery_method="pickup", store_id="store-xuhui")
    status, order = http("POST", f"{api}/v1/orders", body, token=token)
    assert status == 201, order
    params = http("POST", f"{api}/v1/orders/{order['order_id']}/pay", token=token)[1]
    status, paid = http("POST", f"{stack.wechat_sim_url}/__sim/pay/request-payment", {**params, "wait": True})
    assert status == 200 and paid["ok"], paid
    return order, token
