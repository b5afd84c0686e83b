"""The sandbox's OpenAPI document: the Mirrago contract (mirrago-api.md) made machine-readable.

Every route's request forms, every status it can answer with the reference's own examples, and
the OAuth2 client-credentials scheme, so `/docs` can fetch a token and try calls. Where the
reference is ambiguous or slips, the descriptions say how the sandbox reads it (the reading is
written down in API-NOTES.md beside the reference). `build_document` patches what FastAPI
generates from the routes; `create_app` in app.py wires it in.
"""

from __future__ import annotations

import copy
from typing import Any

from mirrago.sandbox.inputs import BACKGROUND_PATTERN, sample_files

DEFAULT_BASE_URL = "http://127.0.0.1:8700"  # `mirrago sandbox`'s default address

NOTES = "`../shared/API-NOTES.md`, how Mirrago Studio reads the reference"
SECURITY = [{"OAuth2ClientCredentials": []}]
DEMO_NOTE = " The sandbox's demo credentials: `demo-client` / `demo-secret`."

# ---- schemas -------------------------------------------------------------------------------

_BACKGROUND = {
    "description": (
        "Background preference: `original` (or `false`, the reference's JSON value) keeps the "
        "person's backdrop; `white`, `studio` or a `#rgb`/`#rrggbb` colour replaces it; "
        f"`true` means white. The reference spells the field both `background` and `backgroud`; "
        f"the sandbox accepts both ({NOTES})."
    ),
    "anyOf": [
        {"type": "boolean"},
        {"type": "null"},
        {"type": "string", "pattern": BACKGROUND_PATTERN},
    ],
}
_BACKGROUND_FORM = {
    "description": _BACKGROUND["description"],
    "type": "string",
    "pattern": BACKGROUND_PATTERN,
}
_USERNAME = {
    "type": ["string", "null"],
    "description": "Requesting user reference (kept to 200 characters). Without one the "
    "response shows `TEMP<uuid>`.",
}
_CALLBACK = {
    "type": ["string", "null"],
    "description": "Optional http(s) URL that receives the final job JSON by POST (best effort, "
    "a few tries). It appears only in the reference's JSON example; both forms accept it here. "
    "Like image URLs, it must be on a public address.",
    "pattern": r"^\s*$|^\s*[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+",
}
_URL_TEXT = (
    "http(s) URL of a JPEG, PNG or WebP image on a public address (the sandbox also serves its "
    "own samples, listed at `/samples`). Loopback, private, link-local and reserved addresses "
    "are refused unless the sandbox runs with `--allow-private-urls`."
)
_HTTP_URL = {"type": "string", "format": "uri", "pattern": r"^\s*[Hh][Tt][Tt][Pp][Ss]?://\S"}
_FILE = {
    "type": "string",
    "format": "binary",
    "description": "An image file: JPEG, PNG or WebP, at most 15 MB (configurable).",
}


def _url_field(text: str, *, json: bool) -> dict[str, Any]:
    """A `*_url` field. In JSON it wins when not blank, so it must then be an http(s) URL; in
    multipart an uploaded file wins, so the rule is on the side (see `_side`)."""
    field: dict[str, Any] = {"description": f"{text} {_URL_TEXT}"}
    if not json:
        return {**field, "type": "string"}
    blank_or_null = [{"type": "null"}, {"type": "string", "pattern": r"^\s*$"}]
    return {**field, "anyOf": [*blank_or_null, _HTTP_URL]}


def _side(name: str, *, file: bool) -> dict[str, Any]:
    """The rule of one side: a file (multipart) or an http(s) URL, in `<name>_url` or (JSON)
    in `<name>` itself."""
    by_url = {"required": [f"{name}_url"], "properties": {f"{name}_url": _HTTP_URL}}
    if file:
        return {"anyOf": [{"required": [name]}, by_url]}
    return {"anyOf": [by_url, {"required": [name], "properties": {name: _HTTP_URL}}]}


_OPTIONS_JSON = {
    "background": _BACKGROUND,
    "backgroud": {**_BACKGROUND, "description": "The reference's spelling of `background`."},
    "username": _USERNAME,
    "callback_url": _CALLBACK,
}
_OPTIONS_FORM = {
    "background": _BACKGROUND_FORM,
    "backgroud": {**_BACKGROUND_FORM, "description": "The reference's spelling of `background`."},
    "username": {**_USERNAME, "type": "string"},
    "callback_url": {**_CALLBACK, "type": "string"},
}

