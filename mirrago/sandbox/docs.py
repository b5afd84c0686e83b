"""The sandbox's `/docs` page: Swagger UI served from local files (nothing loads from the
internet), with the OAuth2 client-credentials flow filled in with the demo credentials so a
call can be tried at once."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from mirrago.sandbox.config import SandboxConfig, SandboxError
from mirrago.sandbox.engine import Engine

DEMO = SandboxConfig()
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def has_demo_credentials(config: SandboxConfig) -> bool:
    """True when the sandbox runs with the published demo id and secret (which the docs may
    show); a configured secret is never put in a page."""
    return (config.client_id, config.client_secret) == (DEMO.client_id, DEMO.client_secret)


def _assets_dir() -> Path | None:
    """Swagger UI's files from the fastapi-offline package, when installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_docs_routes(app: FastAPI, engine: Engine) -> None:
    """`/docs`, its OAuth2 redirect page and its script and style files."""
    assets = _assets_dir()
    local: dict[str, str] = {}
    if assets is not None:
        local = {
            "swagger_js_url": "/docs/assets/swagger-ui-bundle.js",
            "swagger_css_url": "/docs/assets/swagger-ui.css",
            "swagger_favicon_url": "/docs/assets/favicon.png",
        }

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        config = engine.config
        init_oauth = {"clientId": config.client_id}
        if has_demo_credentials(config):
            init_oauth["clientSecret"] = config.client_secret
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Mirrago sandbox — API docs",
            oauth2_redirect_url="/docs/oauth2-redirect",
            init_oauth=init_oauth,
            swagger_ui_parameters={"persistAuthorization": False, "tryItOutEnabled": True},
            **local,
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if assets is None or name not in ASSETS:
            raise SandboxError(404, "No such file.")
        return FileResponse(assets / name, media_type=ASSETS[name])
