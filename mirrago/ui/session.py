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
import threading
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

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
    """The live connection chosen in this session, else the configured default (also when
    that connection was released meanwhile: the session must connect again)."""
    chosen = st.session_state.get(LIVE_SETTINGS_KEY)
    if isinstance(chosen, Settings):
        with _LIVE_LOCK:
            key = settings_key(chosen)
            if key in _LIVE or key not in _RELEASED:
                return chosen
        st.session_state.pop(LIVE_SETTINGS_KEY, None)
    return default_settings()


def current_services() -> Services:
    """The services this session's pages read from and enqueue to."""
    return services_for(current_settings())


# Live connections opened from the sidebar in this server process, by settings key, with the
# page sessions connected with them (the one that connected; one showing a job of it after a
# refresh). A refresh ends the session (and its copy of the credentials), but the runner keeps
# the jobs it has running, with the credentials in memory only. A page opened on such a job
# (`?job=12@host`) shows it from here, read-only: starting new try-ons needs connecting again.
# Once its runner is idle and no session is connected with it, a connection is released: its
# runner stopped, its client closed (secret and token dropped) and its entry gone.
@dataclass
class _Live:
    settings: Settings
    services: Services
    sessions: set[str] = field(default_factory=set)
    idle_since: float | None = None  # monotonic time it was first seen idle and unused

    @property
    def host(self) -> str:
        return urlsplit(self.settings.base_url or "").netloc


_LIVE: dict[str, _Live] = {}
_RELEASED: set[str] = set()  # keys of connections released since: their sessions connect again
_LIVE_LOCK = threading.RLock()
SWEEP_INTERVAL = 1.0  # seconds between two looks for live connections to release
# Seconds a connection stays idle, with no page session, before it is released: a refresh
# ends the page's session, and the reloaded page must still find the try-on it showed.
RELEASE_GRACE = 300.0
_sweeper: threading.Thread | None = None


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _session_alive(session_id: str) -> bool:
    """Whether that page session is still connected to this server. Without a runtime (a
    script run by AppTest) sessions never disconnect: only leaving the connection ends it."""
    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session_id)


def _hold(entry: _Live) -> None:
    """Count this page session as connected with `entry` (under `_LIVE_LOCK`)."""
    global _sweeper
    entry.sessions.add(_session_id())
    if _sweeper is None or not _sweeper.is_alive():
        _sweeper = threading.Thread(target=_sweep, name="mirrago-live-release", daemon=True)
        _sweeper.start()


def _sweep() -> None:
    while True:
        time.sleep(SWEEP_INTERVAL)
        with _LIVE_LOCK:
            release_idle_connections()
            if not _LIVE:
                globals()["_sweeper"] = None
                return


def release_idle_connections() -> list[str]:
    """Release every live connection whose runner has been idle, with no page session
    connected with it, for `RELEASE_GRACE` seconds; return their hosts."""
    released = []
    now = time.monotonic()
    with _LIVE_LOCK:
        for key, entry in list(_LIVE.items()):
            entry.sessions = {sid for sid in entry.sessions if _session_alive(sid)}
            if entry.services.closed:  # closed elsewhere (the cache was cleared)
                del _LIVE[key]
                continue
            if entry.sessions or not entry.services.runner.idle():
                entry.idle_since = None
                continue
            if entry.idle_since is None:
                entry.idle_since = now
            if now - entry.idle_since < RELEASE_GRACE:
                continue
            del _LIVE[key]
            _RELEASED.add(key)
            log.info("releasing the idle live connection to %s", entry.host)
            _services_for.clear(key, entry.settings)  # on_release closes them
            _close(entry.services)
            released.append(entry.host)
    return released


def live_connection(host: str) -> Services | None:
    """The services of the live connection to `host` this process holds, if any."""
    with _LIVE_LOCK:
        return next((e.services for e in _LIVE.values() if e.host == host), None)


def use_live_connection(settings: Settings | None) -> None:
    """Switch this session to `settings` (None: back to the configured default)."""
    with _LIVE_LOCK:
        me = _session_id()
        for entry in _LIVE.values():
            entry.sessions.discard(me)
        if settings is None:
            st.session_state.pop(LIVE_SETTINGS_KEY, None)
            return
        key = settings_key(settings)
        services = services_for(settings)
        entry = _LIVE.setdefault(key, _Live(settings, services))
        entry.services = services
        _hold(entry)
        st.session_state[LIVE_SETTINGS_KEY] = settings


def connected_earlier(tag: str) -> Services | None:
    """The services of a live connection made earlier in this process (another session, or
    this browser before a refresh) to the host `tag`; None when there is none (never made,
    or released since). This session then counts as connected with it."""
    if not tag or tag == ledger_tag():
        return None
    with _LIVE_LOCK:
        entry = next((e for e in _LIVE.values() if e.host == tag), None)
        if entry is None:
            return None
        _hold(entry)
        return entry.services


def uses_session_connection() -> bool:
    return current_settings() is st.session_state.get(LIVE_SETTINGS_KEY)


def ledger_tag() -> str:
    """Which ledger this session reads, for links: "" for the server's own, else the live
    host this session connected to (each backend keeps its own ledger, see `live_settings`)."""
    if not uses_session_connection():
        return ""
    return urlsplit(current_settings().base_url or "").netloc
