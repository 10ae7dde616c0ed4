from __future__ import annotations

import pytest

from chalicelib.domain.cursors import InvalidCursor, decode_cursor, encode_cursor

SECRET = "k" * 40
KEY = {"order_id": {"S": "o1"}, "user_id": {"S": "u1"}, "created_at": {"S": "2026-12-02T01:00:00.000000+0000"}}


def test_a_cursor_round_trips_in_its_own_list():
    cursor = encode_cursor(KEY, SECRET, "orders:u1")
    assert decode_cursor(cursor, SECRET, "orders:u1") == KEY


def test_no_position_means_no_cursor():
    assert encode_cursor(None, SECRET, "s") is None and decode_cursor(None, SECRET, "s") is None


def test_a_cursor_from_another_users_list_is_refused():
    cursor = encode_cursor(KEY, SECRET, "orders:u1")
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, SECRET, "orders:u2")


@pytest.mark.parametrize("cursor", ["", "!!!", "abc", "e30", "A" * 40])
def test_garbage_or_tampered_cursors_are_400(cursor):
    if not cursor:
        assert decode_cursor(cursor, SECRET, "s") is None
        return
    with pytest.raises(InvalidCursor) as error:
        decode_cursor(cursor, SECRET, "s")
    assert error.value.status == 400 and error.value.code == "invalid_cursor"
