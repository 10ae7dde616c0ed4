"""Share posters over HTTP (GET /v1/products/{product_id}/poster): a PNG drawn from the product
and a mini-program code the WeChat simulator made for the sharer's scene, cached in S3 (moto)."""
from __future__ import annotations

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from chalicelib import clock
from chalicelib.domain import posters as rules
from chalicelib.domain.identity import referral_code_for
from chalicelib.storage import catalog, poster_cache
from tests.api.helpers import assert_envelope, call, log_in, sim_call, sim_fault

BUCKET = "test-posters"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def posters(client, demo_store, monkeypatch):
    """The client, the demo store and an empty poster bucket."""
    monkeypatch.setenv("POSTER_BUCKET", BUCKET)
    poster_cache.reset_client()
    poster_cache.ensure_bucket(BUCKET)
    s3 = poster_cache._client()
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    yield client
    poster_cache.reset_client()


def _poster(client, token: str | None, product_id: str = "p-cherry", accept: str | None = "image/png"):
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.http.get(f"/v1/products/{product_id}/poster", headers=headers)


def _json(response) -> dict:
    import json

    return json.loads(response.body)


def _codes(simulator, scene: str | None = None) -> list[dict]:
    return sim_call(simulator, "GET", "/__sim/wxacodes" + (f"?scene={scene}" if scene else ""))["items"]


def _wxacode_calls(simulator) -> int:
    return sim_call(simulator, "GET", "/__sim/stats")["calls"].get("getwxacodeunlimit", 0)


def test_the_poster_is_a_png_with_the_code_the_simulator_made_for_the_sharers_scene(posters, wechat_sim):
    token, user = log_in(posters, "alice-1")
    response = _poster(posters, token)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "image/png"
    assert response.body.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(response.body))
    assert image.format == "PNG" and image.size == (rules.WIDTH, rules.HEIGHT)

    [made] = _codes(wechat_sim)
    assert rules.decode_scene(made["scene"]) == (referral_code_for(user["user_id"]), "p-cherry")
    assert made["page"] == "pages/product/index" and made["env_version"] == "release" and made["check_path"] is True
    # The code drawn on the poster is the simulator's image (deterministic for its arguments).
    from local.wechat_sim.wxacode import _qr_png

    code = Image.open(io.BytesIO(_qr_png(made))).convert("RGB").resize((rules.CODE_SIZE, rules.CODE_SIZE),
                                                                        Image.Resampling.LANCZOS)
    left = rules.WIDTH - rules.PADDING - rules.CODE_SIZE
    top = rules.HEIGHT - rules.PADDING - rules.CODE_SIZE
    drawn = image.convert("RGB").crop((left, top, left + rules.CODE_SIZE, top + rules.CODE_SIZE))
    assert drawn.tobytes() == code.tobytes()


def test_the_same_poster_again_comes_from_s3_without_calling_wechat(posters, wechat_sim):
    token, _ = log_in(posters, "alice-1")
    first = _poster(posters, token)
    assert first.status_code == 200 and _wxacode_calls(wechat_sim) == 1
    key = first.headers["ETag"].strip('"')
    stored = poster_cache._client().get_object(Bucket=BUCKET, Key=poster_cache.object_key(key))["Body"].read()
    assert stored == first.body
    again = _poster(posters, log_in(posters, "alice-2")[0])  # the same sharer, another session
    assert again.status_code == 200 and again.body == first.body and again.headers["ETag"] == first.headers["ETag"]
    assert _wxacode_calls(wechat_sim) == 1  # served from the cache: no second code


def test_each_sharer_and_product_has_a_poster_of_its_own(posters, wechat_sim):
    alice, bob = log_in(posters, "alice-1")[0], log_in(posters, "bob-1")[0]
    keys = {_poster(posters, token, product).headers["ETag"]
            for token, product in ((alice, "p-cherry"), (bob, "p-cherry"), (alice, "p-fuji"))}
    assert len(keys) == 3 and _wxacode_calls(wechat_sim) == 3
    assert len({item["scene"] for item in _codes(wechat_sim)}) == 3


def test_an_unknown_product_is_404_and_nothing_is_asked_of_wechat(posters, wechat_sim):
    token, _ = log_in(posters)
    response = _poster(posters, token, "p-nosuch")
    assert response.status_code == 404
    assert_envelope(_json(response), "product_not_found")
    assert _wxacode_calls(wechat_sim) == 0


