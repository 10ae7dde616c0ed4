"""The logged-in user's own profile."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
PhoneBody, PrivacyConsentBody, ProfilePatch, UserProfile = lazy_names(
    "chalicelib.schemas.users", "PhoneBody", "PrivacyConsentBody", "ProfilePatch", "UserProfile")

profiles = lazy_module("chalicelib.services.profiles")

api = ApiBlueprint(__name__, tag="me")


@api.route("GET", "/v1/me", response=UserProfile, errors=(401, 403),
           summary="The user: id, nickname, avatar, member level, points")
def get_me(request: ApiRequest) -> UserProfile:
    return UserProfile.of(profiles.with_standing(profiles.get_profile(request.user_id)))


@api.route("PATCH", "/v1/me", body=ProfilePatch, response=UserProfile, errors=(400, 401, 403, 409),
           summary="Change nickname and avatar (from <button open-type=\"chooseAvatar\"> after upload); "
                   "set the birthday (once)")
def patch_me(request: ApiRequest) -> UserProfile:
    avatar = str(request.body.avatar_url) if request.body.avatar_url is not None else None
    user = profiles.update_profile(request.user_id, nickname=request.body.nickname, avatar_url=avatar,
                                   birthday=request.body.birthday)
    return UserProfile.of(profiles.with_standing(user))


@api.route("POST", "/v1/me/phone", body=PhoneBody, response=UserProfile, errors=(400, 401, 403, 429, 502),
           summary="Bind the phone number from a getPhoneNumber code (answers it masked)")
def bind_phone(request: ApiRequest) -> UserProfile:
    return UserProfile.of(profiles.with_standing(profiles.bind_phone_number(request.user_id, request.body.code)))


@api.route("POST", "/v1/me/privacy-consent", body=PrivacyConsentBody, response=UserProfile, errors=(400, 401, 403),
           summary="Record that the user agreed to a version of the privacy policy")
def consent_to_privacy(request: ApiRequest) -> UserProfile:
    return UserProfile.of(profiles.with_standing(profiles.record_privacy_consent(request.user_id, request.body.version)))
