"""The one Markdown escaper: user text shows as written, and nothing in it becomes a link."""

from __future__ import annotations

import re

import pytest

from mirrago.ui.errors import plain
from mirrago.ui.plain import md_text

# The patterns GitHub-flavoured Markdown autolinks in plain text (mdast-util-gfm-autolink-literal).
AUTOLINK = re.compile(r"(https?://|www\.)|[-.\w+]@[-\w]")


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://attacker.invalid/x","click")',
        "HTTPS://attacker.invalid",
        "www.attacker.invalid",
        "boss@attacker.invalid",
        "mailto:boss@attacker.invalid",
    ],
)
def test_links_in_user_text_are_broken_for_markdown(text: str) -> None:
    for escaped in (md_text(text), plain(text)):
        unescaped = escaped.replace("\\", "")
        assert AUTOLINK.search(unescaped) is None
        assert unescaped.replace("\u2060", "") == text


def test_markdown_signs_are_escaped_and_none_shows_nothing() -> None:
    assert md_text("**bold** [x](y)") == r"\*\*bold\*\* \[x\]\(y\)"
    assert md_text(None) == plain(None) == ""
