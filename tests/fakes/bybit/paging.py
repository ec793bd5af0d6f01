"""Bybit v5's cursor paging of list endpoints: ``limit`` rows a page (each endpoint has its own
default and maximum), and ``nextPageCursor``, an opaque non-empty string while more rows
follow and ``""`` on the last page, which the client passes back as ``cursor``.

Bybit's cursors name the last row sent (a position list's reads ``LTCUSDT%2C1701294996731%2C0``,
an execution list's ``4485383%3A0%2C4485383%3A0``), not an offset: a row added or removed
between two pages neither repeats nor skips another. Here every row has a key that rises along
the list (a symbol for lists in symbol order; minus its index in the account's records for the
newest-first lists), and a page starts after the key its cursor names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from tests.fakes.bybit import params as p
from tests.fakes.bybit.common import params_error

T = TypeVar("T")
Key = int | str

# (default, maximum) of ``limit``, from each endpoint's "Request Parameters" in Bybit's docs.
POSITION_LIMITS = (20, 200)
ORDER_LIMITS = (20, 50)
EXECUTION_LIMITS = (50, 100)
CLOSED_PNL_LIMITS = (50, 100)
INSTRUMENT_LIMITS = (500, 1000)


def page(
    rows: Sequence[tuple[Key, T]], params: Mapping[str, Any], limits: tuple[int, int]
) -> tuple[list[T], str]:
    """The page of ``rows`` (``(key, row)``, keys rising) that ``params`` asks for, and the
    cursor of the next page ("" when this is the last).

    A ``limit`` outside ``[1, maximum]`` is refused (10001), not clamped: Bybit's docs give the
    range and nothing else, and the stricter reading is the one a client can rely on."""
    default, maximum = limits
    limit = p.limit(params, default, maximum)
    chosen = list(rows)
    cursor = str(params.get("cursor") or "")
    if cursor and chosen:
        after = _decode(cursor, chosen[0][0])
        chosen = [(key, row) for key, row in chosen if _after(key, after)]
    elif cursor:
        _decode(cursor, "")
    this_page, rest = chosen[:limit], chosen[limit:]
    next_cursor = _encode(this_page[-1][0]) if rest else ""
    return [row for _, row in this_page], next_cursor


def _after(key: Key, after: Key) -> bool:
    return key > after  # type: ignore[operator]  # both int or both str, see _decode


def _encode(key: Key) -> str:
    # Bybit's cursors arrive already percent-encoded inside the JSON; so do these.
    return quote(f"{key}:0,{key}:0", safe="")


def _decode(cursor: str, like: Key) -> Key:
    """The key a cursor names, of the same type as ``like``. A client that percent-encodes
    the cursor once more (sending ``%253A``) is understood too."""
    text = unquote(cursor)
    if "%" in text:
        text = unquote(text)
    head, sep, _ = text.partition(",")
    key, colon, _ = head.rpartition(":")
    if not (sep and colon and key):
        raise params_error("params error: cursor invalid")
    if isinstance(like, int):
        try:
            return int(key)
        except ValueError:
            raise params_error("params error: cursor invalid") from None
    return key
