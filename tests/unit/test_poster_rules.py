"""Share posters' pure rules: the scene codec, the price text, the content key, wrapping, and which
picture URLs may be fetched."""
from __future__ import annotations

import dataclasses
import random
import re
import uuid

import pytest

from chalicelib.domain import posters as rules
from chalicelib.domain.identity import referral_code_for, user_id_for
from chalicelib.services.poster_images import allowed

WECHAT_SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")


def _referral(seed: int) -> str:
    return referral_code_for(user_id_for("wx_app", f"openid-{seed}"))


def test_the_alphabet_is_wechats_less_the_query_characters():
    assert len(rules.ALPHABET) == len(set(rules.ALPHABET)) == 77
    assert all(WECHAT_SCENE.match(char) for char in rules.ALPHABET) and not set("#&+=?") & set(rules.ALPHABET)
    assert rules.BASE ** rules.REFERRAL_CHARS >= 2 ** 120 and rules.BASE ** rules.SCENE_MAX >= 2 ** 200


@pytest.mark.parametrize("product_id", ["p-cherry", "p-giftcard", "a", "P_x-1", "p-" + "0" * 20, "p-" + "f" * 20])
def test_a_scene_decodes_to_the_referral_and_the_product(product_id):
    for seed in range(20):
        code = _referral(seed)
        scene = rules.encode_scene(code, product_id)
        assert WECHAT_SCENE.match(scene), scene
        assert rules.decode_scene(scene) == (code, product_id)


def test_generated_product_ids_fill_exactly_32_characters_and_slugs_fewer():
    generator = random.Random(7)
    for _ in range(200):
        code = _referral(generator.randrange(10 ** 9))
        product_id = f"p-{uuid.UUID(int=generator.getrandbits(128)).hex[:20]}"  # as catalog_admin makes them
        scene = rules.encode_scene(code, product_id)
        assert len(scene) == 32 and rules.decode_scene(scene) == (code, product_id)
    assert len(rules.encode_scene(_referral(1), "p-durian")) == 28


@pytest.mark.parametrize("product_id", ["p-" + "a" * 21, "p-ABCDEF0123456789abcd", "twelve-chars", "p.cherry", ""])
def test_an_id_that_fits_neither_form_is_refused(product_id):
    with pytest.raises(rules.SceneError):
        rules.encode_scene(_referral(1), product_id)


def test_a_malformed_referral_code_is_refused():
    with pytest.raises(rules.SceneError):
        rules.encode_scene("not-a-code", "p-cherry")


@pytest.mark.parametrize("scene", ["", "short", "x" * 33, "#" * 32, "~" * 32, "0" * 20 + "a.b", "0" * 21 + "中"])
def test_decoding_refuses_what_encode_never_makes(scene):
    with pytest.raises(rules.SceneError):
        rules.decode_scene(scene)


def test_price_text_is_the_lowest_price_in_yuan_with_qi_when_prices_differ():
    assert rules.price_text([3990]) == "¥39.90"
    assert rules.price_text([6990, 3990]) == "¥39.90起"
    assert rules.price_text([100, 100]) == "¥1.00"
    assert rules.price_text([5]) == "¥0.05"


def test_the_content_key_changes_with_everything_drawn():
    content = rules.PosterContent("p-fuji", "烟台红富士苹果", "¥39.90", "https://img/x.jpg", "S" * 28,
                                  "pages/product/index", "release")
    keys = {content.key}
    for name, value in (("name", "红富士"), ("price", "¥38.90"), ("image_url", None), ("scene", "T" * 28),
                        ("page", "pages/p/i"), ("env_version", "trial"), ("product_id", "p-navel")):
        keys.add(dataclasses.replace(content, **{name: value}).key)
    assert len(keys) == 8 and all(re.fullmatch(r"[a-z2-7]{40}", key) for key in keys)
    assert dataclasses.replace(content).key == content.key


def test_wrap_breaks_by_width_and_ends_an_overflow_with_an_ellipsis():
    def measure(text):
        return 10 * len(text)

    assert rules.wrap("烟台红富士苹果", 100, 2, measure) == ["烟台红富士苹果"]
    assert rules.wrap("一二三四五六七八九十甲乙", 50, 2, measure) == ["一二三四五", "六七八九…"]
    assert rules.wrap("一二三四五六七八九十", 50, 2, measure) == ["一二三四五", "六七八九十"]
    assert rules.wrap("  ", 50, 2, measure) == []


@pytest.mark.parametrize("url, ok", [
    ("https://img.example.com/a.jpg", True),
    ("https://IMG.example.com/a.jpg", True),
    ("http://img.example.com/a.jpg", False),  # plain http only from loopback
    ("https://img.example.com:8443/a.jpg", False),  # the port is part of what is allowed
    ("https://evil.img.example.com/a.jpg", False),
    ("https://img.example.com.evil.net/a.jpg", False),
    ("https://user:pw@img.example.com/a.jpg", False),
    ("https://169.254.169.254/latest/meta-data", False),
    ("file:///etc/passwd", False),
    ("https://img.example.com:notaport/a.jpg", False),
    ("http://127.0.0.1:8099/a.jpg", True),
    ("http://127.0.0.1:8100/a.jpg", False),
    ("", False),
])
def test_only_pictures_on_allowed_hosts_may_be_fetched(url, ok):
    assert allowed(url, frozenset({"img.example.com", "127.0.0.1:8099"})) is ok
