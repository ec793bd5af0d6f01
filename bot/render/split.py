"""What Telegram accepts: a message cut into parts at its length limit, and the plain text
sent when Telegram refuses a message's HTML.
"""

from __future__ import annotations

import html
import re

MESSAGE_LIMIT = 4096  # Telegram's limit on a message's text
CAPTION_LIMIT = 1024

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """The text a user sees, without markup (a fallback when Telegram refuses the HTML)."""
    return html.unescape(_TAG.sub("", text))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut a message into parts Telegram accepts, at line ends. Our lines close their own
    tags, so a cut between lines never splits one; a single overlong line is cut hard."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return [part for part in parts if part.strip()] or [text[:limit]]
