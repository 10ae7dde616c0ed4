"""The WeChat Pay callback paths: served by api/payments.py and given to WeChat as notify URLs by
services/pay_gateway.py. A module of its own, with no imports, so the API can name them at cold
start without importing the pay gateway."""
V3_NOTIFY_ROUTE = "/v1/payments/wechat/v3/notify"
V2_NOTIFY_ROUTE = "/v1/payments/wechat/notify"
V2_REFUND_NOTIFY_ROUTE = "/v1/payments/wechat/refund-notify"
