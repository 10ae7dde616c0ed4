"""Housekeeping on a schedule."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.services import access_token

bp = Blueprint(__name__)


@bp.schedule(Rate(30, unit=Rate.MINUTES), description="Refresh the shared WeChat access token ahead of expiry")
def refresh_wechat_access_token(event) -> None:
    # Keep at least 40 minutes on the shared token, so no user request waits on WeChat for it.
    access_token.get_access_token(min_remaining_seconds=40 * 60)
