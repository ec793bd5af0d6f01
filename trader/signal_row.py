"""What a row of the signal log, ``signals_log.csv``, means: its header, a row as a ``Signal``
or an ``InvalidSignal``, and the id a row is known by. No files here: ``signal_follower`` reads.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from trader.errors import SignalError
from trader.models import InvalidSignal, Signal

__all__ = [
    "parse_header",
    "parse_line",
    "parse_record",
    "parse_row",
    "parse_timestamp",
    "signal_identity",
]

logger = logging.getLogger(__name__)

# [0-9] rather than \d: Python's \d and Decimal() both accept non-ASCII digits.
_SYMBOL = re.compile(r"[A-Z0-9]{2,30}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
# Converting a huge Decimal to int takes minutes; a year of TTL is already absurd.
_MAX_TTL_MINUTES = 525_600
_MAX_RAW_CHARS = 2000  # of a bad line kept for the record; the id still hashes all of it
# Every column a row is read by (the id included); the others are never looked at.
_READ_COLUMNS = frozenset(
    (
        "timestamp",
        "symbol",
        "verdict",
        "confidence",
        "entry_price",
        "ttl_minutes",
        "target_min",
        "target_max",
        "signal_id",
    )
)


# --------------------------------------------------------------------------- a row's fields


def _columns(row: Mapping[str, str]) -> dict[str, str]:
    """Header names stripped and lower-cased, values stripped; csv's ``None`` keys dropped."""
    return {
        key.strip().lower(): (value or "").strip()
        for key, value in row.items()
        if isinstance(key, str)
    }


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def signal_identity(row: Mapping[str, str]) -> str:
    """The id a row is known by: its ``signal_id``, else a hash of ``timestamp|symbol|verdict``.

    A row with none of those three is hashed whole, so that even garbage has a stable id.
    """
    return _identity(_columns(row), row)


def _identity(cols: Mapping[str, str], row: Mapping[str, str]) -> str:
    """``signal_identity`` of ``row``, whose ``_columns`` are ``cols``."""
    if signal_id := cols.get("signal_id", ""):
        return signal_id
    key = (cols.get("timestamp", ""), cols.get("symbol", ""), cols.get("verdict", ""))
    if any(key):
        return _digest("|".join(key))
    return _digest("|".join(value or "" for value in row.values()))


