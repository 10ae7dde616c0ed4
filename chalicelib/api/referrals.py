"""Referral binding (API.md, "Marketing, members and social commerce")."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
ReferralBindBody, ReferralBinding = lazy_names(
    "chalicelib.schemas.referrals", "ReferralBindBody", "ReferralBinding")

referrals = lazy_module("chalicelib.services.referrals")

api = ApiBlueprint(__name__, tag="marketing")


@api.route("POST", "/v1/referrals/bind", body=ReferralBindBody, response=ReferralBinding,
           errors=(400, 401, 403, 404, 409),
           summary="Bind to the user whose referral code this is: the first binding wins and never changes "
                   "(the same again answers it; 409 already_bound, cannot_refer_self, not_a_new_user after "
                   "the first 24 h; 404 referrer_not_found)")
def bind_referrer(request: ApiRequest) -> ReferralBinding:
    body = request.body
    return ReferralBinding.of(referrals.bind(request.user_id, body.referrer_code, scene=body.scene))
