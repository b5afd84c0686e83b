"""Fetching image URLs for the sandbox from public addresses only.

A try-on request names image URLs the sandbox downloads itself, so without a guard anyone who
can submit a job can make the sandbox read its own machine or network (a cloud metadata service
at 169.254.169.254, an admin page on 127.0.0.1). `fetch_public` resolves the host and refuses
loopback, private, link-local, shared, reserved, multicast and unspecified addresses (IPv4 and
IPv6, including IPv4 addresses wrapped in IPv6), follows redirects itself and checks every hop,
and checks the address each connection actually reached, so a name that resolves to a public
address once and to a private one the next time (DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
PRIVATE_MESSAGE = (
    "that address is on a private network; the service cannot fetch it. "
    "Use a public link, or upload the file."
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """The URL cannot be fetched; the message says why, in words for the person who sent it."""


class PrivateAddressError(FetchError):
    """The URL's host is, or resolves to, an address that is not public."""

    def __init__(self, host: str, address: str):
        super().__init__(PRIVATE_MESSAGE)
        self.host = host
        self.address = address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), 6to4
    (2002:aabb:ccdd::) or NAT64 (64:ff9b::a.b.c.d); None for a plain IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet; False for loopback, private, link-local,
    shared (CGNAT), reserved, multicast and unspecified ones, however written."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def check_host(host: str, port: int) -> None:
    """Resolve `host` and raise PrivateAddressError unless every address it has is public
    (a name with one private address among public ones is refused: which one a connection
    uses is not ours to choose). FetchError when the name does not resolve."""
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError("its host name could not be found.") from None
    for info in infos:
        address = str(info[4][0])
        if not is_public(_parse(address)):
            raise PrivateAddressError(host, address)


def _check_peer(connection: HTTPConnection, sock: socket.socket) -> None:
    peer = str(sock.getpeername()[0])
    if not is_public(_parse(peer)):
        sock.close()
        raise PrivateAddressError(connection.host, peer)


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(self, sock)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(self, sock)
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """Connections that refuse to talk to a non-public peer, whatever DNS said before."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def public_session(allow_private: bool = False) -> requests.Session:
    """A session whose connections refuse non-public peers (unless `allow_private`); with no
    proxy from the environment, so the peer checked is the host itself."""
    session = requests.Session()
    session.trust_env = False
    if not allow_private:
        adapter = _GuardedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def check_url(url: str, allow_private: bool = False) -> None:
    """FetchError unless `url` is http(s) and (unless `allow_private`) its host is public."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise FetchError("it must be an http:// or https:// URL with a valid host.") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise FetchError("it must be an http:// or https:// URL.")
    port = port or (443 if parts.scheme == "https" else 80)
    if not allow_private:
        check_host(hostname, port)


def fetch_public(
    url: str,
    *,
    allow_private: bool = False,
    max_bytes: int,
    timeout: tuple[float, float],
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET `url` and return the body (status 200, at most `max_bytes`), following up to
    MAX_REDIRECTS redirects and checking every URL on the way. Raises FetchError (with
    PrivateAddressError for a non-public address unless `allow_private`)."""
    with public_session(allow_private) as session:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, allow_private)
            try:
                with session.get(
                    url, timeout=timeout, stream=True, headers=headers, allow_redirects=False
                ) as response:
                    location = response.headers.get("Location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        url = urljoin(url, location)
                        continue
                    _check_status(response.status_code)
                    return _read(response, max_bytes)
            except requests.RequestException as error:
                raise FetchError(f"could not fetch it ({type(error).__name__}).") from None
        raise FetchError(f"it redirects more than {MAX_REDIRECTS} times.")


def _check_status(status: int) -> None:
    if status in (401, 403, 407):
        # Said without the status number: it is the image host's access rule, not the
        # caller's API credentials, and must not read as a problem with them.
        raise FetchError(
            "the image's host refused to hand it over (the link needs a login or is not "
            "public). Use a public link, or upload the file."
        )
    if status != 200:
        raise FetchError(f"fetching it answered HTTP {status}.")


def _read(response: requests.Response, max_bytes: int) -> bytes:
    data = bytearray()
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise FetchError(f"the image is larger than {max_bytes / (1024 * 1024):.1f} MB.")
    return bytes(data)
