"""Parsing rows of the signal log: identity, timestamps, numbers and every invalid reason."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.errors import SignalError
from trader.models import InvalidSignal, Side, Signal
from trader.signal_follower import FileOffset
from trader.signal_row import parse_record, parse_row, parse_timestamp, signal_identity

# The sample log the signal generator wrote (CRLF line endings, 543 rows).
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "signals_log.csv"
HEADER_LINE = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,oi,"
    "oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id"
)
HEADER = HEADER_LINE.split(",")


def make_row(**values: str) -> dict[str, str]:
    """A row as the generator writes it, with every column present."""
    row = dict.fromkeys(HEADER, "")
    row.update(
        timestamp="2025-10-19 05:25:03",
        symbol="ETHUSDT",
        verdict="SELL",
        confidence="0.89",
        entry_price="3906.26",
        ttl_minutes="15",
        target_min="3889.5301142857147",
        target_max="3897.8950571428572",
        signal_id="54f3695458087b4a6d4482763a32c1ac",
    )
    row.update(values)
    return row


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- the sample file


def test_every_row_of_the_sample_log_parses_with_its_own_signal_id() -> None:
    rows = sample_rows()
    assert len(rows) == 543

    records = [parse_record(row) for row in rows]

    assert all(isinstance(record, Signal) for record in records)
    assert [record.id for record in records] == [row["signal_id"] for row in rows]
    assert {record.verdict for record in records if isinstance(record, Signal)} == {"BUY", "SELL"}


def test_sample_ids_are_the_fallback_hash_of_timestamp_symbol_verdict() -> None:
    # The generator's ids are this same hash, so rows without one keep a compatible identity.
    for row in sample_rows():
        assert signal_identity({**row, "signal_id": ""}) == row["signal_id"]


def test_a_sample_row_keeps_its_numbers_exact() -> None:
    signal = parse_row(make_row())

    assert signal == Signal(
        id="54f3695458087b4a6d4482763a32c1ac",
        timestamp=datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC),
        symbol="ETHUSDT",
        verdict="SELL",
        confidence=Decimal("0.89"),
        entry_price=Decimal("3906.26"),
        ttl_minutes=15,
        target_min=Decimal("3889.5301142857147"),
        target_max=Decimal("3897.8950571428572"),
    )
    assert signal.side is Side.SELL


# --------------------------------------------------------------------------- identity


def test_identity_is_the_signal_id_column_stripped() -> None:
    assert signal_identity(make_row(signal_id="  abc-1 ")) == "abc-1"


def test_identity_without_signal_id_hashes_timestamp_symbol_verdict_as_written() -> None:
    row = make_row(signal_id="", timestamp=" 2025-10-19 05:25:03 ", symbol="ETHUSDT")

    assert signal_identity(row) == "54f3695458087b4a6d4482763a32c1ac"
    assert parse_row(row).id == "54f3695458087b4a6d4482763a32c1ac"


def test_identity_without_signal_id_column_at_all() -> None:
    row = {"timestamp": "2025-10-19 05:25:03", "symbol": "ETHUSDT", "verdict": "SELL"}

    assert signal_identity(row) == "54f3695458087b4a6d4482763a32c1ac"


def test_identity_of_a_row_with_no_key_fields_hashes_all_of_its_values() -> None:
    row = {"timestamp": "", "symbol": "", "verdict": " ", "junk": "x,y"}
    expected = hashlib.sha1(b"|| |x,y").hexdigest()[:32]

    assert signal_identity(row) == expected
    assert signal_identity(dict(row)) == expected  # stable
    assert signal_identity({**row, "junk": "z"}) != expected


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-19 05:25:03", datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)),
        ("2025-10-19T05:25:03", datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)),
        ("2025-10-19T05:25:03Z", datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)),
        ("2025-10-19t05:25:03z", datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)),
        ("2025-10-19T05:25:03.250Z", datetime(2025, 10, 19, 5, 25, 3, 250000, tzinfo=UTC)),
        ("2025-10-19T07:25:03+02:00", datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)),
        ("2025-10-19T00:25:03.5-0500", datetime(2025, 10, 19, 5, 25, 3, 500000, tzinfo=UTC)),
        ("2025-10-19 05:25", datetime(2025, 10, 19, 5, 25, tzinfo=UTC)),
    ],
)
def test_timestamps_in_space_or_iso_form_become_utc(text: str, expected: datetime) -> None:
    timestamp = parse_row(make_row(timestamp=text)).timestamp

    assert timestamp == expected
    assert timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["", "  ", "2025-10-19", "19.10.2025 05:25", "0001-01-01T00:00+01"]
)
def test_parse_timestamp_raises_value_error_for_what_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text)


def test_symbol_and_verdict_are_upper_cased_and_stripped() -> None:
    signal = parse_row(make_row(symbol=" solusdt ", verdict=" buy "))

    assert (signal.symbol, signal.verdict, signal.side) == ("SOLUSDT", "BUY", Side.BUY)


def test_any_non_empty_verdict_is_a_signal_the_engine_will_filter() -> None:
    signal = parse_row(make_row(verdict="neutral"))

    assert signal.verdict == "NEUTRAL"
    assert signal.side is None


def test_empty_optional_fields_are_none() -> None:
    signal = parse_row(make_row(entry_price="", ttl_minutes=" ", target_min="", target_max=""))

    assert signal.entry_price is None
    assert signal.ttl_minutes is None
    assert signal.target_min is None
    assert signal.target_max is None


def test_only_the_required_columns_are_needed() -> None:
    signal = parse_row(
        {
            "timestamp": "2025-10-19 05:25:03",
            "symbol": "ETHUSDT",
            "verdict": "SELL",
            "confidence": "1",
        }
    )

    assert signal.confidence == Decimal(1)
    assert signal.entry_price is None


def test_columns_are_found_by_name_in_any_order_and_case_ignoring_extras() -> None:
    row = {
        " Signal_ID ": "id-7",
        "Confidence": "0.5",
        "extra": "whatever, really",
        "VERDICT": "buy",
        "Symbol": "btcusdt",
        "TimeStamp": "2025-10-19 05:25:03",
        "ttl_minutes": "15.0",
    }

    signal = parse_row(row)

    assert (signal.id, signal.symbol, signal.verdict) == ("id-7", "BTCUSDT", "BUY")
    assert signal.confidence == Decimal("0.5")
    assert signal.ttl_minutes == 15


def test_numbers_come_from_the_text_not_through_float() -> None:
    signal = parse_row(make_row(entry_price="0.19046", target_max="0.19159099999999996"))

    assert signal.entry_price == Decimal("0.19046")
    assert str(signal.target_max) == "0.19159099999999996"


def test_confidence_bounds_are_inclusive() -> None:
    assert parse_row(make_row(confidence="0")).confidence == 0
    assert parse_row(make_row(confidence="1.000")).confidence == 1
    assert parse_row(make_row(confidence="5e-1")).confidence == Decimal("0.5")


# --------------------------------------------------------------------------- invalid rows


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"timestamp": ""}, "missing_timestamp"),
        ({"timestamp": "  "}, "missing_timestamp"),
        ({"timestamp": "yesterday"}, "bad_timestamp"),
        ({"timestamp": "2025-13-01 00:00:00"}, "bad_timestamp"),
        ({"timestamp": "2025-10-19"}, "bad_timestamp"),
        ({"timestamp": "1760851503"}, "bad_timestamp"),
        ({"timestamp": "2025-10-19 05:25:03 UTC"}, "bad_timestamp"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "bad_timestamp"),
        ({"symbol": ""}, "missing_symbol"),
        ({"symbol": "ETH/USDT"}, "bad_symbol"),
        ({"symbol": "E"}, "bad_symbol"),
        ({"symbol": "X" * 31}, "bad_symbol"),
        ({"symbol": "ЕTHUSDT"}, "bad_symbol"),  # Cyrillic Е
        ({"verdict": ""}, "missing_verdict"),
        ({"confidence": ""}, "bad_confidence"),
        ({"confidence": "high"}, "bad_confidence"),
        ({"confidence": "1.01"}, "bad_confidence"),
        ({"confidence": "-0.1"}, "bad_confidence"),
        ({"confidence": "NaN"}, "bad_confidence"),
        ({"confidence": "inf"}, "bad_confidence"),
        ({"confidence": "0,5"}, "bad_confidence"),
        ({"confidence": "1_0"}, "bad_confidence"),
        ({"confidence": "٠.٥"}, "bad_confidence"),  # Arabic-Indic digits Decimal would take
        ({"entry_price": "0"}, "bad_entry_price"),
        ({"entry_price": "-3906.26"}, "bad_entry_price"),
        ({"entry_price": "n/a"}, "bad_entry_price"),
        ({"entry_price": "Infinity"}, "bad_entry_price"),
        ({"ttl_minutes": "0"}, "bad_ttl"),
        ({"ttl_minutes": "-5"}, "bad_ttl"),
        ({"ttl_minutes": "2.5"}, "bad_ttl"),
        ({"ttl_minutes": "soon"}, "bad_ttl"),
        ({"ttl_minutes": "1e99999999"}, "bad_ttl"),
        ({"target_min": "abc"}, "bad_target"),
        ({"target_max": "0"}, "bad_target"),
        ({"target_max": "nan"}, "bad_target"),
    ],
)
def test_invalid_fields_raise_signal_error_with_a_short_reason(
    values: dict[str, str], reason: str
) -> None:
    with pytest.raises(SignalError) as raised:
        parse_row(make_row(**values))

    assert raised.value.reason == reason


def test_parse_record_turns_a_bad_row_into_an_invalid_signal_with_its_identity() -> None:
    row = make_row(confidence="high", signal_id="")

    record = parse_record(row)

    assert record == InvalidSignal(
        id="54f3695458087b4a6d4482763a32c1ac", reason="bad_confidence", raw=row
    )


def test_parse_record_of_an_empty_row_is_invalid_not_an_exception() -> None:
    record = parse_record({})

    assert isinstance(record, InvalidSignal)
    assert record.reason == "missing_timestamp"
    assert len(record.id) == 32


@given(
    st.dictionaries(
        st.sampled_from([*HEADER, "Symbol", " VERDICT", "other"]) | st.text(max_size=8),
        st.text(max_size=30)
        | st.sampled_from(["2025-10-19 05:25:03", "BTCUSDT", "BUY", "0.7", "15", "1e5"]),
        max_size=12,
    )
)
def test_parse_record_never_raises(row: dict[str, str]) -> None:
    record = parse_record(row)

    assert isinstance(record, Signal | InvalidSignal)
    assert record.id


# --------------------------------------------------------------------------- FileOffset


def test_a_file_offset_survives_a_json_round_trip() -> None:
    offset = FileOffset(device=64769, inode=1234, offset=67527, header=("timestamp", "symbol"))

    assert FileOffset(**json.loads(json.dumps(asdict(offset)))) == offset


@pytest.mark.parametrize(
    "fields",
    [
        {"device": 1, "inode": 2, "offset": -1},
        {"device": "1", "inode": 2, "offset": 3},
        {"device": 1, "inode": 2, "offset": True},
        {"device": 1, "inode": 2, "offset": 3, "header": [1, 2]},
    ],
)
def test_a_file_offset_refuses_values_that_are_not_a_position(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="FileOffset"):
        FileOffset(**fields)  # type: ignore[arg-type]
