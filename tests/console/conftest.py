"""The console in headless Chromium (Debian's, `python -m local.chromium --install`) against the
local stack: one stack and one browser per module."""
from __future__ import annotations

import os

import pytest

from local.chromium import find_chromium
from tests.console.helpers import chromium_context


def chromium_or_skip():
    path = find_chromium()
    if path is None:
        if os.environ.get("REQUIRE_DYNAMODB_LOCAL") == "1":  # make test installs it first
            pytest.fail("Chromium is missing: run `python -m local.chromium --install` (make test does)")
        pytest.skip("Chromium is missing: `python -m local.chromium --install`")
    return path


@pytest.fixture(scope="module")
def browser_context():
    """A headless Chromium with a throwaway profile; pages in it share nothing with other modules."""
    with chromium_context(chromium_or_skip()) as context:
        yield context
