"""Cold start (issue 19): what `import app` may load. A structural check, never a timing.

Every Lambda of the app (the API, each queue consumer, each schedule) imports app.py when it
starts cold. It must register every route and handler, but the services behind them, and
through those PynamoDB, botocore's clients and the WeChat adapters, are imported by the handler
that first needs them (chalicelib/lazy.py), and pydantic builds a model's validator when the
model is first used (`defer_build=True`, chalicelib/schemas/common.py). These tests fail when a
module-level import or an eagerly built model creeps back; bench/cold_start.py measures the time.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import BaseModel

import chalicelib.api
import chalicelib.jobs
import chalicelib.schemas
from chalicelib.lazy import LazyModule, LazyName

ROOT = Path(__file__).resolve().parents[2]

# Imported on first use, never by `import app` (the package itself and everything under it).
NOT_AT_IMPORT = (
    "chalicelib.services",  # use cases: each brings its storage and adapters
    "chalicelib.storage",  # PynamoDB models
    "chalicelib.wechat",  # WeChat open API and Pay adapters
    "pynamodb", "boto3", "botocore", "s3transfer", "urllib3",  # AWS: storage and queues, on first use
    "wechatpy", "xmltodict", "requests",  # WeChat Pay v2
    "cryptography",  # WeChat Pay v3, the open API's decryption
    "PIL", "manimgx_fonts_cjk",  # share posters: drawn when one is made (services/poster_render.py)
)

# Run in a fresh interpreter: this test process has imported the services long ago (conftest).
PROBE = """
import json, sys
import app
from pydantic import BaseModel

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

built = sorted({f"{model.__module__}.{model.__qualname__}" for model in subclasses(BaseModel)
                if model.__module__.startswith("chalicelib.") and model.__pydantic_complete__})
print(json.dumps({"modules": sorted(sys.modules), "built": built}))
"""


@pytest.fixture(scope="module")
def fresh_import() -> dict:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE], cwd=ROOT, env=dict(os.environ),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"`import app` failed in a fresh interpreter:\n{result.stderr[-3000:]}"
    return {**json.loads(result.stdout.splitlines()[-1]), "importtime": result.stderr}


def import_chain(importtime: str, module: str) -> list[str]:
    """Who imported `module`: its importers from `-X importtime` output, outermost first.

    Each line names a module once its import finished, indented by its nesting depth, so the
    importer of a line is the first later line that is less indented.
    """
    entries = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            name = line.rsplit("|", 1)[1]
            entries.append((len(name) - len(name.lstrip()), name.strip()))
    for index, (depth, name) in enumerate(entries):
        if name == module:
            chain = [name]
            for later_depth, later_name in entries[index + 1:]:
                if later_depth < depth:
                    chain.append(later_name)
                    depth = later_depth
            return chain[::-1]
    return [module]


def test_import_app_loads_no_service_storage_wechat_or_aws_client_module(fresh_import):
    offenders = [name for name in fresh_import["modules"]
                 if any(name == package or name.startswith(package + ".") for package in NOT_AT_IMPORT)]
    # One chain per package (chalicelib.services, botocore, ...) is enough to find the import to make lazy.
    first_per_package: dict[str, str] = {}
    for name in offenders:
        parts = name.split(".")
        first_per_package.setdefault(".".join(parts[:2]) if parts[0] == "chalicelib" else parts[0], name)
    chains = "\n".join("  " + " -> ".join(import_chain(fresh_import["importtime"], name))
                       for name in first_per_package.values())
    assert not offenders, (
        f"`import app` loaded {len(offenders)} module(s) it should import on first use (cold start, issue 19):\n"
        f"{chains}\nName services with lazy_module (chalicelib/lazy.py) or import them inside the function "
        f"that uses them; names needed only in annotations go under `if TYPE_CHECKING:`.")


def test_import_app_builds_no_pydantic_model(fresh_import):
    assert fresh_import["built"] == [], (
        "these models built their validators at import, which every cold start pays: give them "
        "`defer_build=True` in model_config (or derive them from RequestModel / ResponseModel, "
        f"chalicelib/schemas/common.py): {fresh_import['built']}")


def test_import_app_still_registers_the_app():
    """Not imported for its side effects only: the app object and its routes are there."""
    import app

    assert app.app.app_name == "wechat-store"
    assert "/v1/orders/{order_id}/pay" in app.app.routes


def _modules_of(package) -> list:
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)]


@pytest.mark.parametrize("module", _modules_of(chalicelib.api) + _modules_of(chalicelib.jobs),
                         ids=lambda module: module.__name__)
def test_every_lazy_module_and_the_attributes_read_from_it_exist(module):
    """A lazily imported module is only imported when a handler runs, so a misspelt module or
    function name would surface at the first request instead of at import: check them here."""
    lazy = {name: value for name, value in vars(module).items() if isinstance(value, LazyModule)}
    if not lazy:
        return
    targets = {name: importlib.import_module(value._name) for name, value in lazy.items()}
    missing = [f"{node.value.id}.{node.attr} (line {node.lineno})"
               for node in ast.walk(ast.parse(inspect.getsource(module)))
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in targets
               and not hasattr(targets[node.value.id], node.attr)]
    assert not missing, f"{module.__name__} reads names its lazy modules do not have: {missing}"


# Schema modules `import app` may load: the shared bases, and the queue messages the job modules
# parse (their handlers are registered with the models they read).
SCHEMAS_AT_IMPORT = {"chalicelib.schemas", "chalicelib.schemas.common", "chalicelib.schemas.messages",
                     "chalicelib.schemas.timers", "chalicelib.schemas.flash_sales", "chalicelib.schemas.shipping"}


def test_import_app_loads_no_route_schema_module(fresh_import):
    """Request and response models are named with `lazy_names` in API modules: only the route
    that runs (or /openapi.json) builds its classes."""
    loaded = {name for name in fresh_import["modules"] if name.startswith("chalicelib.schemas")}
    offenders = sorted(loaded - SCHEMAS_AT_IMPORT)
    chains = "\n".join("  " + " -> ".join(import_chain(fresh_import["importtime"], name)) for name in offenders)
    assert not offenders, (f"`import app` loaded route schemas; name them with lazy_names (chalicelib/lazy.py):\n"
                           f"{chains}")


@pytest.mark.parametrize("module", _modules_of(chalicelib.api), ids=lambda module: module.__name__)
def test_every_lazy_schema_name_exists(module):
    """A misspelt lazy name would surface at the route's first request: resolve each one here."""
    for name, value in vars(module).items():
        if isinstance(value, LazyName):
            assert isinstance(value.resolve(), type), f"{module.__name__}.{name}"


