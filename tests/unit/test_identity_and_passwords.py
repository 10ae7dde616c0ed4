from __future__ import annotations

from chalicelib.domain.identity import mask_phone, user_id_for
from chalicelib.domain.passwords import hash_password, verify_password


def test_user_id_is_stable_per_app_and_openid_and_hides_the_openid():
    first = user_id_for("wx1", "oABC")
    assert first == user_id_for("wx1", "oABC")
    assert first != user_id_for("wx2", "oABC") != user_id_for("wx1", "oABD")
    assert "oABC" not in first and first.startswith("u") and len(first) == 25


def test_phone_numbers_are_masked_to_first_three_and_last_four_digits():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone(None) is None
    assert mask_phone("12345") == "*****"


def test_a_password_verifies_only_against_its_own_hash():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert hash_password("correct horse") != stored  # salted


def test_a_malformed_stored_hash_never_verifies():
    for stored in ("", "scrypt$1$2", "md5$x$y$z$a$b", "scrypt$x$8$1$AAAA$BBBB"):
        assert not verify_password("anything", stored)
