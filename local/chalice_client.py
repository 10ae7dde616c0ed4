"""Chalice's in-process test client, made safe to call from more than one thread.

`chalice.test` applies the stage's environment variables to every request by swapping
`os.environ` for a patched copy and putting the saved object back afterwards. Two threads doing
that at once (a test and the notify bridge's server thread, which forwards the simulator's Pay
notifies into the same app) interleave the swaps: the process can be left on a stale copy, and
an environment change made meanwhile (a test's monkeypatch being undone) lands in a copy that is
then thrown away. CI lost the tests' AWS endpoint guard that way once, and every later moto test
failed at set-up.

The `test` stage (tests and bench) declares no environment variables, so there is nothing to
apply: each client here skips the swap, and refuses to run a stage that would need it.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

from chalice.test import Client


@contextlib.contextmanager
def _environment_left_alone(environment_variables: Mapping[str, str]) -> Iterator[None]:
    if environment_variables:
        raise RuntimeError("this Chalice stage sets environment variables; the thread-safe test client "
                           "cannot apply them (set them in the process environment instead)")
    yield


def thread_safe_client(app, **options) -> Client:
    """`chalice.test.Client(app, **options)` whose requests and Lambda invocations leave
    `os.environ` as it is (see the module's docstring)."""
    client = Client(app, **options)
    for part in (client.http, client.lambda_):
        part._patched_env_vars = _environment_left_alone  # an instance attribute wins over the method
    return client
