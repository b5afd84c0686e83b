"""Everything the app fetches on a user's behalf goes through one outbound policy: the Batch
page's "Check links", the sidebar's "Test connection" and the client a sidebar connection then
uses. None of them connects to this machine or its private network, however the address is
written, by DNS name or after a redirect, and their refusals read the same whatever is (or is
not) listening there. MIRRAGO_ALLOW_PRIVATE_URLS opens exactly what it names.

Every test runs over real sockets on loopback. The listeners record each TCP connection they
accept, so "nothing connected" is observed, not inferred. 127.0.0.2 (also loopback) stands for
an allowed host where a test needs one: the setting allows it and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import PNG_1X1, Listener

from mirrago.config import Settings, load_settings
from mirrago.errors import AuthenticationError, MirragoError
from mirrago.linkcheck import check_links
from mirrago.outbound import OutboundPolicy
from mirrago.services import open_services
from mirrago.ui.connection import check_connection
from mirrago.ui.session import live_settings

REFUSED_LINK = "not a public address"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = _ipv6_loopback()


class Routes(BaseHTTPRequestHandler):
    """Answers `routes[path] = (status, headers, body)` for GET and POST; records each path."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    hits: list[str] = []

    def _answer(self) -> None:
        self.hits.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, headers, body = self.routes.get(self.path, (404, {}, b"no such page"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815 - http.server's names
    do_POST = _answer  # noqa: N815
    do_HEAD = _answer  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


class WebServer:
    """An HTTP server on `host` with its own routes and hit list."""

    def __init__(self, host: str) -> None:
        handler = type("Handler", (Routes,), {"routes": {}, "hits": []})
        self.routes = handler.routes
        self.hits = handler.hits
        self._server = ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env, secrets or MIRRAGO_* from the developer's machine; a data dir of its own."""
    for name in list(os.environ):
        if name.startswith("MIRRAGO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIRRAGO_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


@pytest.fixture
def allowed_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebServer]:
    """A web server on 127.0.0.2, the one private address the setting allows."""
    monkeypatch.setenv("MIRRAGO_ALLOW_PRIVATE_URLS", "127.0.0.2")
    server = WebServer("127.0.0.2")
    yield server
    server.close()


def loopback_urls(port: int) -> list[str]:
    """The same listener, written every way a user might: literal, name, IPv4-mapped IPv6,
    decimal, octal and short forms."""
    return [
        f"http://127.0.0.1:{port}/x.png",
        f"http://localhost:{port}/x.png",
        f"http://[::ffff:127.0.0.1]:{port}/x.png",
        f"http://2130706433:{port}/x.png",
        f"http://0177.0.0.1:{port}/x.png",
        f"http://127.1:{port}/x.png",
        f"https://127.0.0.1:{port}/x.png",
    ]


LOOPBACK_FORMS = range(len(loopback_urls(1)))


# ---- the Batch page's link check ------------------------------------------------------------


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_check_links_connects_to_no_loopback_address(listener: Listener, form: int) -> None:
    url = loopback_urls(listener.port)[form]
    found = check_links([url], timeout=3)
    assert REFUSED_LINK in (found[url] or ""), found
    assert listener.connections == []


def test_check_links_connects_to_no_ipv6_loopback_address() -> None:
    v6 = Listener("::1") if IPV6 else None  # without IPv6 here, only the refusal is seen
    try:
        url = f"http://[::1]:{v6.port if v6 else 9}/x.png"
        assert REFUSED_LINK in (check_links([url], timeout=3)[url] or "")
        assert v6 is None or v6.connections == []
    finally:
        if v6 is not None:
            v6.close()


def test_check_links_says_the_same_thing_whatever_listens_on_a_refused_address(
    listener: Listener,
) -> None:
    locked = WebServer("127.0.0.1")
    locked.routes["/admin/secret"] = (401, {"WWW-Authenticate": "Basic"}, b"no")
    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    closed = socket.socket()  # a port nobody listens on
    closed.bind(("127.0.0.1", 0))
    try:
        urls = [
            f"http://127.0.0.1:{listener.port}/ok.png",
            f"{locked.url}/admin/secret",
            f"http://127.0.0.1:{silent.getsockname()[1]}/",
            f"http://127.0.0.1:{closed.getsockname()[1]}/",
            "http://169.254.169.254/latest/meta-data/",
        ]
        found = check_links(urls, timeout=2)
        assert len(set(found.values())) == 1, found
        assert REFUSED_LINK in (found[urls[0]] or "")
        assert locked.hits == [] and listener.connections == []
    finally:
        locked.close()
        silent.close()
        closed.close()


def test_check_links_follows_no_redirect_from_an_allowed_host_to_loopback(
    allowed_host: WebServer, listener: Listener
) -> None:
    moved = f"{allowed_host.url}/moved.png"
    allowed_host.routes["/moved.png"] = (
        302,
        {"Location": f"http://127.0.0.1:{listener.port}/inside.png"},
        b"",
    )
    found = check_links([moved], timeout=3)
    assert REFUSED_LINK in (found[moved] or ""), found
    assert allowed_host.hits == ["/moved.png"]
    assert listener.connections == []


def test_check_links_on_an_allowed_host_keeps_its_plain_messages(allowed_host: WebServer) -> None:
    allowed_host.routes["/ok.png"] = (200, {"Content-Type": "image/png"}, PNG_1X1)
    allowed_host.routes["/page.html"] = (200, {"Content-Type": "text/html"}, b"<html></html>")
    allowed_host.routes["/moved.png"] = (301, {"Location": "/ok.png"}, b"")
    urls = [f"{allowed_host.url}{path}" for path in ("/ok.png", "/page.html", "/gone.png")]
    urls.append(f"{allowed_host.url}/moved.png")
    found = check_links(urls, timeout=3)
    assert found[urls[0]] is None
    assert found[urls[1]] == "not an image (the server says text/html)"
    assert found[urls[2]] == "unreachable (HTTP 404)"
    assert found[urls[3]] is None  # a redirect that stays on allowed addresses is followed


# ---- the sidebar's connection check, and the client it leaves the session with ---------------


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_connection_check_posts_no_credentials_to_a_loopback_address(
    listener: Listener, form: int
) -> None:
    base_url = loopback_urls(listener.port)[form].removesuffix("/x.png")
    result = check_connection(base_url, "client-id", "a-secret-value")
    assert not result.ok
    assert "not a public address" in result.message, result.message
    assert "a-secret-value" not in result.message
    assert listener.connections == []


def test_connection_check_refuses_every_loopback_address_with_one_message(
    listener: Listener,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        messages = {  # each names the address typed in, and says nothing else about it
            check_connection(f"http://127.0.0.1:{port}", "id", "secret").message.replace(
                str(port), "PORT"
            )
            for port in (listener.port, closed.getsockname()[1])
        }
    finally:
        closed.close()
    assert len(messages) == 1 and listener.connections == []


@pytest.mark.parametrize("status", [405, 404])
def test_a_token_address_answering_405_or_404_is_not_a_credentials_refusal(
    allowed_host: WebServer, status: int
) -> None:
    allowed_host.routes["/oauth/token"] = (status, {"Content-Type": "text/html"}, b"<p>no</p>")
    result = check_connection(allowed_host.url, "client-id", "secret")
    assert not result.ok
    assert "refused this client id or secret" not in result.message
    assert "does not look like a Mirrago API" in result.message
    assert "base URL" in result.message and "MIRRAGO_" not in result.message


@pytest.mark.parametrize("status", [401, 403])
def test_a_token_address_answering_401_or_403_refuses_the_credentials(
    allowed_host: WebServer, status: int
) -> None:
    allowed_host.routes["/oauth/token"] = (status, {}, b'{"detail": "invalid client"}')
    result = check_connection(allowed_host.url, "client-id", "secret")
    assert "refused this client id or secret" in result.message


def sidebar_client_settings(base_url: str) -> Settings:
    """The settings a session gets when a user connects to `base_url` from the sidebar."""
    return live_settings(base_url, "client-id", "a-secret-value")


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_the_client_of_a_sidebar_connection_reaches_no_loopback_address(
    listener: Listener, form: int
) -> None:
    base_url = loopback_urls(listener.port)[form].removesuffix("/x.png")
    with open_services(sidebar_client_settings(base_url), start_runner=False) as services:
        with pytest.raises(MirragoError) as raised:
            services.client.authenticate()
    assert "not a public address" in str(raised.value)
    assert not isinstance(raised.value, AuthenticationError)
    assert listener.connections == []


def test_the_client_of_a_sidebar_connection_follows_no_redirect_to_loopback(
    allowed_host: WebServer, listener: Listener
) -> None:
    token = {"access_token": "t0k3n", "expires_in": 3600}
    allowed_host.routes["/oauth/token"] = (
        200,
        {"Content-Type": "application/json"},
        json.dumps(token).encode(),
    )
    inside = f"http://127.0.0.1:{listener.port}"
    allowed_host.routes["/result.png"] = (302, {"Location": f"{inside}/r.png"}, b"")
    allowed_host.routes["/v1/mirrago/job/j1"] = (302, {"Location": f"{inside}/job"}, b"")
    with open_services(sidebar_client_settings(allowed_host.url), start_runner=False) as services:
        services.client.authenticate()  # the allowed host itself is reachable
        with pytest.raises(MirragoError) as download:
            services.client.download(f"{allowed_host.url}/result.png")
        with pytest.raises(MirragoError) as job:
            services.client.job("j1")
    assert "not a public address" in str(download.value)
    assert "not a public address" in str(job.value)
    assert listener.connections == []
    assert allowed_host.hits == ["/oauth/token", "/result.png", "/v1/mirrago/job/j1"]


def test_the_configured_base_url_and_the_sandbox_are_not_filtered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Set by whoever runs the app, not typed by a user: an internal gateway stays reachable.
    monkeypatch.setenv("MIRRAGO_BASE_URL", "http://127.0.0.1:9")
    assert load_settings().client_outbound is None
    monkeypatch.delenv("MIRRAGO_BASE_URL")
    assert load_settings().client_outbound is None
    typed = sidebar_client_settings("https://api.example.com")
    assert typed.client_outbound == OutboundPolicy()


# ---- the setting -----------------------------------------------------------------------------


def test_allow_private_urls_names_hosts_and_networks() -> None:
    policy = OutboundPolicy.from_setting("10.1.2.0/24, images.internal,fd00::/8")
    ip = ipaddress.ip_address
    assert policy.permits("x", ip("10.1.2.7"))
    assert policy.permits("x", ip("::ffff:10.1.2.7"))  # the same address, wrapped in IPv6
    assert policy.permits("images.internal", ip("192.168.9.9"))
    assert policy.permits("x", ip("fd00::1"))
    assert not policy.permits("x", ip("10.1.3.7"))
    assert not policy.permits("x", ip("127.0.0.1"))
    assert policy.permits("x", ip("8.8.8.8"))
    assert OutboundPolicy.from_setting("1").permits("x", ip("127.0.0.1"))
    assert not OutboundPolicy.from_setting("0").permits("x", ip("127.0.0.1"))


def test_allow_private_urls_1_lets_a_team_check_links_on_its_own_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIRRAGO_ALLOW_PRIVATE_URLS", "1")
    server = WebServer("127.0.0.1")
    try:
        server.routes["/ok.png"] = (200, {"Content-Type": "image/png"}, PNG_1X1)
        assert check_links([f"{server.url}/ok.png"], timeout=3) == {f"{server.url}/ok.png": None}
    finally:
        server.close()
