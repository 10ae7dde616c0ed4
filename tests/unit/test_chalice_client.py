"""The in-process test client leaves `os.environ` alone, so a request handled on another thread
(the notify bridge) cannot undo an environment change made meanwhile."""
from __future__ import annotations

import os
import threading

import pytest
from chalice import Chalice

from local.chalice_client import thread_safe_client


def _app() -> Chalice:
    app = Chalice(app_name="env-probe")

    @app.route("/probe")
    def probe():
        return {"same_environ": isinstance(os.environ, os._Environ)}

    return app


def test_requests_on_two_threads_keep_environment_changes_made_between_them(monkeypatch):
    client = thread_safe_client(_app(), stage_name="test")
    stop = threading.Event()
    answers: list[bool] = []

    def hammer():
        for _ in range(2000):
            if stop.is_set():
                return
            answers.append(client.http.get("/probe").json_body["same_environ"])

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        for round_number in range(200):
            monkeypatch.setenv("ENV_PROBE", str(round_number))
            assert os.environ["ENV_PROBE"] == str(round_number)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert answers and all(answers)
    assert isinstance(os.environ, os._Environ) and os.environ["ENV_PROBE"] == "199"


def test_a_stage_with_environment_variables_is_refused(tmp_path):
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        '{"version": "2.0", "app_name": "env-probe", "stages": {"dev": {"environment_variables": {"A": "1"}}}}')
    client = thread_safe_client(_app(), stage_name="dev", project_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="environment variables"):
        client.http.get("/probe")
