"""The sidebar every page shares: which backend is in use, its health, the credit balance (live
while jobs run), and a form to connect this session to a live endpoint.

The secret typed into the form is used once to test the connection and kept only in this
session's server-side state: the form clears on submit, so it is never sent back to the browser,
and it is never logged or written to the ledger.
"""

from __future__ import annotations

import logging
from datetime import datetime

import streamlit as st

from mirrago.config import LIVE_BASE_URL
from mirrago.errors import MirragoError
from mirrago.ledger import UNKNOWN_BACKEND
from mirrago.services import Services
from mirrago.ui import identity, session
from mirrago.ui.connection import backend_health, check_connection
from mirrago.ui.errors import plain
from mirrago.ui.tryon.recent import open_job
from mirrago.usage import latest_balance

log = logging.getLogger(__name__)

_RESULT_KEY = "connection.last_check"
LIVE_CREDITS_EVERY = 2.0  # seconds between looks at the balance while jobs are running


def _when(moment: datetime) -> str:
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("today %H:%M")
    return local.strftime("%d %b %H:%M")


def _backend_card(services: Services) -> None:
    backend = services.backend
    with st.container(border=True, key="sidebar-backend"):
        st.caption("BACKEND")
        icon = ":material/science:" if backend.is_sandbox else ":material/cloud:"
        st.markdown(f"{icon} **{backend.label}**")
        health = backend_health(services)
        if health.ok is True:
            st.badge(health.text, icon=":material/check_circle:", color="green")
        elif health.ok is False:
            st.badge("Problem", icon=":material/error:", color="red")
            st.caption(health.text)
        else:
            st.badge(health.text, icon=":material/schedule:", color="gray")
        # While jobs run (a batch on any page, a try-on) the balance moves: the figure then
        # refreshes on its own, since a page's live fragment reruns only itself.
        every = LIVE_CREDITS_EVERY if _jobs_running(services) else None
        st.fragment(_credits, run_every=every)(services)


def _jobs_running(services: Services) -> bool:
    try:
        return services.ledger.unfinished_by_backend().get(services.runner.backend, 0) > 0
    except MirragoError:
        return False


def _credits(services: Services) -> None:
    try:
        balance = latest_balance(services.ledger)
    except MirragoError:
        balance = None
    if balance is None:
        st.metric("Credits", "—", help="Known after the first try-on on this backend.")
    else:
        st.metric(
            "Credits",
            f"{balance.credits:,}",
            help=f"The balance after the try-on sent {_when(balance.as_of)}, the same "
            "figure as on the Usage page.",
        )


def _test_connection() -> None:
    """The form's submit callback: it runs before the page, so it may empty the secret field
    (the secret is used for this one check and kept only inside the session's settings)."""
    state = st.session_state
    base_url = str(state.get("connect-base-url") or "").strip()
    client_id = str(state.get("connect-client-id") or "").strip()
    secret = str(state.get("connect-secret") or "")
    state["connect-secret"] = ""
    result = check_connection(base_url, client_id, secret)
    if result.ok:
        session.use_live_connection(session.live_settings(base_url, client_id, secret))
        open_job(None)  # the open try-on belongs to the previous backend's ledger
    state[_RESULT_KEY] = (result.ok, result.message)


def _back_to_default() -> None:
    session.use_live_connection(None)
    st.session_state.pop(_RESULT_KEY, None)
    open_job(None)


def _connect_form() -> None:
    with st.form("connect-live", border=False):
        st.text_input("Base URL", value=LIVE_BASE_URL, key="connect-base-url")
        st.text_input("Client ID", key="connect-client-id")
        st.text_input("Client secret", type="password", key="connect-secret")
        st.form_submit_button(
            "Test connection",
            icon=":material/power:",
            width="stretch",
            type="primary",
            on_click=_test_connection,
        )
    outcome = st.session_state.get(_RESULT_KEY)
    if outcome:
        ok, message = outcome
        (st.success if ok else st.error)(plain(message), icon=":material/info:")


def _ledger_card(services: Services) -> None:
    """The job ledger's trouble (the runner waits it out), and jobs recorded before the ledger
    knew their server: they wait until someone lets this backend run them."""
    problem = getattr(services.runner, "ledger_problem", None)
    if problem:
        st.warning(
            f"**The job ledger is unreachable.** {plain(problem)}  \nRetrying by itself; "
            "nothing is lost.",
            icon=":material/database:",
        )
        return
    try:
        waiting = services.ledger.unfinished_by_backend().get(UNKNOWN_BACKEND, 0)
    except MirragoError:
        return
    if waiting:
        st.caption(f"{waiting} unfinished job(s) from before the ledger recorded servers wait.")
        st.button(
            f"Run them on {services.backend.label}",
            key="sidebar-assign-backend",
            icon=":material/move_down:",
            width="stretch",
            on_click=lambda: services.ledger.assign_backend(services.runner.backend),
        )


def connection_panel() -> Services:
    """Draw the sidebar panel; return the services this session uses."""
    services = session.current_services()
    with st.sidebar:
        identity.signed_in_card()
        _backend_card(services)
        _ledger_card(services)
        if services.settings.lock_backend or session.default_settings().lock_backend:
            return services  # MIRRAGO_LOCK_BACKEND=1: this deployment's backend is fixed
        live = session.uses_session_connection()
        with st.expander("Connect to a live endpoint", icon=":material/link:", expanded=False):
            st.caption(
                "For this browser session only. Server-wide credentials come from the "
                "environment, `.env` or `.streamlit/secrets.toml`."
            )
            _connect_form()
            if live:
                st.button("Back to the default backend", width="stretch", on_click=_back_to_default)
    return services
