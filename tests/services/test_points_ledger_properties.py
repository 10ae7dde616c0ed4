"""A property of the points ledger (services/points.py, storage/points.py) on moto: whatever one
user's sequence of sign-ins, grants, orders spending points, cancellations, refunds, days passing
and expiry runs, after every step the account's `balance` == the sum of its lots == the sum of its
ledger entries, no lot is below zero, the lots are those an independent model of the rules
expects, and spending always took the earliest-expiring unexpired lots first.

Points are valid for one month here (POINTS_VALID_MONTHS=1), so a few dozen days see lots expire."""
from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import clock
from chalicelib.domain.points import NotEnoughPoints, recent_expiry_days
from chalicelib.services import points as service
from chalicelib.settings import reset_settings_cache
from chalicelib.storage import points as store
from chalicelib.storage.points import PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord
from tests.storage.order_fixtures import make_order

START = datetime(2026, 1, 5, 10, 0, tzinfo=clock.CHINA_TZ)
PAYABLE_FEN = 10_000

operations = st.lists(st.one_of(
    st.tuples(st.just("sign_in"), st.integers(0, 2)),  # days to move on first (0: again the same day)
    st.tuples(st.just("grant"), st.integers(1, 300)),
    st.tuples(st.just("spend"), st.integers(1, 400)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),  # which order (of those still open)
    st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 1_000)),  # which order, permille of its money
    st.tuples(st.just("advance"), st.integers(1, 40)),  # days
    st.tuples(st.just("expire"), st.integers(0, 0)),
), min_size=1, max_size=18)


@dataclass
class ModelOrder:
    order: object  # storage.orders.Order, with its points_parts
    state: str = "open"  # open -> cancelled, or open -> refunding (partly) -> refunded
    refunded_fen: int = 0


@dataclass
class Model:
    """The rules restated independently of domain/points.py (except the job's window of days)."""
    lots: dict[date, int] = field(default_factory=dict)
    last_sign_in: date | None = None
    streak: int = 0
    orders: list[ModelOrder] = field(default_factory=list)

    @staticmethod
    def expiry_for(today: date) -> date:  # one month's validity: the end of next month
        year, month = (today.year, today.month + 1) if today.month < 12 else (today.year + 1, 1)
        return date(year, month, calendar.monthrange(year, month)[1])

    def add(self, parts: dict[date, int]) -> None:
        for day, points in parts.items():
            self.lots[day] = self.lots.get(day, 0) + points

    def spendable(self, today: date) -> list[tuple[date, int]]:
        return sorted((day, points) for day, points in self.lots.items() if day >= today and points > 0)


def today() -> date:
    return clock.now().astimezone(clock.CHINA_TZ).date()


def apply_extras(extras) -> None:
    if extras:
        store._transact([{"Update": extra.update} for extra in extras])


def empty_points_tables() -> None:
    for model in (PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord):
        with model.batch_write() as batch:
            for item in model.scan(consistent_read=True):
                batch.delete(item)


def check(user_id: str, model: Model) -> None:
    item = store._client().get_item(TableName=PointsAccountRecord.Meta.table_name,
                                    Key={"user_id": {"S": user_id}}, ConsistentRead=True).get("Item") or {}
    account = store.account_from_item(user_id, item)
    balance = int(item["balance"]["N"]) if "balance" in item else 0
    ledger = sum(int(record.delta) for record in PointsEntryRecord.query(user_id, consistent_read=True))
    assert balance == sum(account.lots.values()) == ledger
    assert all(points >= 0 for points in account.lots.values()), account.lots
    assert account.lots == model.lots
    marked = {date.fromisoformat(record.expires_on) for record in PointsExpiryRecord.scan(consistent_read=True)
              if record.user_id == user_id}
    assert {day for day, points in account.lots.items() if points > 0} <= marked  # every lot can expire


