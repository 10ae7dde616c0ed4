"""The console's files as the app serves them under /console/ (no browser): types, caching, no
path traversal, and every module the pages import is in the package folder."""
from __future__ import annotations

import re

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.api.console import STATIC_DIR


@pytest.fixture(scope="module")
def http():
    with Client(app_module.app) as client:
        yield client.http


@pytest.mark.parametrize("path", ["/console/", "/console/index.html"])
def test_the_console_answers_its_page_at_its_folder(http, path):
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "商家后台" in response.body.decode()
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_folder_without_its_slash_redirects_to_it_relatively_so_a_stage_prefix_stays(http):
    response = http.get("/console")
    assert response.status_code == 302 and response.headers["Location"] == "console/"


@pytest.mark.parametrize("name, content_type", [("app.js", "text/javascript; charset=utf-8"),
                                                ("style.css", "text/css; charset=utf-8"),
                                                ("index.html", "text/html; charset=utf-8")])
def test_each_file_has_its_type_and_revalidates_with_its_etag(http, name, content_type):
    response = http.get(f"/console/{name}")
    assert response.status_code == 200 and response.headers["Content-Type"] == content_type
    assert response.body == (STATIC_DIR / name).read_bytes()
    etag = response.headers["ETag"]
    again = http.get(f"/console/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.body == b""


@pytest.mark.parametrize("name", ["..%2Fapp.py", "%2E%2E", "app.py", ".hidden.js", "nope.js", "index.html.bak",
                                  "..%2F..%2Fetc%2Fpasswd", "a" * 70 + ".js"])
def test_nothing_outside_the_folder_or_of_another_kind_is_served(http, name):
    response = http.get(f"/console/{name}")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_every_file_of_the_folder_is_servable_and_every_imported_module_is_in_it():
    names = {path.name for path in STATIC_DIR.iterdir()}
    assert {"index.html", "app.js", "config.js", "style.css"} <= names
    for path in STATIC_DIR.iterdir():
        assert re.match(r"^[A-Za-z0-9_\-]{1,64}\.(html|js|css|svg)$", path.name), path.name
        if path.suffix == ".js":
            for imported in re.findall(r'from "\./([^"]+)"', path.read_text(encoding="utf-8")):
                assert imported in names, (path.name, imported)
