"""Which `Services` (backend, client, ledger, runner) this browser session uses.

The configured default (env, `.env`, `.streamlit/secrets.toml`; the embedded sandbox when nothing
is set) is opened once per server process. A session may connect to a live endpoint from the
sidebar: that one is opened once per (base URL, client id, secret hash) and shared by the
sessions that use the same credentials. Either way the runner lives in the server process, so a
browser refresh loses nothing: the ledger holds the state and pages rebuild from it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import replace
from urllib.parse import urlsplit

import streamlit as st

from mirrago.config import Settings, load_settings
from mirrago.services import Services, open_services

log = logging.getLogger(__name__)

LIVE_SETTINGS_KEY = "connection.live_settings"


def settings_key(settings: Settings) -> str:
    """A cache key for `settings` that does not contain the secret itself."""
    secret = settings.client_secret or ""
    secret_hash = hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else "-"
    return "|".join(
        [
            settings.base_url or "sandbox",
            settings.client_id or "-",
            secret_hash,
            str(settings.data_dir.resolve()),
            settings.database_url or "-",
        ]
    )


def _close(services: Services) -> None:
    try:
        services.close()
    except Exception:  # closing must never break a rerun
        log.exception("closing services failed")


@st.cache_resource(show_spinner="Starting Mirrago Studio…", on_release=_close)
def _services_for(key: str, _settings: Settings) -> Services:
    """One `Services` per distinct settings key, for the whole server process."""
    log.info("opening services for %s", key.split("|")[0])
    return open_services(_settings)


def default_settings() -> Settings:
    """The settings the server was started with (read fresh: they are cheap to resolve)."""
    return load_settings()


def live_settings(base_url: str, client_id: str, client_secret: str) -> Settings:
    """Settings for a live endpoint entered in the sidebar.

    Its ledger lives in its own folder under the data dir: runners claim any queued row of the
    ledger they share, so one ledger per backend keeps a sandbox runner from ever submitting a
    live job (and the reverse).
    """
    base = default_settings()
    host = urlsplit(base_url).netloc or "live"
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip("-") or "live"
    owner = hashlib.sha256(f"{base_url}|{client_id}".encode()).hexdigest()[:10]
    return replace(
        base.with_connection(base_url.rstrip("/"), client_id, client_secret),
        data_dir=base.data_dir / "connections" / f"{slug}-{owner}",
    )


def services_for(settings: Settings) -> Services:
    return _services_for(settings_key(settings), settings)


def current_settings() -> Settings:
    """The live connection chosen in this session, else the configured default."""
    chosen = st.session_state.get(LIVE_SETTINGS_KEY)
    return chosen if isinstance(chosen, Settings) else default_settings()


def current_services() -> Services:
    """The services this session's pages read from and enqueue to."""
    return services_for(current_settings())


# Live connections opened from the sidebar in this server process, by host: a refresh ends the
# session (and its copy of the credentials), but the runner keeps the jobs it has running, with
# the credentials in memory only. A page opened on such a job (`?job=12@host`) shows it from
# here, read-only: starting new try-ons needs connecting again.
_CONNECTED: dict[str, Services] = {}


def use_live_connection(settings: Settings | None) -> None:
    """Switch this session to `settings` (None: back to the configured default)."""
    if settings is None:
        st.session_state.pop(LIVE_SETTINGS_KEY, None)
    else:
        st.session_state[LIVE_SETTINGS_KEY] = settings
        _CONNECTED[urlsplit(settings.base_url or "").netloc] = services_for(settings)


def connected_earlier(tag: str) -> Services | None:
    """The services of a live connection made earlier in this process (another session, or
    this browser before a refresh) to the host `tag`; None when there is none."""
    if not tag or tag == ledger_tag():
        return None
    return _CONNECTED.get(tag)


def uses_session_connection() -> bool:
    return isinstance(st.session_state.get(LIVE_SETTINGS_KEY), Settings)


def ledger_tag() -> str:
    """Which ledger this session reads, for links: "" for the server's own, else the live
    host this session connected to (each backend keeps its own ledger, see `live_settings`)."""
    if not uses_session_connection():
        return ""
    return urlsplit(current_settings().base_url or "").netloc
