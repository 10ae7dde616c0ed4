"""Tables `coupon_templates` (one item per template) and `coupon_wallets` (one item per user).

A template is what the merchant defines: terms, validity, how many (`total`) and how many were
handed out (`issued`, a conditional counter), per-user limit and channel. `terms_version` goes
up on every change of the terms (allowed only while nothing is issued): a claim conditions on
the version it snapshotted, so a coupon never carries terms the template no longer has.

A wallet is TWO items per user, keyed by the user: checkout reads both in the same
BatchGetItem as the SKUs (`wallet_keys`, `wallet_from_items`), and the order's TransactWrite
locks its coupons with one Update of the small one (`lock_coupons` & co., each a
`WalletUpdate`). They are split because DynamoDB bills a write by the whole item: the coupons'
terms (names, scopes) are written once, at claim, and never again; what orders change is a few
bytes per coupon.

`coupon_wallets` (what changes):
    user_id   S   the key
    coupons   M   coupon_id -> {status (unused|locked|used), valid_from, valid_to,
                  order_id (locked/used), used_at (used)}; times are epoch seconds (N)
    claims    M   claim key -> coupons claimed (the key is the template_id, or
                  "<template_id>#<year>" for a yearly gift, "<template_id>#<invitee id>" for a
                  share reward): the per-user limit counter, in the same item as the coupons,
                  so the limit is exact
`coupon_terms` (written by claims only):
    user_id   S   the key
    coupons   M   coupon_id -> {template_id, name, kind, threshold_fen, off_fen, rate_permille,
                  cap_fen, scope {category_ids, product_ids, excluded_product_ids} (lists),
                  stack_group, channel, claimed_at}
A claim writes both in one transaction; a coupon seen in one item but not yet in the other (two
eventually consistent reads) is left out of that read.

`expired` is never stored: an unused coupon is expired once now >= valid_to. Claiming keeps the
map bounded (services/coupons.py prunes above PRUNE_ABOVE entries, `prunable`). Coupon ids are
"c" + 16 URL-safe characters, used in expressions through ExpressionAttributeNames only.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from botocore.exceptions import ClientError
from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.domain.coupons import CouponScope, CouponTerms, WalletCoupon
from chalicelib.storage.base import ConditionFailed, FullCopyIndex, TableMeta, condition_failure_as, table_name
from chalicelib.storage.batch_get import batch_get_raw
from chalicelib.storage.users import UserRecord

PRUNE_ABOVE = 200  # a claim into a wallet holding more coupons than this prunes dead ones first
EXPIRED_KEPT_DAYS = 90  # an expired, unused coupon stays visible (status expired) this long
MAX_COUPONS_PER_UPDATE = 20  # one order's coupons; keeps the update expression far below 4 KB


class ScopeAttribute(MapAttribute):
    category_ids = ListAttribute(of=UnicodeAttribute, default=list)
    product_ids = ListAttribute(of=UnicodeAttribute, default=list)
    excluded_product_ids = ListAttribute(of=UnicodeAttribute, default=list)


class ByChannel(FullCopyIndex):
    """Templates by channel: the public list (`claim`) and the gifts (`new_user`, `birthday`)."""
    class Meta(FullCopyIndex.Meta):
        index_name = "by_channel"

    channel = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class CouponTemplateRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("coupon_templates")

    template_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    kind = UnicodeAttribute()  # full_reduction | discount | no_threshold
    threshold_fen = NumberAttribute(default=0)
    off_fen = NumberAttribute(default=0)
    rate_permille = NumberAttribute(default=0)
    cap_fen = NumberAttribute(default=0)  # 0: no cap
    scope = ScopeAttribute(default=dict)
    valid_from = UTCDateTimeAttribute(null=True)  # fixed window...
    valid_to = UTCDateTimeAttribute(null=True)
    valid_days = NumberAttribute(null=True)  # ...or N days from claiming
    claim_from = UTCDateTimeAttribute(null=True)
    claim_to = UTCDateTimeAttribute(null=True)
    total = NumberAttribute()
    issued = NumberAttribute(default=0)
    per_user_limit = NumberAttribute()
    channel = UnicodeAttribute()
    stack_group = UnicodeAttribute(default="default")
    status = UnicodeAttribute()  # active | paused
    terms_version = NumberAttribute(default=1)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    by_channel = ByChannel()


class CouponWalletRecord(Model):
    """Only the key is declared: the maps are written and read raw (see the module docstring)."""
    class Meta(TableMeta):
        table_name = table_name("coupon_wallets")

    user_id = UnicodeAttribute(hash_key=True)


class CouponTermsRecord(Model):
    """The terms of a user's coupons, written at claim (see the module docstring)."""
    class Meta(TableMeta):
        table_name = table_name("coupon_terms")

    user_id = UnicodeAttribute(hash_key=True)