def step(user_id: str, model: Model, operation: tuple, advance) -> None:
    kind, *args = operation
    now = clock.now()
    if kind == "sign_in":
        advance(timedelta(days=args[0]))
        day = today()
        result = service.sign_in(user_id)
        if model.last_sign_in == day:
            assert not result.signed_in_now and result.streak == model.streak
            return
        model.streak = model.streak + 1 if model.last_sign_in == day - timedelta(days=1) else 1
        model.last_sign_in = day
        assert result.signed_in_now and result.streak == model.streak
        assert result.points == 5 + (20 if model.streak % 7 == 0 else 0)
        model.add({model.expiry_for(day): result.points})
    elif kind == "grant":
        store.apply(service._earning(user_id, f"grant#{uuid.uuid4().hex}", "grant", args[0], "test", now))
        model.add({model.expiry_for(today()): args[0]})
    elif kind == "spend":
        order_id = f"o{len(model.orders)}"
        available = model.spendable(today())
        try:
            parts, extras = service.redeem(user_id, order_id, store.get_account(user_id), args[0], now)
        except NotEnoughPoints:
            assert args[0] > sum(points for _, points in available)
            return
        # The first to expire first: every unexpired lot before the last one taken is emptied.
        expected, left = {}, args[0]
        for day, points in available:
            if left:
                expected[day] = min(points, left)
                left -= expected[day]
        assert parts == expected and left == 0
        apply_extras(extras)
        model.add({day: -taken for day, taken in parts.items()})
        order = replace(make_order(order_id, {"s1": 1}, user_id=user_id, price_fen=PAYABLE_FEN), points_parts=parts)
        model.orders.append(ModelOrder(order))
    elif kind == "cancel":
        open_orders = [o for o in model.orders if o.state == "open"]
        if not open_orders:
            return
        target = open_orders[args[0] % len(open_orders)]
        apply_extras(service.give_back(target.order, now))
        model.add({day: points for day, points in target.order.points_parts.items() if day >= today()})
        target.state = "cancelled"
    elif kind == "refund":
        refundable = [o for o in model.orders if o.state in ("open", "refunding")]
        if not refundable:
            return
        target = refundable[args[0] % len(refundable)]
        after = min(PAYABLE_FEN, target.refunded_fen + PAYABLE_FEN * args[1] // 1000)
        order = replace(target.order, refunded_fen=target.refunded_fen)
        apply_extras(service.refund_back(order, f"RF{uuid.uuid4().hex}", after, now))
        used = order.points_used
        back = lambda fen: used if fen >= PAYABLE_FEN else used * fen // PAYABLE_FEN  # noqa: E731
        start, end, position = back(target.refunded_fen), back(after), 0
        for day, points in sorted(order.points_parts.items(), reverse=True):  # the longest-lived first
            share = max(0, min(end, position + points) - max(start, position))
            if share and day >= today():
                model.add({day: share})
            position += points
        target.refunded_fen = after
        target.state = "refunded" if after >= PAYABLE_FEN else "refunding"
    elif kind == "advance":
        advance(timedelta(days=args[0]))
    elif kind == "expire":
        service.expire_due()
        for day in recent_expiry_days(today()):
            model.lots.pop(day, None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_the_ledger_always_adds_up_and_spending_takes_the_first_to_expire(aws, monkeypatch, ops):
    monkeypatch.setenv("POINTS_VALID_MONTHS", "1")
    reset_settings_cache()
    empty_points_tables()
    user_id, model = f"prop-{uuid.uuid4().hex[:12]}", Model()
    with clock.frozen_at(START) as advance:
        for operation in ops:
            step(user_id, model, operation, advance)
            check(user_id, model)


# --- money refunded after completion takes back the points it earned -------------------------

def test_a_refund_after_completion_takes_back_what_that_money_earned_once_and_never_below_zero(aws):
    order = replace(make_order("o-done", {"s1": 1}, user_id="u1", price_fen=12_345), status="shipped")
    apply_extras(service.earn_on_completion(order, clock.now()))  # 123 points
    assert service.take_back_earned(order, "RF1", 0, 2_400) == 24  # 123 - 99
    assert service.take_back_earned(order, "RF1", 0, 2_400) == 0  # the same refund again
    spend_to = store.get_account("u1")
    apply_extras(service.redeem("u1", "o-next", spend_to, 90, clock.now())[1])  # 9 left
    assert service.take_back_earned(order, "RF2", 2_400, 12_345) == 9  # 99 due, 9 held
    check("u1", Model(lots={lot: 0 for lot in store.get_account("u1").lots}))
    unearned = [int(entry.delta) for entry in PointsEntryRecord.query("u1", consistent_read=True)
                if entry.kind == "unearn"]
    assert sorted(unearned) == [-24, -9]


def test_a_refund_the_completion_counted_or_an_order_not_completed_takes_nothing_back(aws):
    counted = replace(make_order("o-a", {"s1": 1}, user_id="u1", price_fen=12_345), refunded_fen=2_400)
    apply_extras(service.earn_on_completion(counted, clock.now()))  # 99 points: the refund was counted
    assert service.take_back_earned(counted, "RF1", 0, 2_400) == 0
    assert service.take_back_earned(make_order("o-b", {"s1": 1}, user_id="u1"), "RF2", 0, 1_000) == 0
    assert store.get_account("u1").balance(service.today_in_china()) == 99
