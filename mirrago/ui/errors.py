"""Turning problems into one clear message with what to do next, and keeping tracebacks off
the page: `page_guard()` wraps each page body, logs the detail server-side and shows a
friendly error instead."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from mirrago.errors import MirragoError
from mirrago.ui.plain import md_text

log = logging.getLogger("mirrago.ui")

# (words found in a message, what the user should do next) — the runner records errors as
# text in the ledger, so the advice is chosen from the words of that text.
_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("credential", "client id", "secret", "unauthor", "401", "403", "token"),
        "Check the client id and secret under **Connect to a live endpoint** in the sidebar.",
    ),
    (("credit", "402"), "Top up the account's credits, then generate again."),
    (
        ("rate limit", "429", "too many"),
        "The service is busy with our requests: wait a few seconds, then retry.",
    ),
    (
        ("image url", "invalid image", "url", "fetch", "download"),
        "Check that the image link opens in a browser and points to a JPG or PNG, "
        "or upload the file instead.",
    ),
    (
        ("decode", "not an image", "truncated", "too large", "image"),
        "Pick another photo (JPG, PNG or WebP) and generate again.",
    ),
    (
        ("timed out", "timeout", "deadline"),
        "The service took too long: retry now or in a minute.",
    ),
    (
        ("connect", "unreachable", "refused", "network"),
        "The service could not be reached: check the network or the base URL, then retry.",
    ),
)
_DEFAULT_ADVICE = "Retry it; if it fails again, try different photos."


def plain(text: object) -> str:
    """Text from a server, the database or a user, made safe to put inside a Markdown message
    (the one escaper, `md_text`): it shows exactly as written, and never as a link."""
    return md_text(text or "")


def advice_for(message: str | None) -> str:
    """What to do next about a failure described by `message`."""
    text = (message or "").lower()
    for words, advice in _ADVICE:
        if any(word in text for word in words):
            return advice
    return _DEFAULT_ADVICE


def message_for(error: BaseException) -> str:
    """One sentence for the user about `error`. Mirrago Studio's own errors are written for
    users (and never carry a secret); anything else is summarised, its detail kept in the log."""
    if isinstance(error, MirragoError):
        return str(error)
    return "Something went wrong on our side. The details are in the server log."


@contextmanager
def page_guard(where: str) -> Iterator[None]:
    """Run a page body; an unexpected exception becomes one friendly message, never a trace.

    Streamlit's own rerun/stop signals derive from BaseException and pass through untouched.
    """
    try:
        yield
    except Exception as error:  # the last line of defence for a live demo
        log.exception("unexpected error on %s", where)
        st.error(
            f"{plain(message_for(error))}  \n{advice_for(str(error))}",
            icon=":material/error:",
        )
