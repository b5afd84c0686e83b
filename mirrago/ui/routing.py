"""Keeping every page behind the router (`app.py`), even in Streamlit's legacy pages/ mode.

Until some session of a server calls `st.navigation`, Streamlit treats a `pages/` folder the
old way: on a server's very first session it runs the requested page *file* directly, without
`app.py` (so no page config, no sidebar, no error guard), and a deep link whose URL is not a
file name gets a "Page not found" dialog. Page files are therefore named after their URL
(`pages/try-on.py` for `/try-on`) and start with `ensure_routed()`: run directly, a page runs
the router instead, which switches Streamlit to `st.navigation` for good and runs the page.
"""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

_local = threading.local()  # script runs of one session happen on one thread


@contextmanager
def routed() -> Iterator[None]:
    """The router wraps `page.run()` in this: pages run inside it are routed."""
    previous = getattr(_local, "active", False)
    _local.active = True
    try:
        yield
    finally:
        _local.active = previous


def ensure_routed() -> None:
    """Call first in every page file: if the router did not run this page, run the router."""
    if getattr(_local, "active", False):
        return
    ctx = get_script_run_ctx()
    if ctx is None:  # not inside `streamlit run` (an import, a linter): nothing to route
        return
    runpy.run_path(str(ctx.pages_manager.main_script_path), run_name="__main__")
    st.stop()
