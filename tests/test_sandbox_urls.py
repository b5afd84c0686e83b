"""The sandbox fetches image URLs (and posts callbacks) only to public addresses: no loopback,
private, link-local, shared, reserved, multicast or unspecified address, however written, by DNS
name, after a redirect or after DNS changes its answer (a host is resolved once and the
connection goes to the address checked); its own sample URLs still work.

Everything runs over real HTTP on loopback. The machine has no public network, so where a test
needs a "public" host it treats one loopback address (127.0.0.2) as public by patching the
classifier, and DNS names are given fixed answers by patching `socket.getaddrinfo` for those
names only.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from PIL import Image
from support import Listener, eventually

from mirrago import outbound
from mirrago.client import MirragoClient
from mirrago.errors import AuthenticationError, BadRequestError
from mirrago.sandbox.server import EmbeddedSandbox

TIMEOUT = 60  # a deadline for each request, generous on a busy machine
PRIVATE = "that address is on a private network; the service cannot fetch it"
MakeSandbox = Callable[..., EmbeddedSandbox]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 60), (90, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


class CountingServer:
    """An HTTP server on a loopback address that counts the requests it gets and answers each
    path as told: `routes[path] = (status, headers, body)`; anything else is a PNG."""

    def __init__(self, host: str = "127.0.0.1"):
        self.hits: list[str] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.hits.append(self.path)
                status, headers, body = outer.routes.get(
                    self.path, (200, {"Content-Type": "image/png"}, png_bytes())
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815 - callbacks

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture
def guarded(make_sandbox: MakeSandbox) -> EmbeddedSandbox:
    """A sandbox as users get it: private addresses refused."""
    return make_sandbox(allow_private_urls=False)


def token_headers(sandbox: EmbeddedSandbox) -> dict[str, str]:
    body = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "grant_type": "client_credentials",
    }
    response = requests.post(f"{sandbox.base_url}/oauth/token", json=body, timeout=TIMEOUT)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def submit_urls(sandbox: EmbeddedSandbox, target: str, garment: str, **extra: Any):
    body = {"target_image_url": target, "garment_image_url": garment, **extra}
    return requests.post(
        f"{sandbox.base_url}/v1/mirrago/generate-image",
        headers=token_headers(sandbox),
        json=body,
        timeout=TIMEOUT,
    )


def own_samples(sandbox: EmbeddedSandbox) -> tuple[str, str]:
    urls = requests.get(f"{sandbox.base_url}/samples", timeout=TIMEOUT).json()
    return urls["persons"][0], urls["garments"][0]


@pytest.fixture
def dns_lookups() -> list[str]:
    """The names `fake_dns` was asked about, one entry per lookup."""
    return []


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch, dns_lookups: list[str]) -> dict[str, list[str]]:
    """`names[host] = [address, ...]`: getaddrinfo answers those names with those addresses
    (one answer per call, in turn, the last repeated), every other name as usual."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        dns_lookups.append(str(host))
        answers = names.get(str(host))
        if not answers:
            return real(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def public_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat 127.0.0.2 as a public address: the stand-in for an internet host."""
    real = outbound.is_public

    def is_public(address: outbound.IPAddress) -> bool:
        return address == ipaddress.ip_address("127.0.0.2") or real(address)

    monkeypatch.setattr(outbound, "is_public", is_public)


# ---- the address classifier -----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert outbound.is_public(ipaddress.ip_address(address))


def test_a_dns_name_with_any_private_address_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["internal.example.test"] = ["10.1.2.3"]
    with pytest.raises(outbound.RefusedAddress):
        outbound.OutboundPolicy().check_host("internal.example.test", 80)
    with pytest.raises(outbound.RefusedAddress):
        outbound.OutboundPolicy().check_host("localhost", 80)  # a real name on every machine


# ---- through the sandbox's HTTP API ---------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "127.1"],
)
def test_image_url_on_loopback_is_refused_and_never_fetched(
    guarded: EmbeddedSandbox, counting: CountingServer, host: str
) -> None:
    port = counting.url.rsplit(":", 1)[1]
    person, garment = own_samples(guarded)
    response = submit_urls(guarded, f"http://{host}:{port}/person.png", garment)
    assert response.status_code == 400, response.text
    assert PRIVATE in response.json()["detail"]
    assert "target_image_url" in response.json()["detail"]
    assert counting.hits == []
    assert guarded.engine.stats()["jobs_created"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x.png",
        "http://[::1]:9/x.png",
        "http://10.255.255.1/x.png",
        "http://0.0.0.0:9/x.png",
        "https://[::ffff:a9fe:a9fe]/x.png",
    ],
)
def test_image_url_on_link_local_or_private_networks_is_refused(
    guarded: EmbeddedSandbox, url: str
) -> None:
    person, _ = own_samples(guarded)
    response = submit_urls(guarded, person, url)
    assert response.status_code == 400, response.text
    assert PRIVATE in response.json()["detail"]
    assert "garment_image_url" in response.json()["detail"]


def test_dns_name_resolving_to_a_private_address_is_refused(
    guarded: EmbeddedSandbox, counting: CountingServer, fake_dns: dict[str, list[str]]
) -> None:
    fake_dns["images.example.test"] = ["127.0.0.1"]
    port = counting.url.rsplit(":", 1)[1]
    person, _ = own_samples(guarded)
    response = submit_urls(guarded, person, f"http://images.example.test:{port}/g.png")
    assert response.status_code == 400 and PRIVATE in response.json()["detail"]
    assert counting.hits == []


@pytest.mark.usefixtures("public_127_0_0_2")
def test_redirect_from_a_public_host_to_a_private_one_is_refused(
    guarded: EmbeddedSandbox, counting: CountingServer
) -> None:
    public = CountingServer("127.0.0.2")
    try:
        public.routes["/moved.png"] = (302, {"Location": f"{counting.url}/secret.png"}, b"")
        public.routes["/fine.png"] = (301, {"Location": "/final.png"}, b"")
        person, _ = own_samples(guarded)
        response = submit_urls(guarded, person, f"{public.url}/moved.png")
        assert response.status_code == 400 and PRIVATE in response.json()["detail"]
        assert public.hits == ["/moved.png"] and counting.hits == []

        # A redirect that stays on public addresses is followed.
        response = submit_urls(guarded, person, f"{public.url}/fine.png")
        assert response.status_code == 200, response.text
        assert public.hits[-2:] == ["/fine.png", "/final.png"]
    finally:
        public.close()


def public_and_inside_on_one_port() -> tuple[CountingServer, Listener]:
    """An image server on 127.0.0.2 (the "public" host) and a connection-recording listener on
    127.0.0.1 at the same port: a URL's port then reaches either, depending on the address."""
    for _attempt in range(20):
        public = CountingServer("127.0.0.2")
        try:
            return public, Listener("127.0.0.1", int(public.url.rsplit(":", 1)[1]))
        except OSError:  # that port is taken on 127.0.0.1: try another
            public.close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.mark.usefixtures("public_127_0_0_2")
def test_a_host_is_resolved_once_and_the_connection_goes_to_the_address_checked(
    guarded: EmbeddedSandbox, fake_dns: dict[str, list[str]], dns_lookups: list[str]
) -> None:
    # Public when first asked, loopback on any later lookup (DNS rebinding): the sandbox asks
    # once and connects to the address it checked, so nothing ever reaches loopback.
    public, inside = public_and_inside_on_one_port()
    try:
        fake_dns["rebind.example.test"] = ["127.0.0.2", "127.0.0.1"]
        port = public.url.rsplit(":", 1)[1]
        person, _ = own_samples(guarded)
        response = submit_urls(guarded, person, f"http://rebind.example.test:{port}/g.png")
        assert inside.connections == []
        assert dns_lookups.count("rebind.example.test") == 1
        assert response.status_code == 200, response.text
        assert public.hits == ["/g.png"]
    finally:
        public.close()
        inside.close()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0177.0.0.1"]
)
def test_image_url_on_loopback_makes_no_connection_at_all(
    guarded: EmbeddedSandbox, host: str
) -> None:
    inside = Listener()
    try:
        person, _ = own_samples(guarded)
        response = submit_urls(guarded, person, f"http://{host}:{inside.port}/g.png")
        assert response.status_code == 400 and PRIVATE in response.json()["detail"]
        assert inside.connections == []
    finally:
        inside.close()


