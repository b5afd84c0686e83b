"""Input images made safe to send: decode, validate, orient, convert, resize, re-encode, thumbnail.

`prepare_image` turns whatever a user picked (a phone photo on its side, a 12 MP camera JPEG, a
CMYK print file, a 16-bit PNG, a GIF) into an upright sRGB JPEG, or a PNG for a garment cut out
on transparency, no larger than the API needs, with no metadata left in it. Anything it cannot
use raises `ImageError` with one line that says what is wrong and what to do. No Streamlit and
no network here: the CLI, the runner and the pages all call these functions.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from PIL import ExifTags, Image, ImageCms, ImageOps

from mirrago.errors import ImageError

try:  # iPhone photos (HEIC/HEIF): pillow-heif adds the decoder to Pillow; AVIF is built in.
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - a dependency; without it HEIC gets a clear message
    pass
else:
    register_heif_opener()

Role = Literal["person", "garment"]

DEFAULT_MAX_SIDE = 2048
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# Our own decompression-bomb cap, checked from the header before any pixel is decoded. Lower than
# Pillow's (89 MP warns, 179 MP fails) and enough for any phone or DSLR photo (a 50 MP camera
# gives 8192×6144).
MAX_PIXELS = 60_000_000
MIN_SIDE = 64
JPEG_QUALITY = 90
THUMBNAIL_QUALITY = 85

_ROTATIONS = frozenset({2, 3, 4, 5, 6, 7, 8})  # EXIF orientations other than "upright"
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # ...and those that turn by 90°
_HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa"})
_FORMAT_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG"}


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to upload. `original_size` is the input's upright (width, height);
    `resized` says whether it was scaled down to fit `max_side`."""

    data: bytes = field(repr=False)
    mime: str
    ext: str  # without the dot: "jpg" or "png"
    width: int
    height: int
    original_size: tuple[int, int]
    resized: bool