STATE_FIELDS = ("status", "valid_from", "valid_to", "order_id", "used_at")  # in coupon_wallets


# --- templates --------------------------------------------------------------------------------

TERM_FIELDS = ("kind", "threshold_fen", "off_fen", "rate_permille", "cap_fen", "scope", "valid_from", "valid_to",
               "valid_days", "channel", "stack_group")
EDITABLE_FIELDS = ("name", "status", "total", "per_user_limit", "claim_from", "claim_to") + TERM_FIELDS


@dataclass(frozen=True)
class CouponTemplate:
    template_id: str
    name: str
    kind: str
    threshold_fen: int
    off_fen: int
    rate_permille: int
    cap_fen: int
    scope: CouponScope
    valid_from: datetime | None
    valid_to: datetime | None
    valid_days: int | None
    claim_from: datetime | None
    claim_to: datetime | None
    total: int
    issued: int
    per_user_limit: int
    channel: str
    stack_group: str
    status: str
    terms_version: int
    created_at: datetime
    updated_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.issued)

    @property
    def terms(self) -> CouponTerms:
        return CouponTerms(kind=self.kind, threshold_fen=self.threshold_fen, off_fen=self.off_fen,
                           rate_permille=self.rate_permille, cap_fen=self.cap_fen, scope=self.scope,
                           stack_group=self.stack_group)

    def claim_open(self, channel: str, now: datetime) -> bool:
        """What the claim's condition checks, but the count (see claim_coupon)."""
        return (self.status == "active" and self.channel == channel
                and (self.claim_from is None or self.claim_from <= now)
                and (self.claim_to is None or now < self.claim_to)
                and (self.valid_to is None or now < self.valid_to))


def _scope_of(attribute: Any) -> CouponScope:
    data = attribute.as_dict() if isinstance(attribute, MapAttribute) else dict(attribute or {})
    return scope_from(data)


def scope_from(data: Mapping[str, Any]) -> CouponScope:
    return CouponScope(category_ids=frozenset(data.get("category_ids") or ()),
                       product_ids=frozenset(data.get("product_ids") or ()),
                       excluded_product_ids=frozenset(data.get("excluded_product_ids") or ()))


def scope_dict(scope: CouponScope) -> dict[str, list[str]]:
    return {"category_ids": sorted(scope.category_ids), "product_ids": sorted(scope.product_ids),
            "excluded_product_ids": sorted(scope.excluded_product_ids)}


def to_template(record: CouponTemplateRecord) -> CouponTemplate:
    return CouponTemplate(
        template_id=record.template_id, name=record.name, kind=record.kind,
        threshold_fen=int(record.threshold_fen or 0), off_fen=int(record.off_fen or 0),
        rate_permille=int(record.rate_permille or 0), cap_fen=int(record.cap_fen or 0), scope=_scope_of(record.scope),
        valid_from=record.valid_from, valid_to=record.valid_to,
        valid_days=None if record.valid_days is None else int(record.valid_days),
        claim_from=record.claim_from, claim_to=record.claim_to, total=int(record.total), issued=int(record.issued or 0),
        per_user_limit=int(record.per_user_limit), channel=record.channel, stack_group=record.stack_group or "default",
        status=record.status, terms_version=int(record.terms_version or 1), created_at=record.created_at,
        updated_at=record.updated_at)


