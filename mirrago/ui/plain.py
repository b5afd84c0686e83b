"""Text from users and servers (names, usernames, URLs, error messages) shown as plain text in
places that render Markdown (headings, labels, captions): every punctuation mark is escaped."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&\"'=/])")


def md_text(text: object) -> str:
    """`text` escaped so Markdown shows it literally (no link, emphasis, HTML or icon)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
