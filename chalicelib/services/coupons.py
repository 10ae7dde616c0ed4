"""Coupon templates (the merchant's) and coupons (the buyer's): create, change, claim, grant, list.

Every coupon is issued by `issue_coupon`: one TransactWrite counting it on the template
(`issued < total`, open, of the channel) and writing it into the user's wallet item with the
per-user counter (storage/coupons.py). The template is the hot item when many claim at once:
a transaction that meets another (TransactionConflict) is retried a bounded number of times
after a random pause, then answered 503 (the client may retry).
"""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.domain.coupons import WalletCoupon
from chalicelib.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from chalicelib.log import get_logger
from chalicelib.schemas.coupons import (AdminTemplateOut, CouponOut, CreateTemplateBody, GrantReply, GrantResult,
                                        ScopeOut, TemplateOut, UpdateTemplateBody, terms_problems)
from chalicelib.settings import get_settings
from chalicelib.storage import coupons
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.coupons import CouponHistory, CouponTemplate, Wallet

log = get_logger(__name__)

CLAIM_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_MAX_SECONDS = 0.3
MAX_WALLET_COUPONS = 300  # after pruning; past this a claim is refused (409 wallet_full)


# --- the merchant's templates -----------------------------------------------------------------

def create_template(body: CreateTemplateBody, template_id: str | None = None) -> AdminTemplateOut:
    """A new template (a fixed `template_id` is for the demo seed: ConditionFailed if it exists)."""
    now = clock.now()
    values = body.model_dump(exclude={"scope"})
    template = CouponTemplate(
        template_id=template_id or f"tpl-{uuid.uuid4().hex[:16]}", **_normalised(values), scope=coupons.scope_from(
            body.scope.model_dump() if body.scope else {}), issued=0, terms_version=1, created_at=now, updated_at=now)
    coupons.create_template(template)
    log.info("coupon template created", template_id=template.template_id, channel=template.channel)
    return admin_out(template)


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    """Amounts a kind does not use are 0 (absent in the body)."""
    return {**values, **{name: values.get(name) or 0 for name in ("threshold_fen", "off_fen", "rate_permille",
                                                                  "cap_fen")}}


def list_templates(limit: int, cursor: str | None) -> tuple[list[AdminTemplateOut], str | None]:
    secret = get_settings().auth_token_secret
    page, last_key = coupons.list_templates(limit, cursors.decode_cursor(cursor, secret, "coupon-templates"))
    return [admin_out(template) for template in page], cursors.encode_cursor(last_key, secret, "coupon-templates")


def update_template(template_id: str, body: UpdateTemplateBody) -> AdminTemplateOut:
    template = _template(template_id, consistent=True)
    changes = body.model_dump(exclude_unset=True, exclude={"scope"})
    if "scope" in body.model_fields_set:
        changes["scope"] = coupons.scope_from(body.scope.model_dump())
    merged = _merged(template, changes)
    terms = [name for name in coupons.TERM_FIELDS if merged[name] != getattr(template, name)]
    write = {name: merged[name] for name in [*changes, *terms] if name not in coupons.TERM_FIELDS or name in terms}
    if template.issued > merged["total"]:
        raise Conflict(f"total may not go below the {template.issued} already issued", code="total_below_issued")
    if terms and template.issued > 0:
        raise _in_use(template)
    if not write:
        return admin_out(template)
    try:
        coupons.update_template(template_id, write, clock.now(), terms_version=template.terms_version if terms else None)
    except ConditionFailed:  # issued or the terms moved meanwhile
        current = _template(template_id, consistent=True)
        if terms and current.issued > 0:
            raise _in_use(current) from None
        if current.issued > merged["total"]:
            raise Conflict(f"total may not go below the {current.issued} already issued",
                           code="total_below_issued") from None
        raise Conflict("The template changed meanwhile; read it and try again", code="coupon_template_changed") from None
    log.info("coupon template changed", template_id=template_id, fields=sorted(write))
    return admin_out(_template(template_id, consistent=True))