def parse_timestamp(text: str) -> datetime:
    """A log timestamp as an aware UTC ``datetime``: ``YYYY-MM-DD HH:MM:SS`` or ISO 8601 (``T``,
    fractional seconds, ``Z`` or an offset); naive means UTC. Raises ``ValueError``."""
    text = text.strip()
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not a timestamp: {text!r}")
    # fromisoformat (3.11) wants an upper-case T and no lower-case z.
    iso = text[:10] + "T" + text[11:]
    if iso[-1] in "Zz":
        iso = iso[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(iso)
        # An offset is converted, which can overflow near year 1 or 9999.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {text!r}") from exc


def _parse_signal_time(text: str) -> datetime:
    if not text:
        raise SignalError("missing_timestamp")
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise SignalError("bad_timestamp", text) from exc


def _parse_number(text: str, reason: str) -> Decimal:
    # Straight from the string: a float would turn 0.19046 into 0.190459999...
    if not _NUMBER.fullmatch(text):
        raise SignalError(reason, f"not a number: {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # the pattern should make this unreachable
        raise SignalError(reason, f"not a number: {text!r}") from exc


def _parse_optional_price(text: str, reason: str) -> Decimal | None:
    if not text:
        return None
    value = _parse_number(text, reason)
    if value <= 0:
        raise SignalError(reason, f"not positive: {text}")
    return value


def _parse_ttl(text: str) -> int | None:
    if not text:
        return None
    # Accept "15.0" too: pandas writes an int column with gaps as floats.
    value = _parse_number(text, "bad_ttl")
    if value <= 0 or value != value.to_integral_value():
        raise SignalError("bad_ttl", f"not a positive integer: {text}")
    if value > _MAX_TTL_MINUTES:
        raise SignalError("bad_ttl", f"too large: {text}")
    return int(value)


def parse_row(row: Mapping[str, str]) -> Signal:
    """Parse one row of the log, keyed by header name (any case, any order).

    Raises ``SignalError`` whose ``reason`` is the short code stored as ``invalid:<reason>``.
    """
    return _signal(_columns(row), row)


def _signal(cols: Mapping[str, str], row: Mapping[str, str]) -> Signal:
    """``parse_row`` of ``row``, whose ``_columns`` are ``cols``."""
    timestamp = _parse_signal_time(cols.get("timestamp", ""))

    symbol = cols.get("symbol", "").upper()
    if not symbol:
        raise SignalError("missing_symbol")
    if not _SYMBOL.fullmatch(symbol):
        raise SignalError("bad_symbol", symbol)

    verdict = cols.get("verdict", "").upper()
    if not verdict:
        raise SignalError("missing_verdict")

    confidence_text = cols.get("confidence", "")
    if not confidence_text:
        raise SignalError("bad_confidence", "missing")
    confidence = _parse_number(confidence_text, "bad_confidence")
    if not 0 <= confidence <= 1:
        raise SignalError("bad_confidence", f"outside 0..1: {confidence_text}")

    return Signal(
        id=_identity(cols, row),
        timestamp=timestamp,
        symbol=symbol,
        verdict=verdict,
        confidence=confidence,
        entry_price=_parse_optional_price(cols.get("entry_price", ""), "bad_entry_price"),
        ttl_minutes=_parse_ttl(cols.get("ttl_minutes", "")),
        target_min=_parse_optional_price(cols.get("target_min", ""), "bad_target"),
        target_max=_parse_optional_price(cols.get("target_max", ""), "bad_target"),
    )


def parse_record(row: Mapping[str, str]) -> Signal | InvalidSignal:
    """Like ``parse_row``, but a malformed row becomes an ``InvalidSignal``; never raises."""
    cols = _columns(row)
    try:
        return _signal(cols, row)
    except SignalError as exc:
        return InvalidSignal(id=_identity(cols, row), reason=exc.reason, raw=dict(row))


# --------------------------------------------------------------------------- a line of the file


def parse_header(line: bytes) -> tuple[str, ...]:
    """The column names in the log's first line (empty if it is unreadable, which is logged)."""
    text = line.decode("utf-8", "replace")
    try:
        header = tuple(name.strip() for name in _split_csv(text))
    except csv.Error:
        header = ()
    if "\ufffd" in text or not header:
        logger.warning("signal log header is unreadable: %r", text[:200])
    return header


def parse_line(line: bytes, header: tuple[str, ...]) -> Signal | InvalidSignal | None:
    """One line of the log (no line break) under ``header``; ``None`` for the header repeated."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid_line(line.decode("utf-8", "replace"), "bad_encoding")
    try:
        fields = _split_csv(text)
    except csv.Error:  # e.g. a field over csv.field_size_limit()
        return _invalid_line(text, "bad_row")
    if len(fields) != len(header):
        return _invalid_line(text, "bad_row")
    if fields[0].strip().lower() == header[0].lower() and [
        value.strip().lower() for value in fields
    ] == [name.lower() for name in header]:
        return None  # the writer restarted and wrote its header again
    # The row's columns straight from the header's plan: what ``parse_record`` of the row as
    # a dict gives, without normalising every header name again on every line (the start-up
    # backlog is hundreds of thousands of lines).
    cols = {name: fields[index].strip() for name, index in _plan(header)}
    row = _LazyRow(header, fields)
    try:
        return _signal(cols, row)
    except SignalError as exc:
        return InvalidSignal(id=_identity(cols, row), reason=exc.reason, raw=dict(row))


@functools.lru_cache(maxsize=8)
def _plan(header: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Where each column a row is read by is found in a line under ``header``: what
    ``_columns(dict(zip(header, fields)))`` gives, where a repeated name keeps its last value."""
    last = {name: index for index, name in enumerate(header)}  # in first-seen order
    plan: dict[str, int] = {}
    for name, index in last.items():
        plan[name.strip().lower()] = index
    return tuple((name, index) for name, index in plan.items() if name in _READ_COLUMNS)


class _LazyRow(Mapping[str, str]):
    """A line's fields by header name, as ``dict(zip(header, fields))``, built only when a
    row needs it whole (an invalid row's ``raw``, or a row with no key fields hashed whole)."""

    def __init__(self, header: tuple[str, ...], fields: list[str]) -> None:
        self._header = header
        self._fields = fields
        self._row: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._row is None:
            self._row = dict(zip(self._header, self._fields, strict=True))
        return self._row

    def __getitem__(self, key: str) -> str:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def _invalid_line(text: str, reason: str) -> InvalidSignal:
    return InvalidSignal(
        id=signal_identity({"line": text}), reason=reason, raw={"line": text[:_MAX_RAW_CHARS]}
    )


def _split_csv(text: str) -> list[str]:
    return next(csv.reader([text]), [])
