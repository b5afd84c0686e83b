"""Mirrago Studio's look: the logo (inline SVG, so nothing is fetched) and a few style touches
the theme in `.streamlit/config.toml` cannot express."""

from __future__ import annotations

import streamlit as st

# The logo mark's shapes, shared by the square icon and the wordmark.
_MARK_SHAPES = """
  <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
    <stop offset="0" stop-color="#8b6cff"/><stop offset="1" stop-color="#5b3fd9"/>
  </linearGradient></defs>
  <rect x="2" y="2" width="36" height="36" rx="10" fill="url(#g)"/>
  <path d="M11 28V13l9 9 9-9v15" fill="none" stroke="#fff" stroke-width="3.2"
        stroke-linecap="round" stroke-linejoin="round"/>
"""

_MARK = f"""
<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40">
{_MARK_SHAPES}</svg>
"""

_WORDMARK = f"""
<svg xmlns="http://www.w3.org/2000/svg" width="210" height="40" viewBox="0 0 210 40">{_MARK_SHAPES}
  <text x="48" y="27" font-family="Helvetica, Arial, sans-serif"
        font-size="20" font-weight="700" fill="#ece9f8">Mirrago
    <tspan font-weight="400" fill="#a895ff">Studio</tspan></text>
</svg>
"""

# The browser tab's icon: inline, so a page load asks no other host for it.
PAGE_ICON = _MARK.strip()

# Frames already give images equal heights; these rules only soften image corners and keep
# the sample buttons' captions on one line.
_CSS = """
<style>
[data-testid="stMain"] [data-testid="stImage"] img { border-radius: 0.6rem; }
[data-testid="stMain"] .st-key-tryon-recent [data-testid="stImage"] img { border-radius: 0.45rem; }
[data-testid="stMain"] [class*="st-key-tryon-"][class*=".sample."] button p {
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.85rem;
}
/* Sample thumbnails are clickable: a see-through button lies over each image. */
[class*="st-key-tryon-"][class*="-thumb-"] { position: relative; }
[class*="st-key-tryon-"][class*="-thumb-"] [data-testid="stElementContainer"]:has(.stButton) {
  position: absolute; inset: 0; z-index: 1; margin: 0; }
[class*="st-key-tryon-"][class*="-thumb-"] .stButton,
[class*="st-key-tryon-"][class*="-thumb-"] .stButton button {
  width: 100%; height: 100%; min-height: 0; padding: 0; opacity: 0; }
[class*="st-key-tryon-"][class*="-thumb-"] .stButton button:focus-visible { opacity: 0.3; }
[class*="st-key-tryon-"][class*="-thumb-"] [data-testid="stElementToolbar"] { display: none; }
/* One job per intent: Generate takes no click while the click before it is being handled. */
[data-test-script-state="running"] .st-key-tryon-generate button {
  pointer-events: none; cursor: progress; }
.mirrago-details { width: 100%; border-collapse: collapse; font-size: 0.85rem; }
.mirrago-details th { text-align: left; font-weight: 600; padding: 0.3rem 0.75rem 0.3rem 0;
  white-space: nowrap; vertical-align: top; color: #5f587a; }
.mirrago-details td { padding: 0.3rem 0; word-break: break-all; }
.mirrago-details tr + tr { border-top: 1px solid #ece8f7; }
</style>
"""


def apply_brand() -> None:
    """The logo in the sidebar, and the style touches. Call once per run, from the router."""
    st.logo(_WORDMARK.strip(), icon_image=_MARK.strip(), size="large")
    st.html(_CSS)
