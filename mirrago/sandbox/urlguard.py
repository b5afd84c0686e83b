"""The sandbox's image and callback fetches, through the app's one outbound policy.

A try-on request names image URLs the sandbox downloads itself; `mirrago.outbound` keeps those
(and callbacks) to public addresses unless the sandbox runs with `--allow-private-urls`. This
module only gives the policy the sandbox's own words, as the API it simulates would say them.
"""

from __future__ import annotations

import time

import requests

from mirrago.outbound import FetchError, OutboundPolicy, check_scheme, read_capped

PRIVATE_MESSAGE = (
    "that address is on a private network; the service cannot fetch it. "
    "Use a public link, or upload the file."
)

__all__ = ["FetchError", "check_url", "fetch_public", "public_session"]


def sandbox_policy(allow_private: bool) -> OutboundPolicy:
    return OutboundPolicy(allow_private=allow_private, refusal=PRIVATE_MESSAGE)


def public_session(allow_private: bool = False) -> requests.Session:
    """A session whose connections are checked and pinned by the sandbox's policy."""
    return sandbox_policy(allow_private).session()


def check_url(url: str, allow_private: bool = False) -> None:
    """FetchError unless `url` is http(s); its address is checked when a connection is made."""
    del allow_private  # the session's connections check the address, once, as they connect
    check_scheme(url)


def fetch_public(
    url: str,
    *,
    allow_private: bool = False,
    max_bytes: int,
    timeout: tuple[float, float],
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET `url` and return the body (status 200, at most `max_bytes`), following redirects and
    checking every hop. Raises FetchError (RefusedAddress for an address not allowed)."""
    policy = sandbox_policy(allow_private)
    deadline = time.monotonic() + 2 * sum(timeout)  # a slow drip must not hold a worker
    with policy.session() as session:
        try:
            with policy.get(session, url.strip(), timeout=timeout, headers=headers) as response:
                _check_status(response.status_code)
                return read_capped(response, max_bytes, deadline=deadline)
        except requests.RequestException as error:
            raise FetchError(f"could not fetch it ({type(error).__name__}).") from None


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
