"""The Chalice app: creates it and registers the blueprints. No routes, no logic here.

Importing this module is every Lambda's cold start. The blueprints register every route and
handler, but import the services behind them on first use (chalicelib/lazy.py).
"""
from chalice import Chalice

from chalicelib import log
from chalicelib.api import addresses, auth, me, openapi
from chalicelib.api import admin_catalog, catalog
from chalicelib.api import admin_orders, admin_stock, cart, orders, payments
from chalicelib.api import admin_after_sales, after_sales
from chalicelib.api import admin_flash_sales, flash_sales
from chalicelib.api import admin_marketing, coupons, referrals
from chalicelib.api import bargains, group_buys
from chalicelib.api import posters
from chalicelib.api import admin_withdrawals, commissions
from chalicelib.api import favorites
from chalicelib.api import reviews
from chalicelib.api import members, privacy, subscriptions
from chalicelib.api import alert_rules, events, reports
from chalicelib.jobs import maintenance, notifications, orders as order_jobs, payments as payment_jobs
from chalicelib.jobs import flash_sales as flash_sale_jobs, shipping as shipping_jobs
from chalicelib.jobs import marketing as marketing_jobs, members as member_jobs
from chalicelib.jobs import analytics as analytics_jobs
from chalicelib.api import tracking, waybills
from chalicelib.api import admin_accounts, admin_order_ops, admin_store_setup
from chalicelib.api import console
from chalicelib.jobs import logistics as logistics_jobs
from chalicelib.jobs import group_buys as group_buy_jobs
from chalicelib.jobs import commissions as commission_jobs

app = Chalice(app_name="wechat-store")
log.configure()

for api_module in (openapi, auth, me, addresses, catalog, admin_catalog, cart, orders,
                   admin_orders, admin_stock, payments, after_sales, admin_after_sales, flash_sales, admin_flash_sales,
                   coupons, admin_marketing, referrals, posters, reviews, favorites, members, privacy, subscriptions,
                   events, reports, alert_rules, waybills, tracking, console,
                   admin_accounts, admin_order_ops, admin_store_setup, commissions, admin_withdrawals,
                   group_buys, bargains):
    app.register_blueprint(api_module.api.blueprint)
for job_module in (notifications, maintenance, order_jobs, payment_jobs, shipping_jobs, flash_sale_jobs,
                   marketing_jobs, member_jobs, analytics_jobs, logistics_jobs, group_buy_jobs, commission_jobs):
    app.register_blueprint(job_module.bp)