def test_every_schema_model_builds():
    """Deferred models build on first use; one that cannot (an unresolvable annotation) fails here."""
    models = {model for schema_module in _modules_of(chalicelib.schemas)
              for model in vars(schema_module).values()
              if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__.startswith("chalicelib.")}
    assert len(models) > 50
    for model in sorted(models, key=lambda model: model.__qualname__):
        model.model_rebuild(raise_errors=True)
        assert model.__pydantic_complete__, model


def test_deferred_models_first_used_by_many_threads_at_once_all_validate():
    """A deferred model is built by whichever request uses it first, and a cold Lambda's local
    server (or a burst after a deploy) may bring several at once. The pinned pydantic serializes
    the build with a lock; some earlier 2.x releases let another thread validate with the parent's
    validator meanwhile (RequestModel's: every field refused as extra). Fresh classes, 16 threads."""
    from chalicelib.schemas.common import RequestModel

    def first_uses(model: type[BaseModel]) -> list[str]:
        barrier = threading.Barrier(16)

        def validate(_: int) -> str:
            barrier.wait(timeout=10)
            try:
                model.model_validate({"sku_id": "sku-1", "quantity": 2})
                return ""
            except Exception as error:  # noqa: BLE001 - reported below
                return repr(error)[:200]

        with ThreadPoolExecutor(max_workers=16) as pool:
            return [outcome for outcome in pool.map(validate, range(16)) if outcome]

    for _ in range(10):
        class Line(RequestModel):
            sku_id: str
            quantity: int

        assert not Line.__pydantic_complete__
        assert first_uses(Line) == []


def test_a_lazy_name_behaves_as_its_class_and_imports_on_first_use():
    from chalicelib.lazy import lazy_names, resolve

    in_a_fresh_module = "json.decoder"  # any module; the proxy must not import it until used
    decoder_error, decoder = lazy_names(in_a_fresh_module, "JSONDecodeError", "JSONDecoder")
    assert decoder.__name__ == "JSONDecoder" and decoder._target is None
    instance = decoder()
    assert isinstance(instance, decoder) and not isinstance(ValueError(), decoder)
    assert decoder.decode is resolve(decoder).decode
    assert issubclass(resolve(decoder_error), ValueError)