def test_an_off_sale_product_is_404_like_its_page(posters, wechat_sim):
    token, _ = log_in(posters)
    catalog.update_product("p-durian", {"on_sale": False}, clock.now())
    response = _poster(posters, token, "p-durian")
    assert response.status_code == 404
    assert_envelope(_json(response), "product_not_found")
    assert call(posters, "GET", "/v1/products/p-durian")[0] == 404  # as the product page answers
    assert _wxacode_calls(wechat_sim) == 0


def test_a_wechat_refusal_is_502_in_the_envelope_and_nothing_is_cached(posters, wechat_sim):
    token, _ = log_in(posters)
    sim_fault(wechat_sim, "getwxacodeunlimit", errcode=40169,
              errmsg="invalid length for scene, or the data is not json string")
    response = _poster(posters, token)
    assert response.status_code == 502
    body = _json(response)
    assert_envelope(body, "wechat_unavailable")
    assert body["Details"] == [{"errcode": 40169}]
    assert poster_cache._client().list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert _poster(posters, token).status_code == 200  # the next request makes it


def test_wechat_failing_to_answer_is_502(posters, wechat_sim):
    token, _ = log_in(posters)
    sim_fault(wechat_sim, "getwxacodeunlimit", http_status=500, errcode=None)
    response = _poster(posters, token)
    assert response.status_code == 502
    assert_envelope(_json(response), "wechat_unavailable")


def test_a_stale_access_token_is_refreshed_once_and_the_poster_made(posters, wechat_sim):
    token, _ = log_in(posters)
    sim_fault(wechat_sim, "getwxacodeunlimit", errcode=40001, errmsg="invalid credential")
    assert _poster(posters, token).status_code == 200
    assert _wxacode_calls(wechat_sim) == 2


def test_a_request_that_does_not_accept_png_is_406_and_any_type_is_png(posters, wechat_sim):
    token, _ = log_in(posters)
    for accept in (None, "application/json", "image/*", "text/html, image/jpeg"):
        response = _poster(posters, token, accept=accept)
        assert response.status_code == 406, accept
        assert_envelope(_json(response), "not_acceptable")
    assert _wxacode_calls(wechat_sim) == 0
    response = _poster(posters, token, accept="text/html, */*;q=0.8")
    assert response.status_code == 200 and response.body.startswith(PNG_SIGNATURE)


def test_a_poster_needs_a_user_token(posters):
    response = _poster(posters, None)
    assert response.status_code == 401
    assert_envelope(_json(response), "unauthorized")


def test_without_a_bucket_the_poster_is_409_not_configured(posters, wechat_sim, monkeypatch):
    monkeypatch.delenv("POSTER_BUCKET")
    token, _ = log_in(posters)
    response = _poster(posters, token)
    assert response.status_code == 409
    assert_envelope(_json(response), "poster_not_configured")


# --- the product's picture --------------------------------------------------------------------

class _PictureServer:
    """A loopback image host that counts its requests."""

    def __init__(self, body: bytes):
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def picture_server():
    image = Image.new("RGB", (900, 600), (20, 160, 60))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    server = _PictureServer(out.getvalue())
    yield server
    server.stop()


def _top_left_colour(png: bytes) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((10, 10))


def test_the_picture_is_fetched_from_an_allowed_host(posters, picture_server, monkeypatch):
    catalog.update_product("p-fuji", {"images": (f"http://{picture_server.host}/fuji.jpg",)}, clock.now())
    monkeypatch.setenv("POSTER_IMAGE_HOSTS", f"img.example.com, {picture_server.host}")
    token, _ = log_in(posters)
    response = _poster(posters, token, "p-fuji")
    assert response.status_code == 200 and picture_server.requests == 1
    red, green, blue = _top_left_colour(response.body)
    assert green > 140 and red < 40 and blue < 80  # the picture's green, not the placeholder


def test_a_picture_on_another_host_is_never_fetched_and_a_placeholder_is_drawn(posters, picture_server, monkeypatch):
    catalog.update_product("p-fuji", {"images": (f"http://{picture_server.host}/fuji.jpg",)}, clock.now())
    monkeypatch.setenv("POSTER_IMAGE_HOSTS", "img.example.com")
    token, _ = log_in(posters)
    response = _poster(posters, token, "p-fuji")
    assert response.status_code == 200 and picture_server.requests == 0
    hue = hashlib.sha256(b"p-fuji").digest()[0]
    expected = Image.new("HSV", (1, 1), (hue, 60, 235)).convert("RGB").getpixel((0, 0))
    assert _top_left_colour(response.body) == expected
