"""Settings of distribution (分销) and profit sharing (分账), read from the environment on each call
(a handful of lookups; a test or an operator changing one needs no cache reset), validated: a
value that is not valid raises DistributionSettingsError, a 409 `distribution_not_configured`
wherever it surfaces (never a 500, never a silent default).

    DISTRIBUTION_LEVELS          0 (off), 1 or 2 (default 2): who earns on an order: the buyer's
                                 referrer (level 1) and that referrer's referrer (level 2)
    COMMISSION_PERMILLE          the store's default level-1 rate, per mille of a line's payable
                                 (default 0: only products with a rate of their own pay commission)
    COMMISSION_L2_PERMILLE       the default level-2 rate (default 0); level 1 + level 2 <= 300
    COMMISSION_FREEZE_DAYS       days after an order's completion before its commission is
                                 available (the after-sales window; default 7)
    COMMISSION_SETTLEMENT        `transfer` (default: withdrawals, paid by a transfer to the WeChat
                                 balance) or `profit_sharing` (split to the distributor by 分账;
                                 needs PROFIT_SHARING=on)
    WITHDRAWAL_MIN_FEN           smallest withdrawal (default 100); WITHDRAWAL_MAX_FEN the largest
                                 (default and at most 199999: WeChat wants the payee's real name
                                 (user_name) from 2,000 yuan, which we do not collect)
    PROFIT_SHARING               `on` or `off` (default): flag v3 prepays for profit sharing. Pay v3
                                 only: a v2 store ignores it (its orders are never flagged, nothing
                                 is split), and COMMISSION_SETTLEMENT=profit_sharing is refused there
    PROFIT_SHARING_STORE_MCHID   the store's receiver (a merchant id), PROFIT_SHARING_STORE_NAME
                                 that merchant's full registered name (WeChat checks it; sent
                                 encrypted) and PROFIT_SHARING_STORE_PERMILLE its share of what was
                                 paid (1-300). All three or none (default: no store receiver)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from chalicelib.domain.commissions import Rate, valid_rate
from chalicelib.errors import Conflict


MAX_WITHDRAWAL_FEN = 199_999  # from 200,000 fen (2,000 yuan) WeChat's transfer needs the payee's real name


class DistributionSettingsError(Conflict):
    code = "distribution_not_configured"


@dataclass(frozen=True)
class DistributionSettings:
    levels: int
    default_rate: Rate
    freeze_days: float
    settlement: str
    withdrawal_min_fen: int
    withdrawal_max_fen: int
    profit_sharing: bool
    store_mchid: str
    store_permille: int
    store_name: str = ""


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DistributionSettingsError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise DistributionSettingsError(f"{name} must be {low}-{high}")
    return value


def load() -> DistributionSettings:
    rate = Rate(_int("COMMISSION_PERMILLE", 0, 0, 300), _int("COMMISSION_L2_PERMILLE", 0, 0, 300))
    if not valid_rate(rate.level1_permille, rate.level2_permille):
        raise DistributionSettingsError("COMMISSION_PERMILLE + COMMISSION_L2_PERMILLE must be at most 300")
    try:
        freeze_days = float(os.environ.get("COMMISSION_FREEZE_DAYS") or 7)
    except ValueError:
        raise DistributionSettingsError("COMMISSION_FREEZE_DAYS must be a number") from None
    if not 0 <= freeze_days <= 90:
        raise DistributionSettingsError("COMMISSION_FREEZE_DAYS must be 0-90")
    settlement = (os.environ.get("COMMISSION_SETTLEMENT") or "transfer").strip().lower()
    sharing = (os.environ.get("PROFIT_SHARING") or "off").strip().lower()
    if settlement not in ("transfer", "profit_sharing") or sharing not in ("on", "off"):
        raise DistributionSettingsError("COMMISSION_SETTLEMENT is transfer or profit_sharing; PROFIT_SHARING on or off")
    v3 = (os.environ.get("WECHAT_PAY_VERSION") or "v3").strip().lower() == "v3"
    if settlement == "profit_sharing" and not (sharing == "on" and v3):
        raise DistributionSettingsError("COMMISSION_SETTLEMENT=profit_sharing needs PROFIT_SHARING=on and Pay v3")
    minimum = _int("WITHDRAWAL_MIN_FEN", 100, 10, MAX_WITHDRAWAL_FEN)
    store_mchid = (os.environ.get("PROFIT_SHARING_STORE_MCHID") or "").strip()
    store_name = (os.environ.get("PROFIT_SHARING_STORE_NAME") or "").strip()
    store_permille = _int("PROFIT_SHARING_STORE_PERMILLE", 0, 0, 300)
    if len({bool(store_mchid), bool(store_name), store_permille > 0}) > 1:
        raise DistributionSettingsError("PROFIT_SHARING_STORE_MCHID, PROFIT_SHARING_STORE_NAME and "
                                        "PROFIT_SHARING_STORE_PERMILLE (> 0) go together: all three or none")
    return DistributionSettings(
        levels=_int("DISTRIBUTION_LEVELS", 2, 0, 2), default_rate=rate, freeze_days=freeze_days,
        settlement=settlement, withdrawal_min_fen=minimum,
        withdrawal_max_fen=_int("WITHDRAWAL_MAX_FEN", MAX_WITHDRAWAL_FEN, minimum, MAX_WITHDRAWAL_FEN),
        profit_sharing=sharing == "on" and v3, store_mchid=store_mchid, store_permille=store_permille,
        store_name=store_name)
