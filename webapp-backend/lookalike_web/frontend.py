"""The built front end (``webapp-frontend/dist``) at ``/``.

Any GET outside ``/api`` that is not a file of the build gets ``index.html``: the app is one
page without routes of its own, so a stale or mistyped link still opens it. Without a build, a
short page says how to make one.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter
from werkzeug.security import safe_join

bp = Blueprint("frontend", __name__)

# Vite puts content-hashed file names under assets/, so those can be cached for good.
HASHED_ASSETS_DIR = "assets"
HASHED_ASSETS_MAX_AGE = 365 * 24 * 3600

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>lookalike: front end not built</title></head>
<body>
<h1>The web front end is not built yet</h1>
<p>The API is running (see <a href="/api/health">/api/health</a>), but the web page has not
been built.</p>
<p>Build it with <code>make setup</code>, or <code>cd webapp-frontend &amp;&amp; npm ci &amp;&amp;
npm run build</code>, then reload this page.</p>
</body>
</html>
"""


class PagePathConverter(PathConverter):
    """Any path except ``api`` and ``api/...``: the API's own 404s and 405s stay the API's."""

    regex = r"(?!api(?:/|$))[^/].*?"


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["page"] = PagePathConverter


def _dist_dir() -> Path:
    return Path(current_app.config["FRONTEND_DIST"])


@bp.get("/", defaults={"path": ""})
@bp.get("/<page:path>")
def serve(path: str) -> Response:
    """A file of the front-end build, ``index.html`` for any other page, or the build hint."""
    dist = _dist_dir()
    if not (dist / "index.html").is_file():
        return Response(NOT_BUILT_PAGE, mimetype="text/html")
    # Checked per request (a cheap stat), so a build made while the server runs is picked up.
    if path:
        candidate = safe_join(str(dist), path)
        if candidate is not None and Path(candidate).is_file():
            hashed = path.startswith(f"{HASHED_ASSETS_DIR}/")
            max_age = HASHED_ASSETS_MAX_AGE if hashed else 0
            response = send_from_directory(dist, path, max_age=max_age)
            if hashed:
                response.cache_control.immutable = True
            return response
        if path.startswith(f"{HASHED_ASSETS_DIR}/"):
            abort(404)  # a stale asset name: a 404, not the HTML page in place of a script
    # index.html must be revalidated: it names the current build's hashed assets.
    response = send_from_directory(dist, "index.html", max_age=0)
    response.cache_control.no_cache = True
    return response
