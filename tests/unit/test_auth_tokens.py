from __future__ import annotations

import pytest

from chalicelib.domain.auth_tokens import (ExpiredToken, InvalidToken, TokenClaims, issue_token,
                                           verify_token)

SECRET = "s" * 40
CLAIMS = TokenClaims(session_id="sid1", subject="u1", role="user", issued_at=1_000, expires_at=2_000)


def test_a_token_verifies_to_the_claims_it_was_issued_with():
    assert verify_token(issue_token(CLAIMS, SECRET), SECRET, now_epoch=1_500) == CLAIMS


def test_a_token_is_expired_at_its_expiry_second():
    with pytest.raises(ExpiredToken):
        verify_token(issue_token(CLAIMS, SECRET), SECRET, now_epoch=2_000)


def test_another_secret_does_not_verify():
    with pytest.raises(InvalidToken):
        verify_token(issue_token(CLAIMS, SECRET), "t" * 40, now_epoch=1_500)


def test_changing_any_character_of_the_payload_breaks_the_signature():
    token = issue_token(CLAIMS, SECRET)
    version, payload, signature = token.split(".")
    for index in range(len(payload)):
        changed = payload[:index] + ("A" if payload[index] != "A" else "B") + payload[index + 1:]
        with pytest.raises(InvalidToken):
            verify_token(f"{version}.{changed}.{signature}", SECRET, now_epoch=1_500)


@pytest.mark.parametrize("token", ["", "v1", "v1.a", "v2.a.b", "v1.a.b.c", "v1.!!.??"])
def test_malformed_tokens_are_invalid(token):
    with pytest.raises(InvalidToken):
        verify_token(token, SECRET, now_epoch=1_500)


def test_an_unknown_role_is_invalid_even_when_signed():
    token = issue_token(TokenClaims("s", "u", "root", 1_000, 2_000), SECRET)
    with pytest.raises(InvalidToken):
        verify_token(token, SECRET, now_epoch=1_500)