def _merged(template: CouponTemplate, changes: dict[str, Any]) -> dict[str, Any]:
    """Every editable field as it would be, checked whole. Switching kind or validity mode
    drops what the new one does not use."""
    merged = {name: getattr(template, name) for name in coupons.EDITABLE_FIELDS}
    if "kind" in changes:
        merged.update(threshold_fen=0, off_fen=0, rate_permille=0, cap_fen=0)
    if "valid_days" in changes:
        merged.update(valid_from=None, valid_to=None)
    elif {"valid_from", "valid_to"} & set(changes):
        merged["valid_days"] = None
    merged.update(_normalised(changes) if "kind" in changes else changes)
    problems = terms_problems(merged)
    if problems:
        raise ValidationFailed(details=problems)
    return merged


def _in_use(template: CouponTemplate) -> Conflict:
    return Conflict(f"{template.issued} coupons were issued with these terms; create a new template instead",
                    code="coupon_template_in_use")


def grant(template_id: str, user_ids: list[str]) -> GrantReply:
    """Hand a `grant` template's coupons to users (each within the total and their limit)."""
    template = _template(template_id)
    if template.channel != "grant":
        raise Conflict("Only templates of channel grant can be granted", code="coupon_template_not_grantable",
                       details=[{"field": "channel", "message": template.channel}])
    wanted = list(dict.fromkeys(user_ids))
    known = coupons.known_users(wanted)
    results, sold_out = [], False
    for user_id in wanted:
        code, coupon = ("user_not_found", None) if user_id not in known else (
            ("coupon_sold_out", None) if sold_out else _try_issue(user_id, template))
        sold_out = sold_out or code == "coupon_sold_out"
        results.append(GrantResult(user_id=user_id, granted=coupon is not None, code=code,
                                   coupon_id=coupon.coupon_id if coupon else None))
    granted = sum(result.granted for result in results)
    log.info("coupons granted", template_id=template_id, granted=granted, asked=len(wanted))
    return GrantReply(granted=granted, results=results)


def _try_issue(user_id: str, template: CouponTemplate) -> tuple[str | None, WalletCoupon | None]:
    """One user's grant, from the template as read once for the whole grant (the claim's own
    condition still decides). Any failure is that user's result, so the reply lists every
    coupon already given."""
    try:
        return None, issue_coupon(user_id, template.template_id, channel="grant", template=template)[0]
    except (Conflict, NotFound, ServiceUnavailable) as error:
        return error.code, None
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("grant failed for one user", template_id=template.template_id, user_id=user_id)
        return "failed", None


# --- the buyer's coupons ----------------------------------------------------------------------

def claimable_templates() -> list[TemplateOut]:
    """Templates of channel `claim` open for claiming now (sold-out ones too, with remaining 0)."""
    now = clock.now()
    return [template_out(template) for template in coupons.templates_of_channel("claim")
            if template.claim_open("claim", now)]


def claim(user_id: str, template_id: str) -> CouponOut:
    coupon, history = issue_coupon(user_id, template_id, channel="claim")
    return coupon_out(coupon, history, clock.now())


def my_coupons(user_id: str, status: str | None) -> list[CouponOut]:
    now, wallet = clock.now(), coupons.get_wallet(user_id, consistent=True)  # a coupon just claimed shows
    items = [coupon_out(coupon, wallet.history[coupon.coupon_id], now) for coupon in wallet.coupons]
    return [item for item in items if status is None or item.status == status]


def issue_coupon(user_id: str, template_id: str, *, channel: str, claim_key: str | None = None,
                 limit: int | None = None, wallet: Wallet | None = None,
                 template: CouponTemplate | None = None) -> tuple[WalletCoupon, CouponHistory]:
    """Claim one coupon of the template for the user through `channel`, counted under
    `claim_key` (default: the template id) against `limit` (default: the template's per-user
    limit; the share reward counts 1 per invitee).

    `wallet` and `template` may be given as the caller read them (eventually consistent is
    fine: the transaction's conditions decide). Raises NotFound, Conflict (coupon_sold_out,
    claim_not_open, claim_limit_reached, wallet_full) or ServiceUnavailable."""
    now = clock.now()
    wallet = wallet or coupons.get_wallet(user_id)
    wallet_exists = wallet.exists
    for attempt in range(CLAIM_ATTEMPTS):
        if template is None or attempt > 0:
            template = coupons.get_template(template_id, consistent=attempt > 0)
        if template is None and attempt == 0:  # just created, and not yet in the replica read?
            template = coupons.get_template(template_id, consistent=True)
        key = claim_key or template_id
        _check_claimable(template, template_id, channel, now)
        key_limit = template.per_user_limit if limit is None else limit
        if wallet.claimed(key) >= key_limit:
            raise _limit_reached(template)
        if not wallet_exists:
            coupons.create_wallet(user_id)
            wallet_exists = True
        prune = coupons.prunable(wallet, now) if len(wallet.coupons) > coupons.PRUNE_ABOVE else []
        if len(wallet.coupons) - len(prune) >= MAX_WALLET_COUPONS:
            raise _wallet_full()
        try:
            return coupons.claim_coupon(template, user_id, channel=channel, claim_key=key,
                                        limit=key_limit, now=now, prune=prune)
        except coupons.TemplateRefused:
            continue  # read it again, consistently: the checks above say why, or it is retried
        except coupons.ClaimContended:
            time.sleep(random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)))
        except coupons.ClaimLimitReached:
            raise _limit_reached(template) from None
        except coupons.WalletTooLarge:
            raise _wallet_full() from None
    log.warning("coupon claim gave up after retries", template_id=template_id)
    raise ServiceUnavailable("Many are claiming this coupon right now; try again")