def _record_values(template: CouponTemplate) -> dict[str, Any]:
    values = {name: getattr(template, name) for name in CouponTemplateRecord.get_attributes()}
    values["scope"] = scope_dict(template.scope)
    return values


def create_template(template: CouponTemplate) -> None:
    """Raises ConditionFailed when the id exists."""
    values = _record_values(template)
    record = CouponTemplateRecord(values.pop("template_id"), **values)
    with condition_failure_as(ConditionFailed):
        record.save(condition=CouponTemplateRecord.template_id.does_not_exist())


def get_template(template_id: str, consistent: bool = False) -> CouponTemplate | None:
    try:
        return to_template(CouponTemplateRecord.get(template_id, consistent_read=consistent))
    except CouponTemplateRecord.DoesNotExist:
        return None


def list_templates(limit: int, cursor: dict[str, Any] | None) -> tuple[list[CouponTemplate], dict[str, Any] | None]:
    """Every template, a page at a time (a Scan: the merchant's list of a small table)."""
    results = CouponTemplateRecord.scan(limit=limit, last_evaluated_key=cursor)
    return [to_template(record) for record in results], results.last_evaluated_key


def templates_of_channel(channel: str) -> list[CouponTemplate]:
    """Every template of a channel (whatever its status), newest first."""
    return [to_template(record) for record in CouponTemplateRecord.by_channel.query(channel, scan_index_forward=False)]


def update_template(template_id: str, changes: Mapping[str, Any], now: datetime, *, terms_version: int | None) -> None:
    """Apply `changes` (EDITABLE_FIELDS; None removes an optional field). Conditions: the
    template exists; a new `total` is not below `issued`; with `terms_version` (the terms
    change), nothing is issued yet and the version is still that one, which is then bumped.
    Raises ConditionFailed."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    actions = [CouponTemplateRecord.updated_at.set(now)]
    for name, value in changes.items():
        attribute = getattr(CouponTemplateRecord, name)
        if name == "scope":
            value = scope_dict(value)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    condition = CouponTemplateRecord.template_id.exists()
    if "total" in changes:
        condition &= CouponTemplateRecord.issued <= changes["total"]
    if terms_version is not None:
        condition &= (CouponTemplateRecord.issued == 0) & (CouponTemplateRecord.terms_version == terms_version)
        actions.append(CouponTemplateRecord.terms_version.add(1))
    with condition_failure_as(ConditionFailed):
        CouponTemplateRecord(template_id).update(actions=actions, condition=condition)


# --- wallets: reading -------------------------------------------------------------------------

@dataclass(frozen=True)
class CouponHistory:
    """What a wallet keeps of a coupon beyond its terms: where it came from and which order has it."""
    channel: str
    claimed_at: datetime
    order_id: str | None
    used_at: datetime | None


@dataclass(frozen=True)
class Wallet:
    user_id: str
    exists: bool
    coupons: tuple[WalletCoupon, ...]  # newest claim first
    history: Mapping[str, CouponHistory]  # by coupon_id
    claims: Mapping[str, int]  # claim key -> coupons claimed

    def get(self, coupon_id: str) -> WalletCoupon | None:
        return next((coupon for coupon in self.coupons if coupon.coupon_id == coupon_id), None)

    def claimed(self, claim_key: str) -> int:
        return self.claims.get(claim_key, 0)


def wallet_keys(user_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(table name, key) of the user's two wallet items, for a BatchGetItem spanning tables
    (storage/batch_get.py's `Key`)."""
    key = {"user_id": {"S": user_id}}
    return [(CouponWalletRecord.Meta.table_name, key), (CouponTermsRecord.Meta.table_name, dict(key))]


def get_wallet(user_id: str, consistent: bool = False) -> Wallet:
    """The wallet (an empty one, `exists=False`, for a user who never had a coupon)."""
    items = batch_get_raw(wallet_keys(user_id), CouponWalletRecord._get_connection().connection, consistent=consistent)
    return wallet_from_items(user_id, items)


