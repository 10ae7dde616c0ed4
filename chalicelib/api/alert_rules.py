"""The merchant's business alert rules (firings are listed by GET /v1/admin/alerts?kind=business_alert)."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AlertRuleOut, AlertRulesBody, AlertRulesOut = lazy_names(
    "chalicelib.schemas.alert_rules", "AlertRuleOut", "AlertRulesBody", "AlertRulesOut")

alert_rules = lazy_module("chalicelib.services.alert_rules")

api = ApiBlueprint(__name__, tag="analytics")


@api.route("GET", "/v1/admin/alert-rules", auth="admin", response=AlertRulesOut,
           summary="Business alert rules (cancel rate, pay success rate, notify failures, dead letters, refund spike)")
def get_alert_rules(request: ApiRequest) -> AlertRulesOut:
    return _out(*alert_rules.current_rules())


@api.route("PATCH", "/v1/admin/alert-rules", auth="admin", body=AlertRulesBody, response=AlertRulesOut,
           errors=(400, 409), summary="Change the rules named (the others kept); 409 if they changed since `version`")
def patch_alert_rules(request: ApiRequest) -> AlertRulesOut:
    changes = [change.model_dump(exclude_none=True) for change in request.body.rules]
    return _out(*alert_rules.change_rules(changes, request.principal.subject, request.body.version))


def _out(rules, version: int) -> AlertRulesOut:
    from chalicelib.domain.alert_rules import WINDOWS

    return AlertRulesOut(rules=[AlertRuleOut(rule=rule.rule, enabled=rule.enabled, threshold=rule.threshold,
                                             min_samples=rule.min_samples, window=WINDOWS[rule.rule])
                                for rule in rules], version=version)
