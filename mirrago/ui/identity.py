"""Who is using the app, when sign-in is configured, and what they may see.

Sign-in is Streamlit's own (`st.login` / `st.user`, OpenID Connect), on when the `[auth]`
section of `.streamlit/secrets.toml` is present. Then every try-on records its owner, and a
try-on (its inputs, result and details) is shown to its owner only. Without sign-in (one
person on their own machine) everything is visible, and `owner` is None.
"""

from __future__ import annotations

import streamlit as st

from mirrago.ledger import JobRecord


def sign_in_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all, or one that does not parse
        return False


def current_owner() -> str | None:
    """The signed-in user's identity (email, else subject); None without sign-in."""
    if not sign_in_configured() or not st.user.is_logged_in:
        return None
    for claim in ("email", "sub"):
        value = st.user.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:320]
    return None


def may_see(job: JobRecord) -> bool:
    """Whether this session may see `job`'s inputs, result and details."""
    if not sign_in_configured():
        return True
    owner = current_owner()
    return owner is not None and job.owner == owner


def sign_in_gate() -> bool:
    """With sign-in configured and nobody signed in: a sign-in screen, and False."""
    if not sign_in_configured() or st.user.is_logged_in:
        return True
    st.title("Mirrago Studio")
    st.write("Sign in to see and make your try-ons.")
    st.button(
        "Sign in",
        type="primary",
        icon=":material/login:",
        on_click=st.login,
        key="identity-sign-in",
    )
    return False


def signed_in_card() -> None:
    """In the sidebar: who is signed in, and a way out."""
    owner = current_owner()
    if owner is None:
        return
    with st.container(border=True, key="sidebar-user"):
        st.caption("SIGNED IN")
        st.text(owner)
        st.button(
            "Sign out",
            icon=":material/logout:",
            on_click=st.logout,
            width="stretch",
            key="identity-sign-out",
        )