def wallet_from_items(user_id: str, items: Mapping[str, list[Mapping[str, Any]]]) -> Wallet:
    """The wallet from a BatchGetItem's answer by table (other tables' items are ignored)."""
    states = items.get(CouponWalletRecord.Meta.table_name) or []
    terms = items.get(CouponTermsRecord.Meta.table_name) or []
    if not states:
        return Wallet(user_id, False, (), {}, {})
    state = decode_item(states[0])
    terms_of = decode_item(terms[0]).get("coupons", {}) if terms else {}
    entries = sorted(((coupon_id, {**terms_of[coupon_id], **entry})
                      for coupon_id, entry in state.get("coupons", {}).items() if coupon_id in terms_of),
                     key=lambda pair: (-pair[1]["claimed_at"], pair[0]))
    return Wallet(user_id=user_id, exists=True,
                  coupons=tuple(_wallet_coupon(coupon_id, entry) for coupon_id, entry in entries),
                  history={coupon_id: _history(entry) for coupon_id, entry in entries},
                  claims={key: int(count) for key, count in state.get("claims", {}).items()})


def _wallet_coupon(coupon_id: str, entry: Mapping[str, Any]) -> WalletCoupon:
    terms = CouponTerms(kind=entry["kind"], threshold_fen=int(entry.get("threshold_fen", 0)),
                        off_fen=int(entry.get("off_fen", 0)), rate_permille=int(entry.get("rate_permille", 0)),
                        cap_fen=int(entry.get("cap_fen", 0)), scope=scope_from(entry.get("scope") or {}),
                        stack_group=entry.get("stack_group") or "default")
    return WalletCoupon(coupon_id=coupon_id, template_id=entry["template_id"], name=entry["name"], terms=terms,
                        status=entry["status"], valid_from=_moment(entry["valid_from"]),
                        valid_to=_moment(entry["valid_to"]))


def _history(entry: Mapping[str, Any]) -> CouponHistory:
    used_at = entry.get("used_at")
    return CouponHistory(channel=entry.get("channel", ""), claimed_at=_moment(entry["claimed_at"]),
                         order_id=entry.get("order_id"), used_at=None if used_at is None else _moment(used_at))


def prunable(wallet: Wallet, now: datetime) -> list[str]:
    """Coupons nothing can bring back: used ones past their validity (a refund returns a coupon
    only while valid) and unused ones expired more than EXPIRED_KEPT_DAYS ago. Locked ones never."""
    dead = []
    for coupon in wallet.coupons:
        if coupon.status == "used" and now >= coupon.valid_to:
            dead.append(coupon.coupon_id)
        elif coupon.status == "unused" and now >= coupon.valid_to + timedelta(days=EXPIRED_KEPT_DAYS):
            dead.append(coupon.coupon_id)
    return dead


def known_users(user_ids: Iterable[str]) -> set[str]:
    """Which of these users exist (one BatchGetItem of their keys per 100)."""
    return {record.user_id for record in UserRecord.batch_get(sorted(set(user_ids)), attributes_to_get=["user_id"])}


def create_wallet(user_id: str) -> bool:
    """Create the empty wallet (both items, together) unless it exists (True when this call created it)."""
    key = {"user_id": {"S": user_id}}
    try:
        CouponWalletRecord._get_connection().connection.dispatch("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": CouponWalletRecord.Meta.table_name,
                     "Item": {**key, "coupons": {"M": {}}, "claims": {"M": {}}},
                     "ConditionExpression": "attribute_not_exists(user_id)"}},
            {"Put": {"TableName": CouponTermsRecord.Meta.table_name, "Item": {**key, "coupons": {"M": {}}},
                     "ConditionExpression": "attribute_not_exists(user_id)"}}]})
    except ClientError as error:  # PynamoDB's dispatch raises it with the reasons parsed
        reasons = getattr(error, "cancellation_reasons", None) or ()
        if any(reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons):
            return False
        raise
    return True


