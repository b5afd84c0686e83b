"""Text from users and servers (names, usernames, URLs, error messages) shown as plain text in
places that render Markdown (headings, labels, captions): every punctuation mark is escaped,
and nothing in it becomes a link."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&\"'=/])")
# GitHub-flavoured Markdown (Streamlit's renderer) turns bare `http://…`, `www.…` and
# `name@host` into links after escapes are read, so escaping alone does not stop them: an
# invisible word joiner inside each pattern does, and the text still reads the same.
_JOINER = "\u2060"
_AUTOLINKS = re.compile(r"(?i)(https?|www|xmpp|mailto)(?=[:.])|(?=@)")


def md_text(text: object) -> str:
    """`text` escaped so Markdown shows it literally (no link, emphasis, HTML or icon); None
    shows as nothing."""
    folded = " ".join(str("" if text is None else text).split())
    unlinked = _AUTOLINKS.sub(lambda found: (found.group(1) or "") + _JOINER, folded)
    return _MARKDOWN.sub(r"\\\1", unlinked)
