"""Checking image links before a batch spends credits: is each URL reachable, and an image?

HEAD first; when the server refuses HEAD or does not say the type, a ranged GET of the first
bytes (sniffed). Bounded concurrency and a timeout per URL; every problem is one plain sentence.
These are the user's own links (not the Mirrago API), so this is not the client's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import requests

from mirrago.images import sniff_mime

HEAD_BYTES = 4096


def check_link(url: str, timeout: float = 5.0) -> str | None:
    """None when `url` answers with an image, else what is wrong with it."""
    try:
        with requests.Session() as http:
            answer = http.head(url, timeout=timeout, allow_redirects=True)
            kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if answer.ok and kind.startswith("image/"):
                return None
            if answer.ok and kind and not kind.startswith(("image/", "application/octet")):
                return f"not an image (the server says {kind})"
            headers = {"Range": f"bytes=0-{HEAD_BYTES - 1}"}
            with http.get(url, timeout=timeout, headers=headers, stream=True) as answer:
                if answer.status_code >= 400:
                    return f"unreachable (HTTP {answer.status_code})"
                head = answer.raw.read(HEAD_BYTES, decode_content=True)
    except requests.Timeout:
        return f"unreachable (no answer within {timeout:g} s)"
    except requests.RequestException:
        return "unreachable (the server cannot be reached)"
    if sniff_mime(head) is None:
        return "not an image (JPG, PNG or WEBP expected)"
    return None


def check_links(
    urls: Iterable[str], *, timeout: float = 5.0, workers: int = 8
) -> dict[str, str | None]:
    """Each distinct URL's problem (None: fine), checked `workers` at a time."""
    distinct = list(dict.fromkeys(urls))
    if not distinct:
        return {}
    with ThreadPoolExecutor(min(workers, len(distinct)), "mirrago-linkcheck") as pool:
        found = pool.map(lambda url: check_link(url, timeout), distinct)
        return dict(zip(distinct, found, strict=True))