# --- wallets: claiming ------------------------------------------------------------------------

class TemplateRefused(Exception):
    """The template's condition failed: sold out, closed, paused, or its terms changed."""


class ClaimLimitReached(Exception):
    pass


class WalletTooLarge(Exception):
    """The wallet item would exceed DynamoDB's item size."""


class ClaimContended(Exception):
    """The transaction met another on the same item (TransactionConflict): try again."""


def new_coupon_id() -> str:
    return "c" + secrets.token_urlsafe(12)


def coupon_entry(template: CouponTemplate, channel: str, now: datetime) -> dict[str, Any]:
    """The snapshot a claim writes into the wallet: the template's terms, as of now (split
    between the two items by `_split`)."""
    if template.valid_days is not None:
        valid_from, valid_to = now, now + timedelta(days=template.valid_days)
    else:
        valid_from, valid_to = template.valid_from, template.valid_to
    return {"template_id": template.template_id, "name": template.name, "kind": template.kind,
            "threshold_fen": template.threshold_fen, "off_fen": template.off_fen,
            "rate_permille": template.rate_permille, "cap_fen": template.cap_fen,
            "scope": scope_dict(template.scope), "stack_group": template.stack_group, "channel": channel,
            "status": "unused", "valid_from": _epoch(valid_from), "valid_to": _epoch(valid_to),
            "claimed_at": _epoch(now)}


def claim_coupon(template: CouponTemplate, user_id: str, *, channel: str, claim_key: str, limit: int,
                 now: datetime, prune: Iterable[str] = ()) -> tuple[WalletCoupon, CouponHistory]:
    """ONE TransactWrite: the template's `issued + 1` (conditions: issued < total, active, of
    `channel`, in its claim window, not past a fixed validity, terms still `terms_version`) and
    the wallet's new coupon with `claims[claim_key] + 1` (condition: below `limit`), removing
    the `prune` coupons. The wallet must exist (create_wallet).

    Raises TemplateRefused, ClaimLimitReached, WalletTooLarge or ClaimContended."""
    coupon_id, entry = new_coupon_id(), coupon_entry(template, channel, now)
    state, terms = _split(entry)
    record = CouponTemplateRecord
    condition = ((record.issued < record.total) & (record.status == "active") & (record.channel == channel)
                 & (record.terms_version == template.terms_version)
                 & (record.claim_from.does_not_exist() | (record.claim_from <= now))
                 & (record.claim_to.does_not_exist() | (record.claim_to > now))
                 & (record.valid_to.does_not_exist() | (record.valid_to > now)))
    prune = list(prune)
    removes = " REMOVE " + ", ".join(f"#c.#p{i}" for i, _ in enumerate(prune)) if prune else ""
    wallet = WalletUpdate(
        table_name=CouponWalletRecord.Meta.table_name, key=wallet_keys(user_id)[0][1],
        update_expression="SET #c.#new = :coupon, #cl.#ck = if_not_exists(#cl.#ck, :zero) + :one" + removes,
        condition_expression="attribute_exists(user_id) AND (attribute_not_exists(#cl.#ck) OR #cl.#ck < :limit)",
        names={"#c": "coupons", "#new": coupon_id, "#cl": "claims", "#ck": claim_key,
               **{f"#p{i}": old for i, old in enumerate(prune)}},
        values={":coupon": encode(state), ":zero": {"N": "0"}, ":one": {"N": "1"}, ":limit": encode(limit)})
    terms_update = WalletUpdate(
        table_name=CouponTermsRecord.Meta.table_name, key=wallet_keys(user_id)[1][1],
        update_expression="SET #c.#new = :terms" + removes, condition_expression="attribute_exists(user_id)",
        names={"#c": "coupons", "#new": coupon_id, **{f"#p{i}": old for i, old in enumerate(prune)}},
        values={":terms": encode(terms)})
    try:
        with TransactWrite(connection=record._get_connection().connection) as transaction:
            transaction.update(record(template.template_id), actions=[record.issued.add(1)], condition=condition)
            wallet.add_to(transaction)
            terms_update.add_to(transaction)
    except TransactWriteError as error:
        codes = [reason.code if reason else None for reason in error.cancellation_reasons or []]
        if "TransactionConflict" in codes:
            raise ClaimContended() from None
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise TemplateRefused() from None
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise ClaimLimitReached() from None
        if "ValidationError" in codes:  # "Item size has exceeded the maximum allowed size"
            raise WalletTooLarge() from None
        raise
    return _wallet_coupon(coupon_id, entry), _history(entry)


