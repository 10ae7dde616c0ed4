"""Creates every table of the stack (idempotent): used by `make tables`, the local stack and tests."""
from __future__ import annotations

from pynamodb.models import Model

from chalicelib.storage.activities import ActivityRecord
from chalicelib.storage.addresses import AddressRecord
from chalicelib.storage.after_sales import AfterSaleRecord, ClaimsRecord
from chalicelib.storage.alerts import AlertRecord
from chalicelib.storage.alert_rules import AlertRuleSetRecord
from chalicelib.storage.analytics import AnalyticsDayRecord, AnalyticsMarkerRecord, CustomerRecord
from chalicelib.storage.admins import AdminRecord
from chalicelib.storage.audit import AuditRecord
from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.categories import CategoryRecord
from chalicelib.storage.commissions import (CommissionAccountRecord, CommissionEntryRecord, CommissionRateRecord,
                                            OrderCommissionRecord)
from chalicelib.storage.consents import ConsentRecord
from chalicelib.storage.events import EventRecord
from chalicelib.storage.coupons import CouponTemplateRecord, CouponTermsRecord, CouponWalletRecord
from chalicelib.storage.credentials import CredentialRecord
from chalicelib.storage.favorites import FavoriteRecord
from chalicelib.storage.group_buys import GroupBuyRecord
from chalicelib.storage.bargains import BargainRecord
from chalicelib.storage.flash_sales import FlashCounterRecord, FlashSaleRecord
from chalicelib.storage.flash_tickets import FlashEntryRecord, FlashTicketRecord
from chalicelib.storage.history import ViewRecord
from chalicelib.storage.idempotency import IdempotencyRecord
from chalicelib.storage.listings import ListingRecord
from chalicelib.storage.members import MemberSpendRecord, StoreSettingRecord
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.payments import PaymentRecord, RefundRecord
from chalicelib.storage.points import PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord
from chalicelib.storage.privacy_audit import DeletionRecord, LoginTombstoneRecord
from chalicelib.storage.profit_sharing import ProfitSharingRecord
from chalicelib.storage.products import ProductRecord
from chalicelib.storage.rate_limits import RateLimitRecord
from chalicelib.storage.reviews import ReviewRecord, ReviewSummaryRecord
from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.skus import SkuRecord
from chalicelib.storage.stock import StockMovementRecord
from chalicelib.storage.stores import StoreRecord, StoreStockRecord
from chalicelib.storage.subscriptions import SubscriptionRecord
from chalicelib.storage.users import BirthdayRecord, UserRecord
from chalicelib.storage.tracking_events import TrackingEventRecord
from chalicelib.storage.waybills import WaybillRecord
from chalicelib.storage.withdrawals import WithdrawalRecord

ALL_MODELS: tuple[type[Model], ...] = (UserRecord, SessionRecord, CredentialRecord, AdminRecord,
                                       IdempotencyRecord, CategoryRecord, ProductRecord, SkuRecord,
                                       ListingRecord, StoreRecord,
                                       AddressRecord, OrderRecord, CartLineRecord,
                                       StockMovementRecord, AlertRecord, PaymentRecord, RefundRecord,
                                       AfterSaleRecord, ClaimsRecord, FlashSaleRecord, FlashCounterRecord,
                                       FlashTicketRecord, FlashEntryRecord, RateLimitRecord,
                                       CouponTemplateRecord, CouponWalletRecord, CouponTermsRecord, ActivityRecord,
                                       BirthdayRecord, ReviewRecord, ReviewSummaryRecord,
                                       FavoriteRecord, ViewRecord, SubscriptionRecord,
                                       ConsentRecord, DeletionRecord, LoginTombstoneRecord,
                                       PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord,
                                       MemberSpendRecord, StoreSettingRecord, StoreStockRecord,
                                       EventRecord, AnalyticsDayRecord, AnalyticsMarkerRecord, CustomerRecord,
                                       AlertRuleSetRecord, WaybillRecord, TrackingEventRecord,
                                       GroupBuyRecord, BargainRecord, AuditRecord,
                                       CommissionAccountRecord, CommissionEntryRecord, OrderCommissionRecord,
                                       CommissionRateRecord, WithdrawalRecord, ProfitSharingRecord)


def create_all_tables() -> list[str]:
    """Create missing tables (on-demand billing; PynamoDB switches on TTL for models with a
    TTLAttribute); returns the names created."""
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
    return created


def delete_all_tables() -> None:
    """Tests only: drop every table of this prefix."""
    for model in ALL_MODELS:
        if model.exists():
            model.delete_table()


def reset_connections() -> None:
    """Forget cached clients, for tools and tests that switch endpoints (moto <-> DynamoDB Local)."""
    for model in ALL_MODELS:
        model._connection = None
