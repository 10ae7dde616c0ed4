"""The simulator's one-time subscribe quota: 43101 without an acceptance, one acceptance used
per delivered message, over real HTTP."""

from __future__ import annotations

import pytest

from local.wechat_sim import start_simulator
from tests.sim.test_wechat_sim import APP_A, APP_B, SECRET_A, SECRET_B, Client, _message


@pytest.fixture(scope="module")
def sim():
    simulator = start_simulator(apps={APP_A: SECRET_A, APP_B: SECRET_B}, subscribe_quota=True)
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    sim.state.reset()
    return Client(sim.base_url)


@pytest.fixture
def user(api):
    """(token, openid) of a logged-in user of APP_A."""
    return api.token()["access_token"], api.login("sub-1")["openid"]


def accept(api, openid, template_id="tmpl_order_shipped", **extra):
    return api.call("POST", "/__sim/subscribe/accept", {"openid": openid, "template_id": template_id, **extra})


def test_a_send_the_user_never_accepted_answers_43101_and_delivers_nothing(api, user):
    token, openid = user
    assert api.send(token, _message(openid)) == {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
    assert api.get("/__sim/messages")["items"] == []
    assert [item["outcome"] for item in api.get("/__sim/subscribe/log")["items"]] == ["refused"]


def test_each_acceptance_is_one_delivered_message(api, user):
    token, openid = user
    assert accept(api, openid, times=2) == (200, {"ok": True, "appid": APP_A, "openid": openid,
                                                  "template_id": "tmpl_order_shipped", "remaining": 2})
    assert api.send(token, _message(openid))["errcode"] == 0
    assert api.send(token, _message(openid))["errcode"] == 0
    assert api.send(token, _message(openid))["errcode"] == 43101
    assert len(api.get("/__sim/messages")["items"]) == 2
    assert api.get(f"/__sim/subscribe/quota?openid={openid}")["items"][0]["remaining"] == 0


def test_quota_is_per_template(api, user):
    token, openid = user
    accept(api, openid, "tmpl_order_paid")
    assert api.send(token, _message(openid))["errcode"] == 43101
    assert api.send(token, _message(openid, template_id="tmpl_order_paid"))["errcode"] == 0


def test_an_invalid_message_uses_no_acceptance(api, user):
    token, openid = user
    accept(api, openid)
    assert api.send(token, _message(openid, data={"thing1": {"value": "字" * 21}}))["errcode"] == 47003
    assert api.get("/__sim/subscribe/quota")["items"][0]["remaining"] == 1


def test_a_faulted_send_uses_no_acceptance(api, user):
    token, openid = user
    accept(api, openid)
    api.post("/__sim/faults", {"endpoint": "subscribe_send", "errcode": -1})
    assert api.send(token, _message(openid))["errcode"] == -1
    assert api.send(token, _message(openid))["errcode"] == 0


@pytest.mark.parametrize("body", [
    {"openid": "never-issued", "template_id": "t"},
    {"template_id": "t"},
    {"openid": "OPENID", "template_id": ""},
    {"openid": "OPENID", "template_id": "t", "times": 0},
    {"openid": "OPENID", "template_id": "t", "times": True},
    {"openid": "OPENID", "template_id": "t", "times": 1001},
    {"openid": "OPENID", "template_id": "t", "appid": "wx_unknown"},
])
def test_an_acceptance_is_validated(api, user, body):
    _, openid = user
    body = {key: openid if value == "OPENID" else value for key, value in body.items()}
    status, answer = api.call("POST", "/__sim/subscribe/accept", body)
    assert status == 400 and answer["ok"] is False
    assert api.get("/__sim/subscribe/quota")["items"] == []


def test_an_acceptance_is_per_app(api, user):
    token, openid = user
    other = api.login("sub-2", appid=APP_B, secret=SECRET_B)["openid"]
    assert accept(api, other, appid=APP_B)[0] == 200
    assert accept(api, other)[0] == 400  # that openid was never issued for APP_A


def test_checking_can_be_switched_off_and_reset_restores_the_start_up_setting(api, user):
    token, openid = user
    assert api.post("/__sim/subscribe/enforce", {"enabled": False}) == {"ok": True, "enforce": False}
    assert api.send(token, _message(openid))["errcode"] == 0
    assert api.get("/__sim/subscribe/log")["items"][0]["enforced"] is False
    api.post("/__sim/reset")
    token, openid = api.token()["access_token"], api.login("sub-3")["openid"]
    assert api.send(token, _message(openid))["errcode"] == 43101
    assert api.call("POST", "/__sim/subscribe/enforce", {"enabled": "yes"})[0] == 400


def test_without_the_knob_the_simulator_records_every_valid_send(api):
    with start_simulator(apps={APP_A: SECRET_A}) as plain:
        client = Client(plain.base_url)
        token, openid = client.token()["access_token"], client.login("sub-4")["openid"]
        assert client.send(token, _message(openid))["errcode"] == 0
        assert client.post("/__sim/subscribe/enforce", {"enabled": True})["enforce"] is True
        assert client.send(token, _message(openid))["errcode"] == 43101
