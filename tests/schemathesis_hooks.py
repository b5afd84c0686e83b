"""Schemathesis hooks for fuzzing the sandbox (tests/test_sandbox_openapi.py loads them through
SCHEMATHESIS_HOOKS; integrators can too).

Two rules of generate-image are about content a JSON schema cannot describe: an uploaded file
must decode as a JPEG, PNG or WebP image, and an image URL must point at one the sandbox can
fetch. So that schema-valid requests are also valid requests (and Schemathesis's
positive-data check stays meaningful), these hooks generate the media types the document names
for uploads as real images, and `uri` values as the sandbox's own sample URLs. Set
MIRRAGO_SANDBOX_URL to the sandbox's base URL.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request

import schemathesis
from hypothesis import strategies as st
from PIL import Image

BASE_URL = os.environ.get("MIRRAGO_SANDBOX_URL", "http://127.0.0.1:8700").rstrip("/")
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def _encode(fmt: str, width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _images(fmt: str) -> st.SearchStrategy[bytes]:
    channel = st.integers(0, 255)
    return st.builds(
        _encode,
        st.just(fmt),
        st.integers(1, 48),
        st.integers(1, 48),
        st.tuples(channel, channel, channel),
    )


for _media_type, _fmt in FORMATS.items():
    schemathesis.openapi.media_type(_media_type, _images(_fmt))

with urllib.request.urlopen(f"{BASE_URL}/samples", timeout=10) as _response:  # noqa: S310
    _SAMPLE_URLS = [url for urls in json.load(_response).values() for url in urls]
schemathesis.openapi.format("uri", st.sampled_from(_SAMPLE_URLS))
