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


class LazyName:
    """Stands for a class of a module not imported yet (a schema named in a route's decorator).

    API modules are imported at cold start, and with them every request and response model they
    name; building ~300 pydantic classes is most of what `import app` costs above its libraries.
    A route's models are only needed when that route runs (or when /openapi.json is built), so
    API modules name them with `lazy_names` instead of importing them. The proxy imports the
    module on first use and then behaves as the class for what handlers do with a model: calls
    (`Model(...)`), attributes (`Model.of(...)`, `Model.model_validate`), `isinstance` checks.
    Code that needs the class itself (subclassing, `issubclass`) calls `resolve`.
    """

    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str):
        self._module = module
        self._name = name
        self._target: Any = None

    def resolve(self) -> Any:
        target = self._target
        if target is None:
            target = self._target = getattr(importlib.import_module(self._module), self._name)
        return target

    @property
    def __name__(self) -> str:  # noqa: A003 - a class's name, known without importing it (OpenAPI refs)
        return self._name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.resolve(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, self.resolve())

    def __repr__(self) -> str:
        return f"<lazy name {self._module}.{self._name}>"


def lazy_names(module: str, *names: str) -> Any:
    """`A, B = lazy_names("chalicelib.schemas.x", "A", "B")`: classes of `module`, imported on first
    use (see LazyName). A single name answers the proxy itself."""
    proxies = tuple(LazyName(module, name) for name in names)
    return proxies[0] if len(proxies) == 1 else proxies


def resolve(value: Any) -> Any:
    """The class a LazyName stands for (anything else as it is)."""
    return value.resolve() if isinstance(value, LazyName) else value