def prepare_image(
    data: bytes,
    *,
    role: Role,
    max_side: int = DEFAULT_MAX_SIDE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> PreparedImage:
    """Validate and normalise one input image for the try-on API.

    Decodes anything Pillow reads (first frame of an animation), applies the EXIF orientation,
    converts to sRGB, caps the longest side at `max_side`, and re-encodes without metadata:
    JPEG (quality 90) for persons and for garments without transparency, PNG for a garment
    with real transparency. A person's transparency is flattened onto white.

    Raises `ImageError` (one line: the problem and what to do) for an empty file, a file over
    `max_bytes`, a file that is not an image, a truncated or damaged image, one over
    `MAX_PIXELS` (a possible decompression bomb), and one under `MIN_SIDE` px on a side.
    """
    if role not in ("person", "garment"):
        raise ValueError(f"role must be 'person' or 'garment', not {role!r}")
    if max_side < MIN_SIDE:
        raise ValueError(f"max_side must be at least {MIN_SIDE}, not {max_side}")
    _check_byte_size(data, max_bytes)
    image, original_size = _decode(data, max_side=max_side)
    target = _fitted_size(original_size, max_side)
    if min(original_size) < MIN_SIDE:
        raise ImageError(
            f"The image is {_dimensions(original_size)} px, too small to be a usable photo; "
            f"use one at least {MIN_SIDE} px on each side (512 px or more works best)."
        )
    if min(target) < MIN_SIDE:
        raise ImageError(
            f"The image is {_dimensions(original_size)} px, too narrow to be a usable photo; "
            "crop it closer to a portrait (3:4) framing."
        )
    image = _to_rgb_or_rgba(image)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.mode == "RGBA" and role == "person":
        image = _flatten(image)
    if image.mode == "RGBA":
        payload, mime, ext = _encode(image, "PNG"), "image/png", "png"
    else:
        payload, mime, ext = _encode(image, "JPEG", quality=JPEG_QUALITY), "image/jpeg", "jpg"
    return PreparedImage(
        data=payload,
        mime=mime,
        ext=ext,
        width=image.width,
        height=image.height,
        original_size=original_size,
        resized=image.size != original_size,
    )


def make_thumbnail(data: bytes, max_side: int = 320) -> bytes:
    """A small upright JPEG of an image (for the ledger and galleries), at most `max_side` px.

    Transparency is flattened onto white. Raises `ImageError` for input that cannot be decoded.
    """
    if not data:
        raise ImageError(_EMPTY)
    image, original_size = _decode(data, max_side=max_side)
    image = _to_rgb_or_rgba(image)
    target = _fitted_size(original_size, max_side)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
    if image.mode == "RGBA":
        image = _flatten(image)
    return _encode(image, "JPEG", quality=THUMBNAIL_QUALITY)


def describe(prepared: PreparedImage) -> str:
    """A short summary for the UI: `4000×3000 → 2048×1536 JPEG, 412 KB`."""
    final = f"{_dimensions((prepared.width, prepared.height))} "
    final += f"{_FORMAT_NAMES.get(prepared.mime, prepared.ext.upper())}, "
    final += _human_bytes(len(prepared.data))
    if prepared.resized:
        return f"{_dimensions(prepared.original_size)} → {final}"
    return final


def data_url(data: bytes) -> str:
    """An encoded image as a `data:` URL (its type read from its first bytes; JPEG when
    unknown), shown by a browser without any request."""
    encoded = base64.b64encode(data).decode("ascii")
    return f"data:{header_mime(data) or 'image/jpeg'};base64,{encoded}"


def header_mime(data: bytes) -> str | None:
    """The image MIME type the first bytes of `data` announce (no decoding), or None. The one
    table of image signatures: uploads, results and CSV checks all read it."""
    if not data:
        return None
    for prefix, mime in _MAGIC:
        if data.startswith(prefix):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    # "BM" alone starts plenty of text files: also require a known DIB header size.
    if data[:2] == b"BM" and data[14:18] in _BMP_HEADER_SIZES:
        return "image/bmp"
    brand = _iso_brand(data)
    if brand in _HEIC_BRANDS:
        return "image/heic"
    if brand in ("avif", "avis"):
        return "image/avif"
    return None


def result_extension(data: bytes) -> str | None:
    """The file extension of a result image the API may return (PNG, JPEG, WEBP, GIF), by its
    signature; None when it is none of them."""
    mime = header_mime(data)
    return EXTENSIONS[mime] if mime in RESULT_MIMES else None


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type that `data` starts like (`image/jpeg`), or None if it is no image.

    Reads only the header; the image may still turn out truncated or damaged when decoded.
    Recognises HEIC/AVIF containers too, which Pillow may not be able to decode.
    """
    known = header_mime(data)
    if known is not None or not data:
        return known
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return Image.MIME.get(image.format or "")
    except Exception:  # noqa: BLE001 - any failure to parse a header means "not an image"
        return None


# --------------------------------------------------------------------------- uploads

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/tiff": "tif",
    "image/bmp": "bmp",
    "image/heic": "heic",
    "image/avif": "avif",
}
RESULT_MIMES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
_ROLE_LABELS = {"target_image": "target (person) image", "garment_image": "garment image"}


@dataclass(frozen=True)
class Upload:
    """One side of a generate request: either a file to upload or a URL to pass."""

    field_name: str  # target_image | garment_image
    url: str | None = None
    data: bytes | None = None
    filename: str | None = None
    content_type: str | None = None


def upload_for(field_name: str, value: object, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Upload:
    """One side of a generate request (`field_name` target_image or garment_image) from a
    path, bytes, a binary file object, a PIL image or an http(s) URL: a URL to pass, or bytes
    to upload with a type and a name. Checked first: an unusable input raises `ImageError`
    and nothing is sent."""
    label = _ROLE_LABELS[field_name]
    if isinstance(value, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value.strip()):
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ImageError(
                f"The {label} URL {url.split('?')[0]} is not an http(s) URL: give an "
                "http(s) URL or a local file."
            )
        return Upload(field_name, url=url)
    if isinstance(value, str | os.PathLike):
        data, filename = _read_path(Path(value), label, max_bytes)
    elif isinstance(value, bytes | bytearray | memoryview):
        data, filename = bytes(value), None
    elif isinstance(value, Image.Image):
        data, filename = _encode_pil(value, label), None
    elif hasattr(value, "read"):
        data, filename = _read_file_object(value, label, max_bytes), _file_object_name(value)
    else:
        raise ImageError(
            f"The {label} must be a path, bytes, a binary file, a PIL image or an http(s) "
            f"URL, not {type(value).__name__}."
        )
    if not data:
        raise ImageError(f"The {label} is empty (0 bytes): choose another image.")
    if len(data) > max_bytes:
        raise ImageError(_too_large_upload(label, len(data), max_bytes))
    content_type = header_mime(data) or "application/octet-stream"
    ext = EXTENSIONS.get(content_type, "bin")
    return Upload(
        field_name,
        data=data,
        filename=filename or f"{field_name}.{ext}",
        content_type=content_type,
    )


def _read_path(path: Path, label: str, max_bytes: int) -> tuple[bytes, str]:
    try:
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ImageError(f"The {label} {str(path)!r} {what}: check the path.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(_too_large_upload(label, size, max_bytes))
        return path.read_bytes(), path.name
    except OSError as exc:
        raise ImageError(
            f"The {label} {str(path)!r} could not be read ({exc.strerror or exc}): "
            "check the path and its permissions."
        ) from None


def _read_file_object(handle: IO[Any], label: str, max_bytes: int) -> bytes:
    data = handle.read(max_bytes + 1)
    if isinstance(data, str):
        raise ImageError(f"The {label} file was opened in text mode: open it with 'rb'.")
    return bytes(data or b"")


def _too_large_upload(label: str, size: int, max_bytes: int) -> str:
    return (
        f"The {label} is {size / 1024 / 1024:.1f} MB, over the "
        f"{max_bytes / 1024 / 1024:g} MB upload limit: use a smaller image."
    )


def _encode_pil(image: Image.Image, label: str) -> bytes:
    """PNG when the image has transparency (garment cut-outs), else JPEG."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    buffer = io.BytesIO()
    try:
        if has_alpha:
            image.save(buffer, format="PNG")
        else:
            rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
            rgb.save(buffer, format="JPEG", quality=92)
    except (OSError, ValueError) as exc:
        raise ImageError(f"The {label} could not be encoded ({exc}): use an RGB image.") from None
    return buffer.getvalue()


def _file_object_name(handle: object) -> str | None:
    name = getattr(handle, "name", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return os.path.basename(name)
    return None


# --------------------------------------------------------------------------- decoding

_EMPTY = "The file is empty (0 bytes); choose a JPG, PNG or WEBP photo."
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_BMP_HEADER_SIZES = frozenset(size.to_bytes(4, "little") for size in (12, 40, 52, 56, 64, 108, 124))
_HEIC_BRANDS = frozenset({"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"})


def _iso_brand(data: bytes) -> str | None:
    """The major brand of an ISO-BMFF file (HEIC, AVIF), or None."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return data[8:12].decode("latin-1").strip().lower()
    return None


def _check_byte_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise ImageError(_EMPTY)
    if len(data) > max_bytes:
        raise ImageError(
            f"The file is {_human_bytes(len(data))}; the limit is {_human_bytes(max_bytes)}. "
            "Use a smaller photo, or export it at a lower resolution."
        )


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    # Pillow only *warns* between 89 and 179 MP; we refuse. Our own header check (MAX_PIXELS)
    # is the main defence and runs first; this catches what a plugin checks later on its own.
    # catch_warnings is process-wide, but it only touches this one warning category.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _decode(data: bytes, *, max_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """Open, check and fully decode the first frame, upright. Returns the image (in its own
    mode, possibly already shrunk by the JPEG decoder) and the original upright size."""
    with _bomb_warnings_as_errors():
        image = _open(data)
        header_size = image.size
        if header_size[0] * header_size[1] > MAX_PIXELS:
            raise _bomb_error(header_size)
        orientation = _orientation(image)
        original_size = header_size[::-1] if orientation in _SWAPPING_ORIENTATIONS else header_size
        if image.format == "JPEG" and max(header_size) >= 2 * max_side:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale (never below what we need): a 48 MP
            # photo then decodes in a fraction of the time and memory.
            scale = max_side / max(header_size)
            image.draft(None, (round(header_size[0] * scale), round(header_size[1] * scale)))
        try:
            # A full decode: a truncated file fails here (we never set LOAD_TRUNCATED_IMAGES).
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_error(header_size) from None
        except MemoryError:
            raise ImageError(
                "The image is too large to decode in memory; use a smaller photo."
            ) from None
        except Exception:  # noqa: BLE001 - decoders raise many types on bad data
            # Plain words only: the decoder's own text ("image file is truncated (12 bytes
            # not processed)") means nothing to a user.
            raise ImageError(
                "The image is cut short or damaged; re-export or download it again, then retry."
            ) from None
    if orientation in _ROTATIONS:
        try:
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:  # noqa: BLE001 - malformed EXIF: keep the image as stored
            original_size = header_size
    return image, original_size


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            "The image's dimensions are too large to open safely (it may be a decompression "
            f"bomb); use a photo under {MAX_PIXELS // 1_000_000} megapixels."
        ) from None
    except Exception:  # noqa: BLE001 - UnidentifiedImageError and plugin parse errors alike
        raise ImageError(_not_an_image(data)) from None


def _not_an_image(data: bytes) -> str:
    brand = _iso_brand(data)
    if brand in _HEIC_BRANDS:
        return (
            "The file is a HEIC photo, which this tool cannot read; export it as JPG "
            "(on an iPhone: Settings › Camera › Formats › Most Compatible) and try again."
        )
    kind = _looks_like(data)
    hint = f" (it looks like {kind})" if kind else ""
    return f"The file is not an image we can read{hint}; use a JPG, PNG or WEBP photo."


def _looks_like(data: bytes) -> str | None:
    head = data[:512].lstrip()
    if head.startswith(b"%PDF"):
        return "a PDF"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head[:1] == b"<" and (b"html" in head.lower() or b"<!doctype" in head.lower()):
        return "a web page"
    if head[:1] == b"<" and b"<svg" in head.lower():
        return "an SVG drawing"
    if head[:1] in (b"{", b"["):
        return "JSON"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text"


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF counts as upright
        return 1


def _bomb_error(size: tuple[int, int]) -> ImageError:
    megapixels = size[0] * size[1] / 1_000_000
    return ImageError(
        f"The image is {_dimensions(size)} px ({megapixels:,.0f} megapixels), over the "
        f"{MAX_PIXELS // 1_000_000}-megapixel limit (it may be a decompression bomb); "
        "use a smaller photo."
    )


# --------------------------------------------------------------------------- conversion


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """sRGB "RGB", or "RGBA" when the image has real (not all-opaque) transparency."""
    if image.mode in _HIGH_BIT_MODES:
        image = _to_8_bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        rgb = _to_srgb(rgba.convert("RGB"), image.info.get("icc_profile"))
        if alpha.getextrema()[0] < 255:
            rgb.putalpha(alpha)
        return rgb
    return _to_srgb(image, image.info.get("icc_profile"))


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale scaled (not clipped) to 8-bit "L"."""
    if image.mode == "F":
        low, high = image.getextrema()
        if 0 <= low and high <= 1:
            return image.point(lambda v: v * 255).convert("L")
    else:
        image = image.convert("I")
        low, high = image.getextrema()
        if 0 <= low and high <= 255:
            return image.convert("L")
        if 0 <= low and high <= 65535:
            return image.point(lambda v: v / 257).convert("L")
    span = (high - low) or 1
    return image.point(lambda v: (v - low) * 255 / span).convert("L")


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert to sRGB "RGB" through the embedded colour profile (wide-gamut phone photos,
    CMYK print files), or plainly when there is none or it is unusable."""
    if icc_profile and image.mode in ("RGB", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(image, source, _srgb_profile(), outputMode="RGB")
            if converted is not None:
                return converted
        except Exception:  # noqa: BLE001 - a broken profile: fall back to a plain conversion
            pass
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:
        raise ImageError(
            f"The image uses the {image.mode} colour mode, which cannot be converted; "
            "save it as an sRGB JPG or PNG."
        ) from None


def _flatten(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    if max(width, height) <= max_side:
        return size
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    # No EXIF, ICC profile, comment or text chunk survives: Pillow copies some of them from
    # `info` when saving, so clear it (the pixels are sRGB and upright by now).
    image.info = {}
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", optimize=True, **options)
    else:
        image.save(buffer, "PNG", **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------- formatting


def _dimensions(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def _human_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{round(count / 1024)} KB"
    megabytes = f"{count / (1024 * 1024):.1f}".removesuffix(".0")
    return f"{megabytes} MB"


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SIDE",
    "MAX_PIXELS",
    "MIN_SIDE",
    "ImageError",
    "PreparedImage",
    "Role",
    "describe",
    "make_thumbnail",
    "prepare_image",
    "sniff_mime",
    "header_mime",
    "result_extension",
    "upload_for",
    "Upload",
]
