"""A submission's inputs as the sandbox reads them: the request's fields, the images (uploaded,
fetched through urlguard, or the sandbox's own samples) checked to decode, the background and
the callback URL. Every refusal is a `SandboxError` 400 or 413."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

from mirrago import samples
from mirrago.sandbox import render
from mirrago.sandbox.config import SandboxConfig, SandboxError
from mirrago.sandbox.urlguard import FetchError, fetch_public

# Formats the sandbox accepts, and the extension each gets in a cloth_id.
IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
MAX_PIXELS = 50_000_000  # refuse decompression bombs before decoding them
URL_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds for fetching image URLs
SAMPLE_KINDS = ("persons", "garments")
# Background values: keep-words, the named choices, true (white) and #rgb[a]/#rrggbb[aa].
BACKGROUND_PATTERN = (
    r"^\s*(original|false|none|keep|no|0|white|studio|true"
    r"|#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8}))?\s*$"
)


@dataclass(frozen=True)
class ImageSource:
    """One side of a submission as the request gave it: uploaded bytes or a URL, and the field."""

    field: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class SubmitRequest:
    """A generate-image request, parsed from multipart or JSON but not yet validated."""

    target: ImageSource | None
    garment: ImageSource | None
    background: object = None
    username: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class Submission:
    """A validated submission: both images' bytes, the garment's format, background, callback."""

    target: bytes
    garment: bytes
    garment_ext: str
    background: str | None
    callback_url: str | None


def read_submission(request: SubmitRequest, base_url: str, config: SandboxConfig) -> Submission:
    """Check every field of `request` and load both images; 400 or 413 on the first problem."""
    target_source = _require(request.target, "target_image")
    garment_source = _require(request.garment, "garment_image")
    background = _background(request.background)
    callback_url = _callback_url(request.callback_url)
    target_data, _ = _load_image(target_source, base_url, config)
    garment_data, garment_ext = _load_image(garment_source, base_url, config)
    return Submission(target_data, garment_data, garment_ext, background, callback_url)


def check_size(field_name: str, size: int | None, limit: int) -> None:
    """413 when an uploaded file of `size` bytes is over `limit`."""
    if size is not None and size > limit:
        raise SandboxError(
            413,
            f"{field_name} is {_megabytes(size)}, over the {_megabytes(limit)} upload limit: "
            "send a smaller or more compressed image.",
        )


def check_background(value: object) -> None:
    """400 unless `value` is absent, a boolean or a known background (BACKGROUND_PATTERN)."""
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, str) or not re.match(BACKGROUND_PATTERN, value):
        shown = str(value)[:40]
        raise SandboxError(
            400,
            f"Unknown background {shown!r}: use original (or false), white, studio, "
            "or a colour such as #f0f0f0.",
        )


def sample_files(kind: str) -> list[Path]:
    """The shipped sample images of `kind` (persons or garments), by file name."""
    if kind not in SAMPLE_KINDS:
        return []
    listed = samples.persons() if kind == "persons" else samples.garments()
    return sorted((sample.path for sample in listed), key=lambda path: path.name)


def sample_path(kind: str, name: str) -> Path | None:
    """The sample file, or None; only a listed sample's exact name matches (`samples.by_file`),
    so no traversal gets out of the samples folder."""
    if kind not in SAMPLE_KINDS:
        return None
    sample = samples.by_file(kind, name)
    return sample.path if sample is not None and sample.path.is_file() else None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _own_sample_route(url: str, base_url: str) -> tuple[str, str] | None:
    """(kind, name) when `url` is this sandbox's own `/samples/<kind>/<name>` URL."""
    parts, base = urlsplit(url.strip()), urlsplit(base_url)
    if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    segments = unquote(parts.path).split("/")
    if len(segments) != 4 or segments[:2] != ["", "samples"]:
        return None
    return segments[2], segments[3]


def _require(source: ImageSource | None, field_name: str) -> ImageSource:
    if source is None or (source.data is None and not source.url):
        raise SandboxError(
            400,
            f"Missing {field_name}: send it as a file ({field_name}) or as a URL "
            f"({field_name}_url).",
        )
    return source


def _background(value: object) -> str | None:
    check_background(value)
    try:
        return render.parse_background(value)
    except ValueError as error:
        raise SandboxError(400, str(error)) from None


def _callback_url(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        raise SandboxError(400, "Invalid callback_url: it must be an http(s) URL.") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SandboxError(400, "Invalid callback_url: it must be an http(s) URL.")
    return text


def _load_image(source: ImageSource, base_url: str, config: SandboxConfig) -> tuple[bytes, str]:
    """The image bytes of one side, fetched if it is a URL, checked to decode as an image.
    Returns the bytes and the extension of their format."""
    if source.data is not None:
        check_size(source.field, len(source.data), config.max_upload_bytes)
        data = source.data
    else:
        data = _fetch(source.field, str(source.url), base_url, config)
    return data, _check_image(source.field, data)


def _fetch(field_name: str, url: str, base_url: str, config: SandboxConfig) -> bytes:
    """The bytes at `url`: the sandbox's own sample URLs are read from disk (they are on
    loopback), anything else is fetched from a public address (see urlguard)."""
    try:
        own = _own_sample_route(url, base_url)
    except ValueError:
        raise SandboxError(
            400, f"Invalid image URL ({field_name}): it must be an http:// or https:// URL."
        ) from None
    if own is not None:
        path = sample_path(*own)
        if path is None:
            raise SandboxError(
                400, f"Invalid image URL ({field_name}): there is no such sample image."
            )
        return path.read_bytes()
    try:
        return fetch_public(
            url.strip(),
            allow_private=config.allow_private_urls,
            max_bytes=config.max_upload_bytes,
            timeout=URL_TIMEOUT,
            headers={"User-Agent": "mirrago-sandbox"},
        )
    except FetchError as error:
        raise SandboxError(400, f"Invalid image URL ({field_name}): {error}") from None


def _check_image(field_name: str, data: bytes) -> str:
    """Decode enough of the image to know it is a whole JPEG/PNG/WebP; return its extension."""
    what = f"{field_name} is not a usable image"
    if not data:
        raise SandboxError(400, f"{what}: it is empty. Send a JPEG or PNG file.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise SandboxError(
                    400, f"{what}: {image.format} is not accepted. Send a JPEG or PNG file."
                )
            if image.width * image.height > MAX_PIXELS:
                raise SandboxError(
                    400, f"{what}: {image.width}x{image.height} pixels is too large."
                )
            image.draft("RGB", (1024, 1024))
            image.load()
            return IMAGE_FORMATS[image.format]
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise SandboxError(
            400, f"{what}: it does not decode as JPEG or PNG (it may be truncated)."
        ) from None
