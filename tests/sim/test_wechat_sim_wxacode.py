"""The simulator's wxacode.getUnlimited, over real HTTP: WeChat's checks and errcodes, a real PNG."""
from __future__ import annotations

import io
import json
import urllib.request

import pytest
from PIL import Image

from local.wechat_sim import start_simulator

APP, SECRET = "wx_code_app", "code_secret"
PATH = "/wxa/getwxacodeunlimit"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def sim():
    simulator = start_simulator(apps={APP: SECRET})
    yield simulator
    simulator.stop()


def _post(sim, path: str, body: object) -> tuple[str, bytes]:
    request = urllib.request.Request(sim.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read()


def _token(sim) -> str:
    _, raw = _post(sim, "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": APP, "secret": SECRET})
    return json.loads(raw)["access_token"]


def _code(sim, body: object, token: str | None = None) -> tuple[str, bytes]:
    return _post(sim, f"{PATH}?access_token={token or _token(sim)}", body)


def _errcode(answer: tuple[str, bytes]) -> int:
    content_type, raw = answer
    assert content_type.startswith("application/json"), content_type
    return json.loads(raw)["errcode"]


def test_a_code_is_a_png_of_the_width_asked_for_the_same_each_time(sim):
    body = {"scene": "abc~1.2_x", "page": "pages/product/index", "width": 300}
    content_type, png = _code(sim, body)
    assert content_type == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (300, 300)
    assert _code(sim, body)[1] == png
    assert _code(sim, {**body, "scene": "abc~1.2_y"})[1] != png


def test_widths_are_clamped_as_wechat_does(sim):
    assert Image.open(io.BytesIO(_code(sim, {"scene": "a", "width": 100})[1])).size == (280, 280)
    assert Image.open(io.BytesIO(_code(sim, {"scene": "a", "width": 5000})[1])).size == (1280, 1280)


@pytest.mark.parametrize("body, errcode", [
    ({"scene": "x" * 33}, 40169),
    ({"scene": ""}, 40169),
    ({}, 40169),
    ({"scene": 12345}, 40169),
    ({"scene": "中文"}, 40129),
    ({"scene": "a b"}, 40129),
    ({"scene": "a%20b"}, 40129),
    ({"scene": "a", "page": "/pages/index/index"}, 41030),
    ({"scene": "a", "page": "pages/index/index?x=1"}, 41030),
    ({"scene": "a", "env_version": "beta"}, 40097),
    ({"scene": "a", "width": "430"}, 40097),
    ({"scene": "a", "check_path": "false"}, 40097),
])
def test_wechats_scene_and_argument_rules(sim, body, errcode):
    assert _errcode(_code(sim, body)) == errcode


def test_every_scene_character_wechat_lists_is_taken(sim):
    assert _code(sim, {"scene": "!#$&'()*+,/:;=?@-._~aZ09"})[0] == "image/png"


def test_the_access_token_is_checked(sim):
    assert _errcode(_post(sim, PATH, {"scene": "a"})) == 41001
    assert _errcode(_code(sim, {"scene": "a"}, token="not-a-token")) == 40001


def test_the_codes_made_are_listed_for_tests(sim):
    sim.state.reset()
    _code(sim, {"scene": "listed1", "page": "pages/a/b", "env_version": "trial", "check_path": False})
    request = urllib.request.Request(sim.base_url + "/__sim/wxacodes?scene=listed1")
    with _OPENER.open(request, timeout=5) as response:
        [item] = json.loads(response.read())["items"]
    assert (item["appid"], item["page"], item["env_version"], item["check_path"]) == (APP, "pages/a/b", "trial", False)