SCHEMAS: dict[str, Any] = {
    "TokenRequest": {
        "type": "object",
        "description": "OAuth client credentials, as JSON (the reference) or a form. HTTP Basic "
        "auth with the id and secret is accepted in place of the two fields.",
        "properties": {
            "client_id": {"type": "string", "example": "demo-client"},
            "client_secret": {"type": "string", "example": "demo-secret"},
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
        },
        "required": ["client_id", "client_secret"],
    },
    "Token": {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"},
            "expires_in": {"type": "number", "description": "Seconds the token lives."},
            "token_type": {"type": "string", "enum": ["Bearer"]},
        },
        "required": ["access_token", "expires_in", "token_type"],
    },
    "TokenError": {
        "type": "object",
        "properties": {
            "error": {"type": "string", "enum": ["invalid_client", "unsupported_grant_type"]},
            "detail": {"type": "string"},
        },
        "required": ["detail"],
    },
    "Error": {
        "type": "object",
        "description": "A refused request: `detail` says what is wrong and what to do.",
        "properties": {
            "detail": {"type": "string"},
            "retry_after": {"type": "number", "description": "429 only: seconds to wait."},
        },
        "required": ["detail"],
    },
    "GenerateForm": {
        "type": "object",
        "description": "multipart/form-data: each side is a file (`target_image`, "
        "`garment_image`) or a URL (`target_image_url`, `garment_image_url`). The reference "
        f"marks all four 'Required'; one of the two per side is what it means ({NOTES}).",
        "properties": {
            "target_image": {**_FILE, "description": f"The person photo. {_FILE['description']}"},
            "garment_image": {**_FILE, "description": f"The garment photo. {_FILE['description']}"},
            "target_image_url": _url_field("The person photo by URL.", json=False),
            "garment_image_url": _url_field("The garment photo by URL.", json=False),
            **_OPTIONS_FORM,
        },
        "allOf": [_side("target_image", file=True), _side("garment_image", file=True)],
    },
    "GenerateJson": {
        "type": "object",
        "description": "application/json: both images by URL, as `target_image_url` / "
        "`garment_image_url` (the reference's 'Request Body With Url') or in `target_image` / "
        "`garment_image` (its first 'Request Body'). When both are given, the `_url` field wins.",
        "properties": {
            "target_image_url": _url_field("The person photo.", json=True),
            "garment_image_url": _url_field("The garment photo.", json=True),
            "target_image": {
                "type": ["string", "null"],
                "description": "The person photo's URL (the reference's first example), used when "
                f"`target_image_url` is absent or blank. {_URL_TEXT}",
            },
            "garment_image": {
                "type": ["string", "null"],
                "description": "The garment photo's URL (the reference's first example), used "
                f"when `garment_image_url` is absent or blank. {_URL_TEXT}",
            },
            **_OPTIONS_JSON,
        },
        "allOf": [_side("target_image", file=False), _side("garment_image", file=False)],
    },
    "Submission": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending"]},
            "business_id": {"type": "string"},
            "username": {"type": "string"},
            "cloth_id": {"type": "string"},
            "credits_before": {
                "type": "integer",
                "description": "The balance before this job was charged (1 credit per job): the "
                "only view of the balance the API gives.",
            },
            "created_at": {
                "type": "string",
                "description": "A naive timestamp (no zone), UTC by the sandbox's reading.",
            },
        },
        "required": [
            "job_id",
            "status",
            "business_id",
            "username",
            "cloth_id",
            "credits_before",
            "created_at",
        ],
    },
    "Job": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"},
            "cloth_id": {"type": "string"},
            "cloth_img_url": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["pending", "queued", "processing", "completed", "completedc", "failed"],
                "description": "`pending`, `queued`, `processing`, then `completed` or `failed`. "
                "With `--strict-reference` the sandbox uses only the reference's spellings: "
                "`queued` while processing and `completedc` when done. Clients should read "
                f"`completedc` as completed ({NOTES}).",
            },
            "created_at": {"type": "string"},
            "generated_image_key": {"type": "string"},
            "result_url": {
                "type": ["string", "null"],
                "description": '`null` while in progress, `""` when failed, an absolute URL '
                'when completed. Treat null and "" alike as no result.',
            },
            "error_msg": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "description": '`{}` when there is no error, `{"error": "..."}` when failed.',
            },
        },
        "required": [
            "job_id",
            "cloth_id",
            "cloth_img_url",
            "status",
            "created_at",
            "generated_image_key",
            "result_url",
            "error_msg",
        ],
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, examples: dict[str, str], **extra: Any) -> dict[str, Any]:
    content = {
        "schema": _ref("Error"),
        "examples": {key: {"value": {"detail": text}} for key, text in examples.items()},
    }
    return {"description": description, "content": {"application/json": content}, **extra}


