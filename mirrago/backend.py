"""Which Mirrago server to talk to: the live API from settings, or the embedded sandbox.

With no `MIRRAGO_BASE_URL` configured, the sandbox starts in-process on a free loopback port
with its demo credentials, so a new user gets a working try-on with no account and no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mirrago.config import Settings
from mirrago.errors import MirragoError, missing_credentials

SANDBOX_KEY_PREFIX = "sandbox#"
SANDBOX_CREDITS_FILE = "sandbox-credits.sqlite3"  # in the data dir: the sandbox's one account


def backend_key(base_url: str, client_id: str) -> str:
    """The ledger's name for a server and account: its base URL and client id, never the secret.

    Rows queued for one key are only ever submitted to, and polled at, that server.
    """
    parts = urlsplit(str(base_url).strip())
    where = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
    return f"{where}#{client_id}"[:255]


def describe_backend(key: str) -> str:
    """A backend key in the user's words (for "waiting for …")."""
    if key.startswith(SANDBOX_KEY_PREFIX):
        return "the local sandbox"
    where, _, client = key.rpartition("#")
    if not where:
        return "an unknown server (recorded before servers were)"
    host = urlsplit(where).netloc or where
    return f"{host} (client {client})" if client else host


@dataclass(frozen=True)
class Backend:
    """A server to talk to, with the credentials for it."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    is_sandbox: bool = False

    @property
    def label(self) -> str:
        """What the user is connected to, in their words."""
        if self.is_sandbox:
            return "Sandbox (local)"
        return urlsplit(self.base_url).netloc or self.base_url

    @property
    def key(self) -> str:
        """The ledger's name for this backend (`backend_key`). Every embedded sandbox is one
        backend, whatever its port: its jobs cost nothing, so any sandbox may run them."""
        if self.is_sandbox:
            return f"{SANDBOX_KEY_PREFIX}{self.client_id}"
        return backend_key(self.base_url, self.client_id)


@dataclass
class RunningBackend:
    """A backend and the function that stops whatever was started for it."""

    backend: Backend
    stop: Callable[[], None] = lambda: None


def start_backend(settings: Settings) -> RunningBackend:
    """Return the configured live backend, or start the embedded sandbox and return it."""
    if not settings.uses_sandbox:
        if not settings.client_id or not settings.client_secret:
            raise missing_credentials(str(settings.base_url))
        live = Backend(str(settings.base_url), settings.client_id, settings.client_secret)
        return RunningBackend(live)

    from mirrago.sandbox.accounts import AccountError
    from mirrago.sandbox.server import SandboxConfig, start_embedded

    # Every embedded sandbox on this data dir (the app's, each CLI command's) spends from one
    # account, so the ledger's readings describe one balance.
    config = SandboxConfig(credits_file=Path(settings.data_dir) / SANDBOX_CREDITS_FILE)
    if settings.sandbox_latency is not None:
        config.latency = settings.sandbox_latency
    try:
        sandbox = start_embedded(config)
    except AccountError as error:
        raise MirragoError(
            f"The local sandbox cannot keep its credits: {error}. Check that the data dir "
            "(MIRRAGO_DATA_DIR) is writable."
        ) from None
    backend = Backend(sandbox.base_url, sandbox.client_id, sandbox.client_secret, is_sandbox=True)
    return RunningBackend(backend, sandbox.stop)