def _check_claimable(template: CouponTemplate | None, template_id: str, channel: str, now: datetime) -> None:
    if template is None:
        raise NotFound("No such coupon template", code="coupon_template_not_found",
                       details=[{"field": "template_id", "message": template_id}])
    if not template.claim_open(channel, now):
        raise Conflict("This coupon cannot be claimed now", code="claim_not_open",
                       details=[{"template_id": template_id, "status": template.status,
                                 "claim_from": _iso(template.claim_from), "claim_to": _iso(template.claim_to)}])
    if template.remaining == 0:
        raise Conflict("All of these coupons have been claimed", code="coupon_sold_out",
                       details=[{"template_id": template_id}])


def _limit_reached(template: CouponTemplate) -> Conflict:
    return Conflict(f"At most {template.per_user_limit} of this coupon per person", code="claim_limit_reached",
                    details=[{"template_id": template.template_id, "per_user_limit": template.per_user_limit}])


def _wallet_full() -> Conflict:
    return Conflict("Too many coupons held; use some first", code="wallet_full")


def _template(template_id: str, consistent: bool = False) -> CouponTemplate:
    template = coupons.get_template(template_id, consistent=consistent)
    if template is None:
        raise NotFound("No such coupon template", code="coupon_template_not_found")
    return template


# --- answers ----------------------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return clock.to_iso(moment) if moment else None


def template_out(template: CouponTemplate) -> TemplateOut:
    return TemplateOut(
        template_id=template.template_id, name=template.name, kind=template.kind,
        threshold_fen=template.threshold_fen, off_fen=template.off_fen, rate_permille=template.rate_permille,
        cap_fen=template.cap_fen, scope=ScopeOut(**coupons.scope_dict(template.scope)),
        valid_from=_iso(template.valid_from), valid_to=_iso(template.valid_to), valid_days=template.valid_days,
        claim_from=_iso(template.claim_from), claim_to=_iso(template.claim_to), remaining=template.remaining,
        per_user_limit=template.per_user_limit, stack_group=template.stack_group)


def admin_out(template: CouponTemplate) -> AdminTemplateOut:
    return AdminTemplateOut(**template_out(template).model_dump(), total=template.total, issued=template.issued,
                            channel=template.channel, status=template.status,
                            created_at=clock.to_iso(template.created_at), updated_at=clock.to_iso(template.updated_at))


def coupon_out(coupon: WalletCoupon, history: CouponHistory, now: datetime) -> CouponOut:
    terms = coupon.terms
    status = "expired" if coupon.status == "unused" and coupon.is_expired(now) else coupon.status
    return CouponOut(
        coupon_id=coupon.coupon_id, template_id=coupon.template_id, name=coupon.name, kind=terms.kind,
        threshold_fen=terms.threshold_fen, off_fen=terms.off_fen, rate_permille=terms.rate_permille,
        cap_fen=terms.cap_fen, scope=ScopeOut(**coupons.scope_dict(terms.scope)), stack_group=terms.stack_group,
        status=status, valid_from=clock.to_iso(coupon.valid_from), valid_to=clock.to_iso(coupon.valid_to),
        channel=history.channel, claimed_at=clock.to_iso(history.claimed_at), order_id=history.order_id,
        used_at=_iso(history.used_at))