_RETRY_AFTER = {"description": "Whole seconds to wait.", "schema": {"type": "integer"}}
_WWW_AUTHENTICATE = {"schema": {"type": "string", "example": "Bearer"}}
_UNAUTHORIZED = _error(
    "Missing, unknown or expired access token. Get one from `POST /oauth/token` (the Authorize "
    "button) and send it as `Authorization: Bearer <access_token>`; on a 401, fetch a new token "
    "once and retry once.",
    {
        "missing": "Missing access token: get one from POST /oauth/token and send it as "
        "'Authorization: Bearer <access_token>'.",
        "expired": "Invalid or expired access token: get one from POST /oauth/token and send "
        "it as 'Authorization: Bearer <access_token>'.",
    },
    headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
)
_PROCESSING = {
    "job_id": "82cd18eb-fd80-4292-9c40-3c31e739604c",
    "cloth_id": "business/nike/clothes/6dae61c8-e73f-4799-bde0-4b17c62c1853.jpeg",
    "cloth_img_url": "",
    "status": "queued",
    "created_at": "2026-01-24T13:07:14.096542",
    "generated_image_key": "",
    "result_url": None,
    "error_msg": {},
}

TOKEN: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _ref("TokenRequest"),
                "example": {
                    "client_id": "YOUR_CLIENT_ID",
                    "client_secret": "YOUR_CLIENT_SECRET",
                    "grant_type": "client_credentials",
                },
            },
            "application/x-www-form-urlencoded": {"schema": _ref("TokenRequest")},
        },
    },
    "responses": {
        "200": {
            "description": "A bearer token. Reuse it until shortly before `expires_in` runs out.",
            "headers": {"Cache-Control": {"schema": {"type": "string", "example": "no-store"}}},
            "content": {
                "application/json": {
                    "schema": _ref("Token"),
                    "example": {
                        "access_token": "eyJhbGci...",
                        "expires_in": 3600,
                        "token_type": "Bearer",
                    },
                }
            },
        },
        "400": {
            "description": "A grant type other than client_credentials, or an unreadable body.",
            "content": {
                "application/json": {
                    "schema": _ref("TokenError"),
                    "example": {
                        "error": "unsupported_grant_type",
                        "detail": "Unsupported grant_type: use client_credentials.",
                    },
                }
            },
        },
        "401": {
            "description": "Wrong or missing client id or secret.",
            "content": {
                "application/json": {
                    "schema": _ref("TokenError"),
                    "example": {"error": "invalid_client", "detail": "Invalid client credentials."},
                }
            },
        },
        "413": _error(
            "A form body with an uploaded file over the size limit.",
            {"too_large": "client_id is 16.0 MB, over the 15.0 MB upload limit."},
        ),
    },
}

