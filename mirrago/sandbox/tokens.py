"""The sandbox's API clients and the bearer tokens it issues them (the OAuth
client-credentials grant), with their lifetimes."""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from typing import Any

from mirrago.sandbox.config import SandboxConfig, SandboxError


class Clients:
    """The configured client, any added ones, and the tokens issued to them; thread-safe.

    `clock` tells the time of token lifetimes; `count` counts what the sandbox reports in its
    stats (token requests and failures, unauthorized requests)."""

    def __init__(
        self,
        config: SandboxConfig,
        clock: Callable[[], float],
        count: Callable[[str], None],
    ):
        self.config = config
        self._clock = clock
        self._count = count
        self._lock = threading.Lock()
        self._extra_clients: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register another API client (for tests of isolation between clients)."""
        with self._lock:
            self._extra_clients[client_id] = client_secret

    def issue_token(self, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        """The OAuth client-credentials grant: a fresh opaque token, or 401."""
        self._count("token_requests")
        if not client_id or not client_secret or not self._secret_matches(client_id, client_secret):
            self._count("token_failures")
            raise SandboxError(
                401,
                "Invalid client credentials: check the client id and secret.",
                body={"error": "invalid_client", "detail": "Invalid client credentials."},
            )
        ttl = float(self.config.token_ttl)
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (client_id, now + ttl)
        expires_in: float = int(ttl) if ttl == int(ttl) else round(ttl, 3)
        return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    def _secret_matches(self, client_id: str, client_secret: str) -> bool:
        with self._lock:
            expected = self._extra_clients.get(client_id)
        if client_id == self.config.client_id:
            expected = self.config.client_secret
        return expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), client_secret.encode("utf-8")
        )

    def authenticate(self, token: str | None) -> str:
        """The client id the bearer token belongs to; 401 if it is missing, unknown or expired."""
        with self._lock:
            entry = self._tokens.get(token or "")
        if entry is None or entry[1] <= self._clock():
            self._count("unauthorized")
            why = "Missing access token" if not token else "Invalid or expired access token"
            raise SandboxError(
                401,
                f"{why}: get one from POST /oauth/token and send it as "
                "'Authorization: Bearer <access_token>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return entry[0]
