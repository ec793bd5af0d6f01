"""Following a signal log written untidily: a BOM, CRLF, blank lines and quoted commas are
read; malformed rows become invalid signals; a line that never ends is reported.

Every wait is a deadline on the next batch, never a sleep; the poll fallback is set far beyond
those deadlines (except where the test is about it), so a passing test was woken by an event.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.signal_follower_support import HEADER, append, follow, ids, primed, row
from trader.models import InvalidSignal, Signal
from trader.signal_row import signal_identity


async def test_bom_crlf_blank_lines_and_quoted_commas_are_read(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    header = "Signal_ID,components,Timestamp,Symbol,Verdict,Confidence"
    lines = [
        header,
        "a1,,2025-10-19 05:25:03,ETHUSDT,SELL,0.89",
        "",
        "   ",
        'a2,"rsi,vwap, ""oi""",2025-10-19T05:25:04Z,BNBUSDT,BUY,0.88',
    ]
    log.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")

    async with follow(log) as (_, stream):
        records = await stream.records(2)

    assert ids(records) == ["a1", "a2"]
    assert all(isinstance(record, Signal) for record in records)
    assert stream.last is not None
    assert stream.last.offset.header[0] == "Signal_ID"


async def test_malformed_rows_become_invalid_signals_and_following_goes_on(
    tmp_path: Path,
) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    garbage = b"".join(
        [
            b"only,three,columns\n",
            row("s2").encode().replace(b"ETHUSDT", b"ETH\xff\xfeUSDT"),
            row("s3", confidence="high").encode(),
            f"{HEADER}\n".encode(),  # the writer restarted and wrote its header again
            b",,,,,,,\n",
            row("s4", components="x").encode(),  # one column too many
            b"\x00\x01\x02\n",
            row("s5").encode(),
        ]
    )

    async with follow(log) as (_, stream):
        await primed(stream)
        append(log, garbage)
        records = await stream.records(7)

    *invalid, last = records
    assert [(type(record), getattr(record, "reason", None)) for record in invalid] == [
        (InvalidSignal, "bad_row"),
        (InvalidSignal, "bad_encoding"),
        (InvalidSignal, "bad_confidence"),
        (InvalidSignal, "missing_timestamp"),
        (InvalidSignal, "bad_row"),
        (InvalidSignal, "bad_row"),
    ]
    assert isinstance(last, Signal)
    assert last.id == "s5"
    bad_confidence = invalid[2]
    assert isinstance(bad_confidence, InvalidSignal)
    assert bad_confidence.id == "s3"
    assert bad_confidence.raw["confidence"] == "high"
    # Garbage still gets a stable id, from the line itself.
    assert invalid[0].id == signal_identity({"line": "only,three,columns"})


async def test_a_line_that_never_ends_is_reported_not_buffered_forever(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")

    async with follow(log) as (_, stream):
        await primed(stream)
        append(log, "x" * 200_000)
        records = await stream.records(1)
        assert [getattr(record, "reason", None) for record in records] == ["bad_row"]
        append(log, "\n" + row("s2"))
        while not any(isinstance(record, Signal) for record in records):
            records += (await stream.next_batch()).records

    *rest, last = records
    assert all(getattr(record, "reason", None) == "bad_row" for record in rest)
    assert isinstance(last, Signal)
    assert last.id == "s2"
    assert all(
        len(record.raw["line"]) <= 2000 for record in rest if isinstance(record, InvalidSignal)
    )