GENERATE: dict[str, Any] = {
    "description": (
        "Creates a try-on job from a person photo and a garment photo, each a file or a URL, and "
        "charges one credit. The reference lists both 'Content-Type: application/json' and "
        "'multipart/form-data': files go as multipart (URLs may go there too), URL-only requests "
        f"as JSON. See {NOTES}."
    ),
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _ref("GenerateJson"),
                "examples": {},  # build_document: the reference's bodies, with this sandbox's URLs
            },
            "multipart/form-data": {
                "schema": _ref("GenerateForm"),
                "encoding": {
                    "target_image": {"contentType": "image/jpeg, image/png, image/webp"},
                    "garment_image": {"contentType": "image/jpeg, image/png, image/webp"},
                },
            },
        },
    },
    "responses": {
        "200": {
            "description": "The job was created and queued; poll `GET /v1/mirrago/job/{job_id}`.",
            "content": {
                "application/json": {
                    "schema": _ref("Submission"),
                    "example": {
                        "job_id": "82cd18eb-fd80-4292-9c40-3c31e739604c",
                        "status": "pending",
                        "business_id": "nike",
                        "username": "TEMP2c9eaf7f-3fcd-4041-9eab-ed6dbaa58b53",
                        "cloth_id": "business/nike/clothes/"
                        "6dae61c8-e73f-4799-bde0-4b17c62c1853.jpeg",
                        "credits_before": 100,
                        "created_at": "2026-01-24T13:07:14.211044",
                    },
                }
            },
        },
        "400": _error(
            "The reference's 'Invalid image URL', and every other bad field: a side with neither "
            "file nor URL, an image that does not decode, a URL that cannot be fetched or is on a "
            "private network, an unknown background, an unreadable body. No job, no charge.",
            {
                "missing_side": "Missing garment_image: send it as a file (garment_image) or as "
                "a URL (garment_image_url).",
                "invalid_image_url": "Invalid image URL (target_image_url): fetching it "
                "answered HTTP 404.",
                "private_address": "Invalid image URL (target_image_url): that address is on a "
                "private network; the service cannot fetch it. Use a public link, or upload the "
                "file.",
                "not_an_image": "target_image is not a usable image: it does not decode as JPEG "
                "or PNG (it may be truncated).",
                "bad_background": "Unknown background 'sparkles': use original (or false), white, "
                "studio, or a colour such as #f0f0f0.",
            },
        ),
        "401": _UNAUTHORIZED,
        "402": _error(
            "No credits left (not in the reference; the sandbox's reading of an empty account). "
            "No job was created.",
            {
                "no_credits": "Insufficient credits: the account has 0 credits left, and each "
                "try-on costs 1. No job was created; top up the account to continue."
            },
        ),
        "413": _error(
            "An uploaded image over the size limit.",
            {
                "too_large": "target_image is 16.2 MB, over the 15.0 MB upload limit: send a "
                "smaller or more compressed image."
            },
        ),
        "429": _error(
            "Too many submissions: wait `Retry-After` seconds. With `--strict-reference` the "
            "sandbox answers the reference's '500 Rate Limit' instead.",
            {
                "rate_limited": "Rate limit exceeded: at most 2 submissions per second. "
                "Retry after 1 s."
            },
            headers={"Retry-After": _RETRY_AFTER},
        ),
        "500": _error(
            "The reference's '500 Rate Limit' (strict mode: a rate limit, back off and retry) or "
            "'500 Server Error' (a fault: the job may or may not exist, never resubmit blindly). "
            f"A 500 whose body mentions a rate limit is a rate limit ({NOTES}).",
            {
                "rate_limit": "Rate Limit: too many requests.",
                "server_error": "Internal Server Error",
            },
        ),
    },
}

JOB: dict[str, Any] = {
    "security": SECURITY,
    "responses": {
        "200": {
            "description": "The job as the reference shows it, in progress, done or failed.",
            "content": {
                "application/json": {
                    "schema": _ref("Job"),
                    "examples": {
                        "processing": {"summary": "Processing", "value": _PROCESSING},
                        "completed": {
                            "summary": "Completed (the sandbox's spelling)",
                            "value": {
                                **_PROCESSING,
                                "status": "completed",
                                "generated_image_key": "/results/"
                                "82cd18eb-fd80-4292-9c40-3c31e739604c.png",
                                "result_url": "http://127.0.0.1:8700/results/"
                                "82cd18eb-fd80-4292-9c40-3c31e739604c.png",
                            },
                        },
                        "completedc": {
                            "summary": "Completed, strict mode (the reference's 'completedc')",
                            "value": {
                                **_PROCESSING,
                                "status": "completedc",
                                "generated_image_key": "/testimage.png",
                                "result_url": "https://testimage.png",
                            },
                        },
                        "failed": {
                            "summary": "Failed",
                            "value": {
                                **_PROCESSING,
                                "status": "failed",
                                "result_url": "",
                                "error_msg": {"error": "something went wrong"},
                            },
                        },
                    },
                }
            },
        },
        "401": _UNAUTHORIZED,
        "404": _error(
            "No job with this id for this client (another client's jobs are not visible).",
            {"not_found": "Job 82cd18eb-fd80-4292-9c40-3c31e739604c not found."},
        ),
        "500": _error(
            "The reference's '500 Server Error' (the sandbox's `--read-fail-rate`): the read is "
            "safe to retry with backoff.",
            {"server_error": "Internal Server Error"},
        ),
    },
}