def _split(entry: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A coupon's entry -> (what orders change: coupon_wallets, what never changes: coupon_terms)."""
    return ({name: value for name, value in entry.items() if name in STATE_FIELDS},
            {name: value for name, value in entry.items() if name not in STATE_FIELDS})


# --- wallets: the order's updates -------------------------------------------------------------

@dataclass(frozen=True)
class WalletUpdate:
    """One UpdateItem of a wallet, raw: add it to a transaction (`add_to`, `as_transact_item`)
    or run it alone (`apply`)."""
    table_name: str
    key: dict[str, Any]
    update_expression: str
    condition_expression: str
    names: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)

    def as_request(self) -> dict[str, Any]:
        """The UpdateItem parameters (also the body of a TransactItems `Update`)."""
        request = {"TableName": self.table_name, "Key": self.key, "UpdateExpression": self.update_expression,
                   "ConditionExpression": self.condition_expression, "ExpressionAttributeNames": dict(self.names)}
        if self.values:
            request["ExpressionAttributeValues"] = dict(self.values)
        return request

    def as_transact_item(self) -> dict[str, Any]:
        """For a raw TransactWriteItems call: `TransactItems.append(update.as_transact_item())`."""
        return {"Update": self.as_request()}

    def add_to(self, transaction: TransactWrite) -> None:
        """Add to a PynamoDB TransactWrite, as its own `update()` would (it is sent with the
        other updates, after condition checks, deletes and puts: see `position_in`)."""
        transaction._update_items.append(self.as_request())

    def position_in(self, transaction: TransactWrite) -> int:
        """Its index in the items PynamoDB sends, i.e. in TransactWriteError.cancellation_reasons."""
        before = len(transaction._condition_check_items) + len(transaction._delete_items) + len(transaction._put_items)
        request = self.as_request()
        return before + next(i for i, item in enumerate(transaction._update_items) if item == request)

    def apply(self) -> None:
        """Run it alone, as one conditional UpdateItem. Raises ConditionFailed."""
        try:
            CouponWalletRecord._get_connection().connection.dispatch("UpdateItem", self.as_request())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConditionFailed(f"wallet of {self.key['user_id']['S']}") from None
            raise


def lock_coupons(user_id: str, coupon_ids: Iterable[str], order_id: str, now: datetime) -> WalletUpdate:
    """unused -> locked by `order_id`; condition, for each: unused and valid_from <= now < valid_to."""
    return _coupons_update(user_id, coupon_ids, {"status": "locked", "order_id": order_id}, (),
                           lambda p: f"{p('status')} = :unused AND {p('valid_from')} <= :now AND :now < {p('valid_to')}",
                           {":unused": "unused", ":now": _epoch(now)})


def release_coupons(user_id: str, coupon_ids: Iterable[str], order_id: str) -> WalletUpdate:
    """locked by `order_id` -> unused (the order was cancelled or timed out)."""
    return _coupons_update(user_id, coupon_ids, {"status": "unused"}, ("order_id",),
                           lambda p: f"{p('status')} = :locked AND {p('order_id')} = :order",
                           {":locked": "locked", ":order": order_id})


def use_coupons(user_id: str, coupon_ids: Iterable[str], order_id: str, now: datetime) -> WalletUpdate:
    """locked by `order_id` -> used at `now` (the order was paid)."""
    return _coupons_update(user_id, coupon_ids, {"status": "used", "used_at": _epoch(now)}, (),
                           lambda p: f"{p('status')} = :locked AND {p('order_id')} = :order",
                           {":locked": "locked", ":order": order_id})


