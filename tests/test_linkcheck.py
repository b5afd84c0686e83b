"""Check links reads each image's dimensions from its first bytes: a pixel bomb (more pixels
than the app will decode) fails when the table is checked, before any credit is spent, not
when the batch runs. Real HTTP on loopback; the setting allows 127.0.0.1 for these tests."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from mirrago.images import MAX_PIXELS
from mirrago.linkcheck import check_links


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG declaring `width`×`height` (the pixels themselves never follow)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    first_row = zlib.compress(b"\0" + b"\0" * 3 * min(width, 1024))[:64]
    idat = b"IDAT" + first_row
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(first_row))
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to declare `width`×`height`."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_file(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


FILES = {
    "/bomb.png": ("image/png", png_header(20_000, 20_000)),  # 400 MP
    "/just-over.png": ("image/png", png_header(8_000, 8_000)),  # 64 MP: past ours, not Pillow's
    "/bomb.jpg": ("image/jpeg", jpeg_declaring(30_000, 30_000)),
    "/fine.png": ("image/png", png_file(64, 48)),
    "/untyped-bomb": ("", png_header(20_000, 20_000)),
}


class Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        kind, body = FILES.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in FILES else 404)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MIRRAGO_ALLOW_PRIVATE_URLS", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/bomb.png", "/just-over.png", "/bomb.jpg", "/untyped-bomb"])
def test_a_pixel_bomb_fails_the_link_check(files: str, path: str) -> None:
    url = files + path
    problem = check_links([url], timeout=3)[url] or ""
    assert problem.startswith("too large"), problem
    assert f"{MAX_PIXELS // 1_000_000}-megapixel limit" in problem


def test_the_size_is_said_when_it_is_known(files: str) -> None:
    url = f"{files}/just-over.png"
    assert "8,000×8,000 px" in (check_links([url], timeout=3)[url] or "")


def test_an_image_within_the_limit_passes(files: str) -> None:
    url = f"{files}/fine.png"
    assert check_links([url], timeout=3) == {url: None}
