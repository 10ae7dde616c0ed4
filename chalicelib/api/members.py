"""Members: points (balance, lots, history), the daily sign-in, and the merchant's level rules."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(LevelRulesBody, LevelRulesOut, PointsEntryOut, PointsOut, PointsQuery, SignInOut) = lazy_names(
    "chalicelib.schemas.members",
    "LevelRulesBody", "LevelRulesOut", "PointsEntryOut", "PointsOut", "PointsQuery", "SignInOut")

points = lazy_module("chalicelib.services.points")
members = lazy_module("chalicelib.services.members")

api = ApiBlueprint(__name__, tag="members")


@api.route("GET", "/v1/me/points", query=PointsQuery, response=PointsOut, errors=(400, 401, 403),
           summary="Points balance, lots with their expiry (first to expire first) and the ledger, newest first")
def get_points(request: ApiRequest) -> PointsOut:
    view = points.view(request.user_id, request.query.before_ms)
    return PointsOut(
        balance=view.balance, expiring_soon=view.expiring_soon,
        lots=[{"points": held, "expires_at": f"{expires_on.isoformat()}T23:59:59+08:00"} for expires_on, held in view.lots],
        history=[PointsEntryOut(kind=entry.kind, delta=entry.delta, ref=entry.ref, at=clock.to_iso(entry.at),
                                at_ms=int(entry.at.timestamp() * 1000), expired=int(entry.detail.get("expired", 0)))
                 for entry in view.history])


@api.route("POST", "/v1/me/sign-in", response=SignInOut, errors=(401, 403, 409),
           summary="Sign in for today's points (Asia/Shanghai days); again the same day: 200, the same result")
def sign_in(request: ApiRequest) -> SignInOut:
    result = points.sign_in(request.user_id)
    return SignInOut(date=result.date.isoformat(), points=result.points, streak=result.streak,
                     signed_in_now=result.signed_in_now, balance=points.balance(request.user_id))


@api.route("GET", "/v1/admin/member-levels", auth="admin", response=LevelRulesOut,
           summary="Member level rules: spend threshold (lifetime or a window of days) and discount per level")
def get_member_levels(request: ApiRequest) -> LevelRulesOut:
    return _rules_out(*members.level_rules())


@api.route("PATCH", "/v1/admin/member-levels", auth="admin", body=LevelRulesBody, response=LevelRulesOut,
           errors=(400, 409), summary="Change the rules of the levels given (others kept); levels follow at once")
def patch_member_levels(request: ApiRequest) -> LevelRulesOut:
    from chalicelib.domain.members import LevelRule

    changes = [LevelRule(rule.level, rule.threshold_fen, rule.window_days, rule.discount_permille)
               for rule in request.body.levels]
    return _rules_out(*members.change_rules(changes, request.principal.subject))


def _rules_out(rules, version: int) -> LevelRulesOut:
    return LevelRulesOut(levels=[rule.__dict__ for rule in rules], version=version)
