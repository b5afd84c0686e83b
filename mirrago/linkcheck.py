"""Checking image links before a batch spends credits: is each URL reachable, an image, and of
a size the app will take?

One ranged GET of the first bytes per URL, through the app's outbound policy
(`mirrago.outbound`): a link to this machine or its private network is refused before anything
connects, with one message whatever is behind it, so the check cannot be used to scan the
server's network. The bytes read are sniffed, and the image's dimensions read from its header,
so a pixel bomb fails here rather than when the batch runs. Bounded concurrency and time per
URL; every problem is one plain sentence. These are the user's own links (not the Mirrago
API), so this is not the client's job.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import requests
from PIL import Image

from mirrago.config import load_settings
from mirrago.images import MAX_PIXELS, sniff_mime
from mirrago.outbound import FetchError, OutboundPolicy, RefusedAddress, read_head

# Enough for the dimensions of a PNG, GIF or WEBP, and of a JPEG whose EXIF block comes first.
HEAD_BYTES = 64 * 1024
SHOWN_TYPE_CHARS = 40
REFUSED = (
    "not a public address: the app does not fetch links on this machine or its private "
    "network. Use a public link, or upload the file."
)


def check_link(
    url: str, timeout: float = 5.0, *, policy: OutboundPolicy | None = None
) -> str | None:
    """None when `url` answers with a usable image, else what is wrong with it. `policy`:
    where links may lead (default: the configured one)."""
    policy = policy or load_settings().outbound
    deadline = time.monotonic() + 2 * timeout
    headers = {"Range": f"bytes=0-{HEAD_BYTES - 1}"}
    try:
        with (
            policy.session() as http,
            policy.get(http, url.strip(), timeout=timeout, headers=headers) as answer,
        ):
            if answer.status_code >= 400:
                return f"unreachable (HTTP {answer.status_code})"
            kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and not kind.startswith(("image/", "application/octet", "binary/")):
                return f"not an image (the server says {kind[:SHOWN_TYPE_CHARS]})"
            head = read_head(answer, HEAD_BYTES, deadline=deadline)
    except RefusedAddress:
        return REFUSED
    except FetchError as error:
        return f"unreachable ({str(error).rstrip('.')})"
    except requests.Timeout:
        return f"unreachable (no answer within {timeout:g} s)"
    except requests.RequestException:
        return "unreachable (the server cannot be reached)"
    if sniff_mime(head) is None:
        return "not an image (JPG, PNG or WEBP expected)"
    return _pixel_problem(head)


def _pixel_problem(head: bytes) -> str | None:
    """What is wrong with the dimensions the image's header declares, if anything is known."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(head)) as image:  # reads the header only
                width, height = image.size
    except Image.DecompressionBombError:
        width = height = None  # past Pillow's own hard limit, far above ours
    except Exception:  # noqa: BLE001 - a header cut short: the size is not known yet
        return None
    if width is not None and height is not None and width * height <= MAX_PIXELS:
        return None
    size = f"{width:,}×{height:,} px, " if width and height else ""
    return (
        f"too large ({size}over the {MAX_PIXELS // 1_000_000}-megapixel limit; it may be a "
        "decompression bomb). Use a smaller image."
    )


def check_links(
    urls: Iterable[str],
    *,
    timeout: float = 5.0,
    workers: int = 8,
    policy: OutboundPolicy | None = None,
) -> dict[str, str | None]:
    """Each distinct URL's problem (None: fine), checked `workers` at a time, through `policy`
    (default: the configured one)."""
    distinct = list(dict.fromkeys(urls))
    if not distinct:
        return {}
    chosen = policy or load_settings().outbound
    with ThreadPoolExecutor(min(workers, len(distinct)), "mirrago-linkcheck") as pool:
        found = pool.map(lambda url: check_link(url, timeout, policy=chosen), distinct)
        return dict(zip(distinct, found, strict=True))
