"""Checking a connection to a Mirrago server, outside the page code.

`check_connection` is the one place in the app that talks to a server directly: the sidebar's
"Test connection" asks for an access token with the credentials just typed, before this
session switches to them. A typed base URL goes through the app's outbound policy
(`mirrago.outbound`): one on this machine or its private network is refused before anything
connects, unless MIRRAGO_ALLOW_PRIVATE_URLS allows it. `backend_health` reports on the
services a session already uses, from what they know (the runner's last error; the client's
cached token), at no extra token cost. Neither returns, logs or raises anything that contains
the secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from mirrago.client import MirragoClient
from mirrago.config import load_settings
from mirrago.errors import AuthenticationError, MirragoError
from mirrago.outbound import OutboundPolicy
from mirrago.services import Services
from mirrago.ui.errors import message_for

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of a connection test, in words a user can act on."""

    ok: bool
    message: str


def problem_with_base_url(base_url: str) -> str | None:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "The base URL must be a web address like https://api.mirrago.com."
    return None


def check_connection(
    base_url: str,
    client_id: str,
    client_secret: str,
    *,
    outbound: OutboundPolicy | None = None,
) -> ConnectionCheck:
    """Ask `base_url` for an access token with these credentials, through `outbound` (default:
    the configured policy, the one the session's client then uses too)."""
    problem = problem_with_base_url(base_url)
    if problem:
        return ConnectionCheck(False, problem)
    if not client_id.strip() or not client_secret:
        return ConnectionCheck(False, "Enter both the client id and the client secret.")
    host = urlsplit(base_url.strip()).netloc
    try:
        with MirragoClient(
            base_url.strip(),
            client_id.strip(),
            client_secret,
            timeout=CHECK_TIMEOUT,
            max_retries=1,
            outbound=outbound or load_settings().outbound,
        ) as client:
            client.authenticate()
    except AuthenticationError:
        log.info("connection test to %s: credentials refused", host)
        return ConnectionCheck(
            False, f"{host} refused this client id or secret: check both and test again."
        )
    except MirragoError as error:
        log.info("connection test to %s failed: %s", host, type(error).__name__)
        # The client's messages name the environment variables; here the user typed a form.
        message = message_for(error).replace("MIRRAGO_BASE_URL", "the base URL")
        return ConnectionCheck(False, message)
    except Exception:  # an unexpected failure must not leak details (or the secret) to the page
        log.exception("connection test to %s failed unexpectedly", host)
        return ConnectionCheck(False, f"Could not reach {host}. Check the base URL and retry.")
    return ConnectionCheck(True, f"Connected to {host}: this session now uses it.")


@dataclass(frozen=True)
class Health:
    ok: bool | None  # None: nothing known yet
    text: str


def backend_health(services: Services) -> Health:
    """What the services know about their connection, without a new request."""
    last_error = getattr(services.runner, "last_error", None)
    if last_error:
        return Health(False, str(last_error))
    if services.backend.is_sandbox:
        return Health(True, "Running on this machine")
    if services.client.token_requests > 0:
        return Health(True, "Connected")
    return Health(None, "Not used yet in this server process")
