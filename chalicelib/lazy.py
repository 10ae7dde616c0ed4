"""Modules imported on first use, so that `import app` (a Lambda's cold start) stays cheap.

API and job modules are imported at cold start: Chalice must see every route, schedule and
queue handler. The services behind them (and through those storage, PynamoDB, botocore's
clients and the WeChat adapters) are only needed once a handler runs, so those modules name
them with `lazy_module` instead of importing them:

    addresses = lazy_module("chalicelib.services.addresses")

    def list_addresses(request):
        return addresses.list_addresses(request.user_id)  # imported here, on the first call

The first attribute read imports the module (Python's import lock makes that thread-safe) and
every later read goes straight to it, so a test patching the real module is seen as before.
Names needed only in annotations are imported under `typing.TYPE_CHECKING` instead.
`tests/unit/test_cold_start_imports.py` fails if a heavy module is imported by `import app`
again; docs/decisions.md ("Cold start") says what this saves and costs.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module until an attribute is read, then imports it and delegates to it."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """The module `name`, imported when one of its attributes is first read (typed Any on purpose:
    it is used exactly as the module)."""
    return LazyModule(name)
