"""The sandbox's HTTP routes (FastAPI): the three endpoints of mirrago-api.md, plus results,
sample images, a health check and the OpenAPI docs at /docs.

Routes only translate HTTP to calls on the `Engine` and its `SandboxError`s back to responses.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile

from mirrago import __version__
from mirrago.sandbox.config import SandboxError
from mirrago.sandbox.docs import add_docs_routes, has_demo_credentials
from mirrago.sandbox.engine import Engine
from mirrago.sandbox.inputs import (
    SAMPLE_KINDS,
    ImageSource,
    SubmitRequest,
    check_background,
    sample_files,
    sample_path,
)
from mirrago.sandbox.openapi import DEFAULT_BASE_URL, build_document

MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
SUBMIT_THREADS = 16
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def create_app(engine: Engine) -> FastAPI:
    """The sandbox's FastAPI application, serving `engine`."""
    app = FastAPI(
        title="Mirrago sandbox",
        version=__version__,
        description="A local server implementing the Mirrago try-on API (mirrago-api.md).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    generated = app.openapi

    def document(base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
        demo = has_demo_credentials(engine.config)
        return build_document(generated(), demo_credentials=demo, base_url=base_url)

    app.openapi = document  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document(request: Request) -> JSONResponse:
        # Examples name this server's own sample URLs, so "Try it out" works as shown.
        return JSONResponse(document(str(request.base_url)))

    add_docs_routes(app, engine)
    submit_limiter = anyio.CapacityLimiter(SUBMIT_THREADS)

    @app.exception_handler(SandboxError)
    async def sandbox_error(_request: Request, error: SandboxError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code, headers=error.headers)

    @app.get("/", include_in_schema=False)
    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": "mirrago-sandbox", "docs": "/docs"}

    @app.post("/oauth/token")
    async def oauth_token(request: Request) -> JSONResponse:
        """Issue an access token (OAuth client credentials; JSON or form body)."""
        fields, _files = await _read_body(request, engine)
        client_id = _text(fields.get("client_id"))
        client_secret = _text(fields.get("client_secret"))
        if not client_id and not client_secret:
            client_id, client_secret = _basic_credentials(request)
        grant_type = fields.get("grant_type", "client_credentials")
        if grant_type != "client_credentials":
            message = "Unsupported grant_type: use client_credentials."
            body = {"error": "unsupported_grant_type", "detail": message}
            raise SandboxError(400, message, body=body)
        token = engine.issue_token(client_id, client_secret)
        return JSONResponse(token, headers={"Cache-Control": "no-store"})

    @app.post("/v1/mirrago/generate-image")
    async def generate_image(request: Request) -> dict[str, Any]:
        """Create a try-on job from two images (files or URLs)."""
        client_id = engine.admit_submission(_bearer(request))
        fields, files = await _read_body(request, engine)
        _check_generate_fields(fields)
        submission = SubmitRequest(
            target=_image_source(fields, files, "target_image"),
            garment=_image_source(fields, files, "garment_image"),
            background=_first_present(fields, "background", "backgroud"),
            username=_text(fields.get("username")),
            callback_url=_text(fields.get("callback_url")),
        )
        # Fetching URLs and decoding images block: they run in threads of their own, so that
        # neither the event loop nor the shared thread pool (which serves files and job reads)
        # is held while a submission fetches the sandbox's own /samples/ URLs.
        work = functools.partial(engine.submit, client_id, submission, str(request.base_url))
        return await anyio.to_thread.run_sync(work, limiter=submit_limiter)

    @app.get("/v1/mirrago/job/{job_id}")
    def get_job(job_id: str, request: Request) -> dict[str, Any]:
        """A job's status and, once completed, its result URL."""
        return engine.read_job(_bearer(request), job_id, str(request.base_url))

    @app.get("/results/{name}", response_class=FileResponse)
    def result(name: str) -> FileResponse:
        """A finished job's rendered image (PNG)."""
        path = engine.result_path(name)
        if path is None:
            raise SandboxError(404, "No such result.")
        return FileResponse(path, media_type="image/png")

    @app.get("/samples")
    def sample_index(request: Request) -> dict[str, list[str]]:
        """URLs of the shipped sample images, by kind."""
        base = str(request.base_url).rstrip("/")
        return {
            kind: [f"{base}/samples/{kind}/{path.name}" for path in sample_files(kind)]
            for kind in SAMPLE_KINDS
        }

    @app.get("/samples/{kind}/{name}", response_class=FileResponse)
    def sample(kind: str, name: str) -> FileResponse:
        """One shipped sample image (kind: persons or garments)."""
        path = sample_path(kind, name)
        if path is None:
            raise SandboxError(404, "No such sample image.")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix.lower()])

    return app


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    """Client credentials from HTTP Basic auth, the other form OAuth allows."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, client_secret = decoded.partition(":")
    return unquote(client_id) or None, unquote(client_secret) or None


async def _read_body(request: Request, engine: Engine) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The request's fields and uploaded files, from multipart/form-data, a url-encoded form or
    JSON (also when no content type says so). Uploads over the size cap give 413."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(FORM_TYPES):
        form = await request.form(max_files=8, max_fields=64)
        fields: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    engine.check_upload_size(key, value.size)
                    data = await value.read()
                    # Browsers send an empty, nameless part for a file input left blank.
                    if data or value.filename:
                        files[key] = data
                else:
                    fields[key] = value
        finally:
            await form.close()
        return fields, files
    raw = await request.body()
    if not raw.strip():
        return {}, {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise SandboxError(
            400, "Unreadable request body: send multipart/form-data, or a JSON object."
        )
    return body, {}


def _image_source(fields: dict[str, Any], files: dict[str, bytes], name: str) -> ImageSource | None:
    """One side of the job: the uploaded file `name`, else the URL in `name_url`, else a URL
    given in `name` itself (the reference's JSON example)."""
    if name in files:
        return ImageSource(name, data=files[name])
    for field_name in (f"{name}_url", name):
        url = _text(fields.get(field_name))
        if url:
            return ImageSource(field_name, url=url)
    return None


_GENERATE_TEXT_FIELDS = (
    "target_image",
    "garment_image",
    "target_image_url",
    "garment_image_url",
    "username",
    "callback_url",
)


def _check_generate_fields(fields: dict[str, Any]) -> None:
    """400 for a known field of the wrong type (a JSON number as a URL, an object as username)
    or a background the sandbox does not know, even when another field would do instead."""
    for name in _GENERATE_TEXT_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise SandboxError(400, f"Invalid {name}: it must be a string.")
    for name in ("background", "backgroud"):
        check_background(fields.get(name))


def _first_present(fields: dict[str, Any], *names: str) -> object:
    for name in names:
        if name in fields and fields[name] is not None:
            return fields[name]
    return None


def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value).strip() or None
