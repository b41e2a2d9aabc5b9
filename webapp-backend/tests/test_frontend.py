"""Serving the built front end at ``/`` (with the single-page-app fallback), or a build hint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

INDEX_HTML = '<!doctype html><html><body><div id="root"></div></body></html>'


@pytest.fixture(scope="module")
def built_client(
    make_app: Callable[..., Flask], tmp_path_factory: pytest.TempPathFactory
) -> FlaskClient:
    """A client of an app whose FRONTEND_DIST holds a small Vite-like build."""
    dist = tmp_path_factory.mktemp("dist")
    (dist / "index.html").write_text(INDEX_HTML)
    (dist / "assets").mkdir()
    (dist / "assets" / "index-3f2a1b.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (dist.parent / "secret.txt").write_text("outside the build")
    return make_app(FRONTEND_DIST=dist).test_client()


def test_without_a_build_the_page_says_how_to_make_one(client: FlaskClient) -> None:
    for path in ("/", "/results/123"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert "npm run build" in response.get_data(as_text=True)


def test_index_html_at_the_root(built_client: FlaskClient) -> None:
    response = built_client.get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == INDEX_HTML
    assert response.cache_control.no_cache


def test_hashed_assets_are_cached_for_good(built_client: FlaskClient) -> None:
    response = built_client.get("/assets/index-3f2a1b.js")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "console.log('app')"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable
    assert built_client.get("/favicon.svg").mimetype == "image/svg+xml"


def test_other_pages_fall_back_to_index_html(built_client: FlaskClient) -> None:
    for path in ("/results", "/celebrity/george-w-bush", "/no/such/page.html"):
        response = built_client.get(path)
        assert response.status_code == 200
        assert response.get_data(as_text=True) == INDEX_HTML


def test_missing_asset_is_404_not_the_page(built_client: FlaskClient) -> None:
    assert built_client.get("/assets/index-old.js").status_code == 404


def test_nothing_outside_the_build_is_served(built_client: FlaskClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        response = built_client.get(path)
        assert "outside the build" not in response.get_data(as_text=True)


def test_api_routes_still_win(built_client: FlaskClient) -> None:
    assert built_client.get("/api/health").get_json()["status"] == "ok"
    response = built_client.get("/api/unknown")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