_NOT_FOUND_RESULT = _error("No finished result by that name.", {"not_found": "No such result."})
RESULT: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The rendered try-on (PNG).",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        "404": _NOT_FOUND_RESULT,
    }
}
SAMPLE: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The sample image.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("image/jpeg", "image/png", "image/webp")
            },
        },
        "404": _error("No sample by that kind and name.", {"not_found": "No such sample image."}),
    },
}
OPERATIONS = {
    ("/oauth/token", "post"): TOKEN,
    ("/v1/mirrago/generate-image", "post"): GENERATE,
    ("/v1/mirrago/job/{job_id}", "get"): JOB,
    ("/results/{name}", "get"): RESULT,
    ("/samples/{kind}/{name}", "get"): SAMPLE,
}


def _request_examples(base_url: str) -> dict[str, Any]:
    """The reference's two JSON request bodies, with this sandbox's own sample images in place
    of its cdn.yourbrand.com placeholders (which cannot be fetched), so they can be tried."""
    base = base_url.rstrip("/")
    person = next(iter(sample_files("persons")), None)
    garment = next(iter(sample_files("garments")), None)
    target = f"{base}/samples/persons/{person.name if person else 'person.jpg'}"
    cloth = f"{base}/samples/garments/{garment.name if garment else 'garment.jpg'}"
    return {
        "url_fields": {
            "summary": "Request Body With Url (the reference's second example)",
            "value": {"target_image_url": target, "garment_image_url": cloth, "backgroud": False},
        },
        "images_as_urls": {
            "summary": "Request Body (the reference's first example; its callback_url left out)",
            "value": {"target_image": target, "garment_image": cloth, "backgroud": False},
        },
    }


def build_document(
    generated: dict[str, Any], *, demo_credentials: bool, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """FastAPI's generated document, completed: request bodies, every answer per route, the
    security scheme, and no 422 (the sandbox never answers one). `base_url` is the sandbox's
    address, for the request examples."""
    document = copy.deepcopy(generated)
    document["info"]["description"] = _description(demo_credentials)
    for (path, method), extra in OPERATIONS.items():
        operation = document["paths"][path][method]
        operation["responses"] = {}
        operation.update(copy.deepcopy(extra))
    generate = document["paths"]["/v1/mirrago/generate-image"]["post"]
    generate["requestBody"]["content"]["application/json"]["examples"] = _request_examples(base_url)
    for item in document["paths"].values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(copy.deepcopy(SCHEMAS))
    components["securitySchemes"] = {
        "OAuth2ClientCredentials": {
            "type": "oauth2",
            "description": "OAuth client credentials: `POST /oauth/token` with the client id "
            "and secret gives a bearer token."
            + (
                " The sandbox's demo credentials: `demo-client` / `demo-secret`."
                if demo_credentials
                else ""
            ),
            "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
        }
    }
    return document


def _description(demo_credentials: bool) -> str:
    credentials = (
        "Click **Authorize**, keep the demo credentials (`demo-client` / `demo-secret`) and "
        "authorize: every call below then carries a token."
        if demo_credentials
        else "Click **Authorize** and enter this sandbox's client id and secret."
    )
    return (
        "A local server implementing the Mirrago try-on API (mirrago-api.md): get a token, "
        "submit a person and a garment photo, poll the job, fetch the result. "
        f"{credentials}\n\nWhere the published reference is ambiguous or slips (the two "
        "request forms, `backgroud`, `completedc`, `result_url: null`, `error_msg`, "
        f"'500 Rate Limit'), the descriptions say how the sandbox reads it; the full reading is "
        f"in {NOTES}."
    )
