"""Mirrago Studio, the web app: `streamlit run app.py`.

The router: page config, the shared sidebar (backend, health, credits, live connection) and
`st.navigation` over the files in `pages/`. Adding a page is one line in `PAGES`.
"""

from __future__ import annotations

import logging

import streamlit as st

from mirrago.ui.brand import PAGE_ICON, apply_brand
from mirrago.ui.errors import page_guard
from mirrago.ui.identity import sign_in_gate
from mirrago.ui.routing import routed
from mirrago.ui.sidebar import connection_panel

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

# The app's pages, in menu order: adding one (Batch, Usage) is one line here. A page file is
# named after its URL and starts with `ensure_routed()` (see mirrago/ui/routing.py).
PAGES = [
    st.Page("pages/try-on.py", title="Try-on", icon=":material/checkroom:", url_path="try-on"),
    st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:", url_path="batch"),
    st.Page("pages/usage.py", title="Usage", icon=":material/insights:", url_path="usage"),
    st.Page("pages/stage.py", title="Stage", icon=":material/slideshow:", url_path="stage"),
]


def _home() -> None:
    """The root URL opens the first page under its own URL (`/` → `/try-on`).

    The default page of `st.navigation` is served only at `/`: a page marked default would show
    "Page not found" at its own path. So the default is this hidden redirect, and every real
    page keeps a URL that works as a deep link and on refresh.
    """
    st.switch_page(PAGES[0], query_params=st.query_params.to_dict())


HOME = st.Page(_home, title="Mirrago Studio", url_path="home", default=True, visibility="hidden")

st.set_page_config(
    page_title="Mirrago Studio",
    page_icon=PAGE_ICON,  # the logo as inline SVG: a Material icon here is fetched from Google
    layout="wide",
    initial_sidebar_state="auto",  # expanded on a desktop, closed on a phone (it covers the page)
)
apply_brand()
page = st.navigation([HOME, *PAGES], position="sidebar")
# The sidebar opens the services every page needs: if that fails, its one message is enough.
ready = False
if not sign_in_gate():  # sign-in configured ([auth] in secrets.toml) and nobody signed in
    st.stop()
with page_guard("the sidebar"):
    connection_panel()
    ready = True
if ready:
    with page_guard(page.title), routed():
        page.run()