def test_the_sandboxs_own_sample_urls_are_still_served(guarded: EmbeddedSandbox) -> None:
    person, garment = own_samples(guarded)
    response = submit_urls(guarded, person, garment)
    assert response.status_code == 200, response.text
    missing = f"{guarded.base_url}/samples/garments/no-such-garment.png"
    response = submit_urls(guarded, person, missing)
    assert response.status_code == 400 and "no such sample" in response.json()["detail"]
    other_route = f"{guarded.base_url}/health"  # its own address, but not a sample
    response = submit_urls(guarded, person, other_route)
    assert response.status_code == 400 and PRIVATE in response.json()["detail"]


def test_allow_private_urls_lets_loopback_images_through(
    make_sandbox: MakeSandbox, counting: CountingServer
) -> None:
    sandbox = make_sandbox(allow_private_urls=True)
    person, _ = own_samples(sandbox)
    response = submit_urls(sandbox, person, f"{counting.url}/g.png")
    assert response.status_code == 200, response.text
    assert counting.hits == ["/g.png"]


@pytest.mark.parametrize("status", [401, 403])
def test_image_host_refusing_access_is_an_image_url_problem_not_a_credentials_one(
    make_sandbox: MakeSandbox, counting: CountingServer, status: int
) -> None:
    sandbox = make_sandbox(allow_private_urls=True)
    counting.routes["/locked.png"] = (status, {"WWW-Authenticate": "Basic"}, b"no")
    person, _ = own_samples(sandbox)
    locked = f"{counting.url}/locked.png"
    response = submit_urls(sandbox, person, locked)
    assert response.status_code == 400
    text = response.json()["detail"]
    assert text.startswith("Invalid image URL (garment_image_url)")
    for credentials_word in ("401", "403", "unauthor", "client id", "secret", "credential"):
        assert credentials_word not in text.lower()

    client = MirragoClient(sandbox.base_url, sandbox.client_id, sandbox.client_secret)
    with pytest.raises(BadRequestError) as raised:
        client.generate(person, locked)
    assert not isinstance(raised.value, AuthenticationError)
    assert "image" in str(raised.value).lower() and "client" not in str(raised.value).lower()


def test_callbacks_to_private_addresses_are_not_sent(
    guarded: EmbeddedSandbox, counting: CountingServer
) -> None:
    person, garment = own_samples(guarded)
    response = submit_urls(guarded, person, garment, callback_url=f"{counting.url}/hook")
    assert response.status_code == 200, response.text
    eventually(lambda: guarded.engine.stats()["callback_failures"], "the refusal is counted", 60)
    assert guarded.engine.stats()["callback_failures"] == 1
    assert counting.hits == []
