"""Telegram's HTML parse mode, as the fake Bot API server checks it: the tags Telegram knows,
balanced, with entities well formed; otherwise "can't parse entities", as Telegram answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# -- Telegram's HTML parse mode -------------------------------------------------------------


class HtmlParseError(ValueError):
    """Why Telegram would refuse the HTML, worded like its ``can't parse entities`` reasons."""


_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_SPECIAL_RE = re.compile(r"[&<]")


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the plain text
    attrs: dict[str, str]
    language: str | None = None


class _HtmlParser:
    """Telegram's HTML subset: the supported tags, balanced; ``&`` only as an entity.

    Telegram passes an ``&`` that starts no known entity through as text; this parser refuses
    it instead, so a dynamic value that was not escaped fails the test that sends it.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[str] = []
        self.length = 0  # UTF-16 length of the plain text so far
        self.stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        text = self.text
        while self.pos < len(text):
            special = _SPECIAL_RE.search(text, self.pos)
            stop = len(text) if special is None else special.start()
            if stop > self.pos:
                self._emit(text[self.pos : stop])
                self.pos = stop
                continue
            if text[self.pos] == "&":
                self._emit(self._entity(self.pos))
            elif text.startswith("</", self.pos):
                self._end_tag()
            else:
                self._start_tag()
        if self.stack:
            name = self.stack[-1].name
            raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{name}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def _emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.length += utf16_len(chunk)

    def _offset(self, index: int) -> int:
        """Telegram reports positions as byte offsets into the UTF-8 text."""
        return len(self.text[:index].encode("utf-8", "surrogatepass"))

    def _entity(self, index: int) -> str:
        """Decode the entity at ``index``; advance past it."""
        match = _ENTITY_RE.match(self.text, index)
        if match is None:
            raise HtmlParseError(
                f'Character "&" at byte offset {self._offset(index)} does not start an entity; '
                "escape it as &amp;"
            )
        named, decimal, hexadecimal = match.groups()
        self.pos = match.end()
        if named is not None:
            return _NAMED_ENTITIES[named]
        code = int(decimal) if decimal is not None else int(hexadecimal, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise HtmlParseError(f"Invalid character entity at byte offset {self._offset(index)}")
        return chr(code)

    def _unescape(self, raw: str, index: int) -> str:
        """An attribute value, entities decoded; ``index`` is where it starts in the text."""
        parts: list[str] = []
        i = 0
        while (amp := raw.find("&", i)) >= 0:
            parts.append(raw[i:amp])
            saved = self.pos
            parts.append(self._entity(index + amp))
            i = self.pos - index
            self.pos = saved
        parts.append(raw[i:])
        return "".join(parts)

    def _start_tag(self) -> None:
        text = self.text
        begin = self.pos
        i = begin + 1
        while i < len(text) and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= len(text):
            raise HtmlParseError(f"Unclosed start tag at byte offset {self._offset(begin)}")
        name = text[begin + 1 : i].lower()
        if name not in _TAG_ENTITY:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {self._offset(begin)}'
            )
        attrs, self.pos = self._attributes(name, i, begin)
        tag = _OpenTag(name, self.length, attrs)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self._offset(begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise HtmlParseError(
                f'Tag "tg-emoji" must have a numeric "emoji-id" at byte offset '
                f"{self._offset(begin)}"
            )
        if name == "code" and attrs.get("class", "").startswith("language-"):
            tag.language = attrs["class"].removeprefix("language-")
        self.stack.append(tag)

    def _attributes(self, tag: str, i: int, begin: int) -> tuple[dict[str, str], int]:
        """Parse the attributes from ``i`` to the closing ``>``; return them and the index
        just past it."""
        text = self.text
        attrs: dict[str, str] = {}

        def unclosed() -> HtmlParseError:
            return HtmlParseError(f"Unclosed start tag at byte offset {self._offset(begin)}")

        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                raise unclosed()
            if text[i] == ">":
                return attrs, i + 1
            match = _ATTR_NAME_RE.match(text, i)
            if match is None:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset {self._offset(i)}'
                )
            attr = match.group().lower()
            i = match.end()
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] == "=":
                i += 1
                while i < len(text) and text[i].isspace():
                    i += 1
                if i >= len(text):
                    raise unclosed()
                if text[i] in "\"'":
                    close = text.find(text[i], i + 1)
                    if close < 0:
                        raise unclosed()
                    attrs[attr] = self._unescape(text[i + 1 : close], i + 1)
                    i = close + 1
                else:
                    end = i
                    while end < len(text) and not text[end].isspace() and text[end] != ">":
                        end += 1
                    attrs[attr] = self._unescape(text[i:end], i)
                    i = end
            else:
                attrs[attr] = ""

    def _end_tag(self) -> None:
        begin = self.pos
        close = self.text.find(">", begin + 2)
        if close < 0:
            raise HtmlParseError(f"Unclosed end tag at byte offset {self._offset(begin)}")
        name = self.text[begin + 2 : close].strip().lower()
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {self._offset(begin)}")
        tag = self.stack[-1]
        if name != tag.name:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self._offset(begin)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self.stack.pop()
        self.pos = close + 1
        self._close_entity(tag)

    def _close_entity(self, tag: _OpenTag) -> None:
        length = self.length - tag.start
        if length == 0:
            return  # Telegram drops empty entities
        entity: dict[str, Any] = {"type": _TAG_ENTITY[tag.name], "offset": tag.start}
        entity["length"] = length
        if tag.name == "a":
            href = tag.attrs.get("href")
            if not href:
                return
            entity["url"] = href
        elif tag.name == "code" and tag.language is not None:
            if self.stack and self.stack[-1].name == "pre":
                # <pre><code class="language-x"> is one pre entity with a language
                self.stack[-1].language = tag.language
                return
        elif tag.name == "pre" and tag.language is not None:
            entity["language"] = tag.language
        elif tag.name == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attrs["emoji-id"]
        self.entities.append(entity)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text a user sees and its entities, as Telegram's HTML parse mode yields them.

    Raises ``HtmlParseError`` where Telegram answers "can't parse entities" (and on an ``&``
    that starts no entity, where Telegram is lenient).
    """
    return _HtmlParser(text).parse()
