"""The one policy for every request the app (or its sandbox) sends on a user's behalf.

A link in a batch table, a base URL typed in the sidebar, an image URL in a sandbox job: each
makes this server connect somewhere a user chose. Without a guard that turns the app into a
scanner of its own machine and network (a cloud metadata service at 169.254.169.254, an admin
page on 127.0.0.1, the app's own port). So every such connection goes through here:

- http(s) only;
- the host is resolved once, and every address it has is checked (loopback, private,
  link-local, shared, reserved, multicast and unspecified addresses are refused, IPv4 and IPv6,
  including IPv4 addresses wrapped in IPv6) before anything is sent;
- the connection goes to the address that was checked (no second DNS lookup that could answer
  differently), while the Host header, TLS SNI and certificate check keep the host name;
- redirects are followed by hand, each hop through the same check; sizes and times are bounded;
- no proxy from the environment, so the address checked is the one connected to.

A refusal raises `RefusedAddress` with one message whatever is (or is not) behind the address:
nothing was contacted, so there is nothing to tell apart. `OutboundPolicy.from_setting` reads
`MIRRAGO_ALLOW_PRIVATE_URLS` (via `mirrago.config`): `1` lets a self-hosted team reach internal
servers on purpose; a list of hosts and networks (`10.1.2.0/24,images.internal`) allows only
those.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from mirrago.errors import FetchError, RefusedAddress

MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
REFUSED_MESSAGE = (
    "not a public address: links on this machine or its private network are not fetched. "
    "Use a public link, or upload the file."
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound requests may reach: public ones, plus what the operator allowed
    (`allow_private`: everything; `networks` and `hosts`: just those). `refusal` is the one
    message every refused request raises."""

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    refusal: str = REFUSED_MESSAGE

    @classmethod
    def from_setting(cls, text: str | None) -> OutboundPolicy:
        """`MIRRAGO_ALLOW_PRIVATE_URLS`: `1`/`true` allows every address; a comma-separated list
        of IP addresses, networks (CIDR) and host names allows those; empty or `0`: none."""
        value = (text or "").strip()
        if value.lower() in _TRUE:
            return cls(allow_private=True)
        if value.lower() in _FALSE:
            return cls()
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def permits(self, host: str, address: IPAddress) -> bool:
        """Whether a connection to `address` (which `host` resolved to) is allowed."""
        if self.allow_private or is_public(address):
            return True
        if host.strip("[]").lower().rstrip(".") in self.hosts:
            return True
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and _embedded_ipv4(address) is not None:
            candidates.append(_embedded_ipv4(address))  # type: ignore[arg-type]
        return any(
            candidate in network
            for candidate in candidates
            for network in self.networks
            if candidate.version == network.version
        )

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """Resolve `host` once and return its getaddrinfo answers, every one of them allowed;
        RefusedAddress if any is not (which address a connection would use is not ours to
        choose), socket.gaierror when the name does not resolve."""
        name = host.strip("[]")
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        for info in infos:
            address = str(info[4][0])
            if not self.permits(name, _parse(address)):
                raise RefusedAddress(self.refusal, host, address)
        return infos

    def check_host(self, host: str, port: int) -> None:
        """RefusedAddress unless every address of `host` is allowed; FetchError when the name
        does not resolve. (A connection made through `session()` checks again, on its own.)"""
        try:
            self.resolve(host, port)
        except (socket.gaierror, UnicodeError):
            raise FetchError("its host name could not be found.") from None

    def session(self, **adapter_options: Any) -> requests.Session:
        """A requests session whose every connection is resolved, checked and pinned by this
        policy, with no proxy from the environment. `adapter_options` go to the HTTPAdapter
        (pool sizes); it makes no retries of its own."""
        session = requests.Session()
        session.trust_env = False
        adapter = _PinnedAdapter(self, max_retries=0, **adapter_options)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @contextmanager
    def get(
        self,
        session: requests.Session,
        url: str,
        *,
        timeout: float | tuple[float, float],
        headers: dict[str, str] | None = None,
    ) -> Iterator[requests.Response]:
        """GET `url` through `session` (one of `session()`), following up to MAX_REDIRECTS
        redirects by hand, each hop checked; yield the final, streamed response. Raises
        RefusedAddress, FetchError for a bad URL or too many redirects, and requests' errors."""
        for _hop in range(MAX_REDIRECTS + 1):
            check_scheme(url)
            response = session.get(
                url, timeout=timeout, stream=True, headers=headers, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status_code in REDIRECT_STATUSES and location:
                response.close()
                url = urljoin(url, location)
                continue
            with response:
                yield response
            return
        raise FetchError(f"it redirects more than {MAX_REDIRECTS} times.")


def check_scheme(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL with a host; FetchError for anything else. No DNS."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise FetchError("it must be an http:// or https:// URL with a valid host.") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise FetchError("it must be an http:// or https:// URL.")
    return parts.scheme, hostname, port or (443 if parts.scheme == "https" else 80)


def read_capped(
    response: requests.Response, max_bytes: int, *, deadline: float | None = None
) -> bytes:
    """The body, at most `max_bytes` (FetchError past that) and, when `deadline` (a
    time.monotonic() value) is given, read before it (FetchError after: a server dripping
    bytes must not hold a worker for ever)."""
    data = bytearray()
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise FetchError(f"the image is larger than {max_bytes / (1024 * 1024):.1f} MB.")
        if deadline is not None and time.monotonic() > deadline:
            raise FetchError("it took too long to download.")
    return bytes(data)


def read_head(response: requests.Response, size: int, *, deadline: float) -> bytes:
    """Up to the first `size` bytes of the body, stopping early at `deadline`."""
    data = bytearray()
    for chunk in response.iter_content(min(size, 16 * 1024)):
        data += chunk
        if len(data) >= size or time.monotonic() > deadline:
            break
    return bytes(data[:size])


# ---- the pinned connection ------------------------------------------------------------------


def _connect_pinned(connection: HTTPConnection, policy: OutboundPolicy) -> socket.socket:
    """Resolve the connection's host once, check every address, then connect to a checked one
    (the socket's peer is the address checked; no other lookup happens)."""
    host = connection.host
    try:
        infos = policy.resolve(host, connection.port)
    except (socket.gaierror, UnicodeError) as error:
        raise NameResolutionError(host, connection, socket.gaierror(str(error))) from None
    timeout = connection.timeout
    last_error: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            for option in connection.socket_options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if connection.source_address:
                sock.bind(connection.source_address)
            sock.connect(address)
            return sock
        except TimeoutError:
            sock.close()
            raise ConnectTimeoutError(
                connection, f"Connection to {host} timed out. (connect timeout={timeout})"
            ) from None
        except OSError as error:
            sock.close()
            last_error = error
    raise NewConnectionError(connection, f"Failed to establish a new connection: {last_error}")


class _PinnedHTTPConnection(HTTPConnection):
    policy: OutboundPolicy = OutboundPolicy()

    def _new_conn(self) -> socket.socket:
        return _connect_pinned(self, self.policy)


class _PinnedHTTPSConnection(HTTPSConnection):
    # HTTPSConnection.connect wraps the socket with server_hostname = the URL's host, so TLS
    # SNI and certificate verification stay on the name while the socket is pinned.
    policy: OutboundPolicy = OutboundPolicy()

    def _new_conn(self) -> socket.socket:
        return _connect_pinned(self, self.policy)


class _PinnedAdapter(HTTPAdapter):
    """An adapter whose pools make pinned connections checked by `policy`."""

    def __init__(self, policy: OutboundPolicy, **options: Any) -> None:
        self.policy = policy
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"policy": self.policy}
        http = type("PinnedHTTPConnection", (_PinnedHTTPConnection,), attrs)
        https = type("PinnedHTTPSConnection", (_PinnedHTTPSConnection,), attrs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["policy"] = self.policy
        return state
