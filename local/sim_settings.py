"""What the local stack tells the WeChat simulator, and what its banner says about WeChat.

The simulator is a stand-in for WeChat with a demo merchant of its own: the `local` stage's public
demo Pay values and the keys generated in `.local/wechat_pay/`. It is never given the merchant's
Pay settings meant for the app. It used to inherit the app's environment, so a merchant trying
`make run` with their own WECHAT_PAY_CERT_SERIAL in the shell got no stack at all: the simulator
refused a serial that was not its certificate's. Now the app still takes the caller's settings
(the caller's environment wins for the app), the simulator starts on its own, and the banner says
which WeChat the app talks to and whether the simulator will accept what the app signs.

The one app setting the simulator does take is the mini-program's WECHAT_APPID / WECHAT_SECRET,
and only while the app's WECHAT_API_BASE is the simulator: it has to accept the app's logins, and
the app sends it that secret with every login anyway.
"""
from __future__ import annotations

from typing import Mapping

from local.pay_setup import DEMO_PAY_ENV
from local.processes import chalice_stage_env, is_set

BASE_NAMES = ("WECHAT_API_BASE", "WECHAT_PAY_API_BASE")
# A merchant's WeChat Pay account: who they are, their keys, and WeChat's keys for them. (Not the
# version, base URL or notify URL: the simulator serves both versions, and the others are wiring.)
MERCHANT_PAY_NAMES = ("WECHAT_PAY_MCH_ID", "WECHAT_PAY_API_KEY", "WECHAT_PAY_APIV3_KEY", "WECHAT_PAY_PRIVATE_KEY",
                      "WECHAT_PAY_CERT_SERIAL", "WECHAT_PAY_PLATFORM_CERTS", "WECHAT_PAY_PUBLIC_KEY",
                      "WECHAT_PAY_PUBLIC_KEY_ID", "WECHAT_PAY_CLIENT_CERT", "WECHAT_PAY_CLIENT_KEY")
LOGIN_NAMES = ("WECHAT_APPID", "WECHAT_SECRET")
SIM_PREFIX = "WECHAT_SIM_"  # the simulator's own knobs (e.g. WECHAT_SIM_PAY_SIGN_WITH)


def merchant_pay_names(explicit: Mapping[str, str]) -> list[str]:
    """The merchant Pay settings given explicitly (names only: the values are secrets)."""
    return sorted(name for name in explicit
                  if is_set(explicit, name) and name.removesuffix("_SSM") in MERCHANT_PAY_NAMES)


def is_simulator(base: str | None, simulator_url: str) -> bool:
    return (base or "").rstrip("/") == simulator_url


def simulator_pay_env(stage: str) -> dict[str, str]:
    """The simulator's demo merchant: the stage's demo Pay values (what the app gets by default)."""
    stage_env = chalice_stage_env(stage)
    return {name: stage_env.get(name) or value for name, value in DEMO_PAY_ENV.items()}


def simulator_env(*, host: Mapping[str, str], explicit: Mapping[str, str], app_env: Mapping[str, str],
                  simulator_url: str, stage: str) -> dict[str, str]:
    """The simulator's environment: the host's (no app settings), the simulator's own knobs the
    caller gave, its demo merchant, and the app's login credentials if the app logs in through it."""
    env = dict(host)
    env.update({name: value for name, value in explicit.items() if name.startswith(SIM_PREFIX) and value})
    env.update(simulator_pay_env(stage))
    logins = app_env if is_simulator(app_env.get("WECHAT_API_BASE"), simulator_url) else chalice_stage_env(stage)
    env.update({name: logins[name] for name in LOGIN_NAMES if is_set(logins, name)})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wechat_rows(app_env: Mapping[str, str], simulator_url: str, merchant_names: list[str]) -> list[tuple[str, str]]:
    """Banner rows: the simulator, any WeChat base URL that is not the simulator, the merchant's Pay."""
    foreign = [name for name in BASE_NAMES if not is_simulator(app_env.get(name), simulator_url)]
    unused = " (the app does not use it: both base URLs point elsewhere)" if len(foreign) == len(BASE_NAMES) else ""
    rows = [("WeChat simulator", simulator_url + unused)]
    rows += [(name, f"{app_env.get(name, '')} (not the simulator)") for name in foreign]
    if merchant_names:
        rows.append(("WeChat Pay", f"your own {', '.join(merchant_names)}"))
        if "WECHAT_PAY_API_BASE" not in foreign:
            rows += [("", "the simulator keeps its demo merchant and will refuse them: point"),
                     ("", "WECHAT_PAY_API_BASE at your WeChat Pay, or unset them to pay through the simulator")]
    return rows
