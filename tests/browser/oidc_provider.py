"""A small OpenID Connect provider on loopback, for testing the app's sign-in (`st.login`).

Why not `oidc-provider-mock`: it requires Python 3.12 (it imports `typing.override`), and this
project runs on 3.11. This one does what the sign-in tests need, over real HTTP: discovery,
an authorization form where the tester types the user ("Subject") and clicks "Authorize",
the code-for-token exchange (client secret checked), and RS256 ID tokens with the nonce, whose
keys are published at the JWKS endpoint.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "mirrago-studio-test"
CLIENT_SECRET = "oidc-test-secret"


@dataclass
class Provider:
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "test-key"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def discovery(self) -> dict[str, object]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "sub": grant["sub"],
            "iat": now,
            "exp": now + 3600,
            "email": grant["sub"],
            "email_verified": True,
            "name": grant["sub"].split("@")[0].title(),
        }
        if grant.get("nonce"):
            claims["nonce"] = grant["nonce"]
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def _send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data: object, status: int = 200) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            fields = parse_qs(self.rfile.read(length).decode())
            return {name: values[0] for name, values in fields.items()}

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                return self._json(provider.discovery())
            if parts.path == "/jwks":
                return self._json({"keys": [provider.key.as_dict(private=False)]})
            if parts.path == "/authorize":
                query = {name: values[0] for name, values in parse_qs(parts.query).items()}
                hidden = "".join(
                    f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                    for name, value in query.items()
                )
                page = (
                    "<!doctype html><title>Test sign-in</title><form method=post>"
                    f'{hidden}<label>Subject <input name="sub"></label>'
                    "<button type=submit>Authorize</button></form>"
                )
                return self._send(200, page.encode(), "text/html; charset=utf-8")
            return self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            form = self._form()
            if self.path.startswith("/authorize"):
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {"sub": form.get("sub", ""), "nonce": form.get("nonce", "")}
                target = (
                    form["redirect_uri"]
                    + "?"
                    + urlencode({"code": code, "state": form.get("state", "")})
                )
                return self._send(302, b"", "text/plain", {"Location": target})
            if self.path == "/token":
                client_id, secret = form.get("client_id"), form.get("client_secret")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                grant = provider.codes.pop(form.get("code", ""), None)
                if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET) or grant is None:
                    return self._json({"error": "invalid_grant"}, 400)
                return self._json(
                    {
                        "access_token": secrets.token_urlsafe(16),
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "id_token": provider.id_token(grant),
                    }
                )
            return self._json({"error": "not found"}, 404)

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """The provider on a free loopback port, for the duration of the block."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def auth_secrets(app_url: str, provider: Provider) -> str:
    """The `[auth]` section of secrets.toml for an app at `app_url` signing in here."""
    return (
        "[auth]\n"
        f'redirect_uri = "{app_url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n'
    )