def return_coupons(user_id: str, coupon_ids: Iterable[str], order_id: str, now: datetime) -> WalletUpdate:
    """used by `order_id` -> unused, only while still valid (now < valid_to): a full refund."""
    return _coupons_update(user_id, coupon_ids, {"status": "unused"}, ("order_id", "used_at"),
                           lambda p: f"{p('status')} = :used AND {p('order_id')} = :order AND :now < {p('valid_to')}",
                           {":used": "used", ":order": order_id, ":now": _epoch(now)})


def use_released_coupons(user_id: str, coupon_ids: Iterable[str], order_id: str, now: datetime) -> WalletUpdate:
    """unused -> used by `order_id` at `now`: a late payment revives a closed order, whose
    coupons were released. Condition, for each: unused (validity is not asked again: the buyer
    paid while the order held them)."""
    return _coupons_update(user_id, coupon_ids, {"status": "used", "order_id": order_id, "used_at": _epoch(now)}, (),
                           lambda p: f"{p('status')} = :unused", {":unused": "unused"})


FIELD_NAMES = {"status": "#s", "order_id": "#o", "used_at": "#u", "valid_from": "#vf", "valid_to": "#vt"}


def _coupons_update(user_id: str, coupon_ids: Iterable[str], sets: Mapping[str, Any], removes: tuple[str, ...],
                    condition: Callable[[Callable[[str], str]], str], values: Mapping[str, Any]) -> WalletUpdate:
    """The same SET/REMOVE on each coupon, and `condition` (written with p(field) -> its path)
    required of each."""
    ids = sorted(set(coupon_ids))
    if not ids or len(ids) > MAX_COUPONS_PER_UPDATE:
        raise ValueError(f"between 1 and {MAX_COUPONS_PER_UPDATE} coupons, not {len(ids)}")
    names = {"#c": "coupons", **{alias: name for name, alias in FIELD_NAMES.items()}}
    clauses, removed, conditions = [], [], []
    for index, coupon_id in enumerate(ids):
        names[f"#k{index}"] = coupon_id

        def path(name: str, index: int = index) -> str:
            return f"#c.#k{index}.{FIELD_NAMES[name]}"

        clauses += [f"{path(name)} = :set_{name}" for name in sets]
        removed += [path(name) for name in removes]
        conditions.append(f"({condition(path)})")
    expression = "SET " + ", ".join(clauses) + (" REMOVE " + ", ".join(removed) if removed else "")
    used = set(re.findall(r"#\w+", " ".join([expression, *conditions])))  # DynamoDB refuses unused names
    return WalletUpdate(
        table_name=CouponWalletRecord.Meta.table_name, key=wallet_keys(user_id)[0][1], update_expression=expression,
        condition_expression=" AND ".join(conditions),
        names={alias: name for alias, name in names.items() if alias in used},
        values={**{f":set_{name}": encode(value) for name, value in sets.items()},
                **{name: encode(value) for name, value in values.items()}})


# --- DynamoDB's JSON --------------------------------------------------------------------------

def encode(value: Any) -> dict[str, Any]:
    """A plain value (str, int, bool, None, list, dict) in DynamoDB's JSON."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(item) for item in value]}
    if isinstance(value, Mapping):
        return {"M": {str(key): encode(item) for key, item in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's JSON (name -> attribute) -> plain values."""
    return {name: decode(value) for name, value in item.items()}


def decode(value: Mapping[str, Any]) -> Any:
    """An attribute in DynamoDB's JSON -> a plain value (numbers are ints: we store no fractions)."""
    (kind, item), = value.items()
    if kind == "M":
        return {key: decode(inner) for key, inner in item.items()}
    if kind == "L":
        return [decode(inner) for inner in item]
    if kind == "N":
        return int(item)
    if kind == "NULL":
        return None
    if kind == "SS":
        return list(item)
    if kind == "NS":
        return [int(number) for number in item]
    return item


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return clock.from_epoch(int(seconds))
