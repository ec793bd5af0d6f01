"""How values are stored in SQLite: exact Decimals as text, UTC times as sortable text, and the
rows of each table turned back into the engine's types.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.models import (
    ClosedTrade,
    CloseReason,
    InvalidSignal,
    Position,
    Side,
    Signal,
    TakeProfitLevel,
    TakeProfitPlan,
    TrailingStop,
)
from trader.ports import Confirmation, OrderRecord, OrderStatus, OutboxMessage, StoredSignal
from trader.redaction import Redactor

Redact = Callable[[str], str]


def _same(text: str) -> str:
    return text


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def to_db_time(value: datetime) -> str:
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware UTC times")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def opt_time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def to_db_decimal(value: Decimal) -> str:
    # A float here would store its binary noise; refuse it instead of rounding silently.
    if not isinstance(value, Decimal):
        raise TypeError(f"expected Decimal, got {type(value).__name__}")
    return str(value)


def opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else to_db_decimal(value)


SIGNAL_COLUMNS = "id, symbol, verdict, timestamp, seen_at, outcome"
FULL_SIGNAL_COLUMNS = (
    "id, symbol, verdict, timestamp, confidence, entry_price, ttl_minutes, target_min, target_max"
)
ORDER_COLUMNS = (
    "link_id, signal_id, symbol, side, qty, reduce_only, status, created_at, error,"
    " exchange_order_id"
)
POSITION_COLUMNS = (
    "id, signal_id, symbol, side, qty, entry_price, leverage, margin, stop_loss, take_profit,"
    " entry_fee, opened_at, expires_at, link_id, trailing_distance, trailing_active_price,"
    " take_profit_plan"
)
TRADE_COLUMNS = (
    "id, signal_id, symbol, side, qty, entry_price, exit_price, leverage, margin, entry_fee,"
    " exit_fee, gross_pnl, net_pnl, reason, opened_at, closed_at,"
    # A part has no position_id: the position's last part, or its one exit, has it.
    " position_id IS NULL AS part"
)
OUTBOX_COLUMNS = "id, chat_id, kind, payload, attempts, created_at, next_attempt_at, silent"
CONFIRMATION_COLUMNS = "signal_id, ref, status, created_at, expires_at"


def stored_signal_from_row(row: sqlite3.Row) -> StoredSignal:
    return StoredSignal(
        id=row["id"],
        symbol=row["symbol"],
        verdict=row["verdict"],
        timestamp=opt_time(row["timestamp"]),
        seen_at=from_db_time(row["seen_at"]),
        outcome=row["outcome"],
    )


def signal_from_row(row: sqlite3.Row) -> Signal | None:
    """The parsed signal of a ``signals`` row; None for a row that never parsed."""
    if row["timestamp"] is None or row["confidence"] is None:
        return None
    return Signal(
        id=row["id"],
        timestamp=from_db_time(row["timestamp"]),
        symbol=row["symbol"],
        verdict=row["verdict"],
        confidence=Decimal(row["confidence"]),
        entry_price=_opt_decimal_value(row["entry_price"]),
        ttl_minutes=row["ttl_minutes"],
        target_min=_opt_decimal_value(row["target_min"]),
        target_max=_opt_decimal_value(row["target_max"]),
    )


def _opt_decimal_value(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def order_from_row(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        link_id=row["link_id"],
        signal_id=row["signal_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=Decimal(row["qty"]),
        reduce_only=bool(row["reduce_only"]),
        status=OrderStatus(row["status"]),
        created_at=from_db_time(row["created_at"]),
        error=row["error"],
        exchange_order_id=row["exchange_order_id"],
    )


def position_from_row(row: sqlite3.Row) -> Position:
    return Position(
        id=row["id"],
        signal_id=row["signal_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=Decimal(row["qty"]),
        entry_price=Decimal(row["entry_price"]),
        leverage=row["leverage"],
        margin=Decimal(row["margin"]),
        stop_loss=Decimal(row["stop_loss"]),
        take_profit=Decimal(row["take_profit"]),
        entry_fee=Decimal(row["entry_fee"]),
        opened_at=from_db_time(row["opened_at"]),
        expires_at=from_db_time(row["expires_at"]),
        link_id=row["link_id"],
        trailing=trailing_from_row(row),
        take_profits=plan_from_db(row["take_profit_plan"]),
    )


def plan_to_db(plan: TakeProfitPlan | None) -> str | None:
    """A position's ``take_profit_plan`` column (migration 007)."""
    if plan is None:
        return None
    return json.dumps(
        {
            "qty": to_db_decimal(plan.qty),
            "levels": [[to_db_decimal(x.price), to_db_decimal(x.qty)] for x in plan.levels],
            "breakeven_after": plan.breakeven_after,
            "breakeven_price": opt_decimal(plan.breakeven_price),
            "breakeven_moved": plan.breakeven_moved,
            "tp_filled_qty": to_db_decimal(plan.tp_filled_qty),
            "filled_prices": [to_db_decimal(price) for price in plan.filled_prices],
            "triggered_qty": to_db_decimal(plan.triggered_qty),
        }
    )


def plan_from_db(text: str | None) -> TakeProfitPlan | None:
    if text is None:
        return None
    data = json.loads(text)
    price = data["breakeven_price"]
    return TakeProfitPlan(
        tuple(TakeProfitLevel(Decimal(p), Decimal(q)) for p, q in data["levels"]),
        qty=Decimal(data["qty"]),
        breakeven_after=data["breakeven_after"],
        breakeven_price=None if price is None else Decimal(price),
        breakeven_moved=bool(data["breakeven_moved"]),
        # Plans stored before the count was kept: none is taken as filled.
        tp_filled_qty=Decimal(data.get("tp_filled_qty", "0")),
        filled_prices=tuple(Decimal(price) for price in data.get("filled_prices", ())),
        triggered_qty=Decimal(data.get("triggered_qty", "0")),
    )


def trailing_from_row(row: sqlite3.Row) -> TrailingStop | None:
    distance = row["trailing_distance"]
    if distance is None:
        return None
    return TrailingStop(Decimal(distance), _opt_decimal_value(row["trailing_active_price"]))


def trailing_values(trailing: TrailingStop | None) -> tuple[str | None, str | None]:
    """A position's ``trailing_distance`` and ``trailing_active_price``."""
    if trailing is None:
        return None, None
    return to_db_decimal(trailing.distance), opt_decimal(trailing.active_price)


def trade_from_row(row: sqlite3.Row) -> ClosedTrade:
    return ClosedTrade(
        id=row["id"],
        signal_id=row["signal_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=Decimal(row["qty"]),
        entry_price=Decimal(row["entry_price"]),
        exit_price=Decimal(row["exit_price"]),
        leverage=row["leverage"],
        margin=Decimal(row["margin"]),
        entry_fee=Decimal(row["entry_fee"]),
        exit_fee=Decimal(row["exit_fee"]),
        gross_pnl=Decimal(row["gross_pnl"]),
        net_pnl=Decimal(row["net_pnl"]),
        reason=CloseReason(row["reason"]),
        opened_at=from_db_time(row["opened_at"]),
        closed_at=from_db_time(row["closed_at"]),
        part=bool(row["part"]),
    )


def outbox_message_from_row(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        payload=row["payload"],
        attempts=row["attempts"],
        created_at=from_db_time(row["created_at"]),
        next_attempt_at=from_db_time(row["next_attempt_at"]),
        silent=bool(row["silent"]),
    )


def confirmation_from_row(row: sqlite3.Row) -> Confirmation:
    return Confirmation(
        signal_id=row["signal_id"],
        ref=row["ref"],
        status=row["status"],
        created_at=from_db_time(row["created_at"]),
        expires_at=from_db_time(row["expires_at"]),
    )


TRADE_INSERT = (
    "INSERT INTO trades (position_id, signal_id, symbol, side, qty, entry_price, exit_price,"
    " leverage, margin, entry_fee, exit_fee, gross_pnl, net_pnl, reason, opened_at, closed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def trade_values(position_id: int | None, trade: ClosedTrade) -> tuple[Any, ...]:
    """The parameters of ``TRADE_INSERT`` for ``trade``."""
    return (
        position_id,
        trade.signal_id,
        trade.symbol,
        trade.side.value,
        to_db_decimal(trade.qty),
        to_db_decimal(trade.entry_price),
        to_db_decimal(trade.exit_price),
        trade.leverage,
        to_db_decimal(trade.margin),
        to_db_decimal(trade.entry_fee),
        to_db_decimal(trade.exit_fee),
        to_db_decimal(trade.gross_pnl),
        to_db_decimal(trade.net_pnl),
        trade.reason.value,
        to_db_time(trade.opened_at),
        to_db_time(trade.closed_at),
    )


def signal_values(
    signal: Signal | InvalidSignal, seen_at: datetime, *, redact: Redact = _same
) -> tuple[Any, ...]:
    """The signals-table row of a signal: (id, symbol, verdict, timestamp, seen_at, confidence,
    entry_price, ttl_minutes, target_min, target_max, raw, outcome, outcome_at); ``redact``
    masks the reason an invalid row failed, which can quote an error."""
    seen = to_db_time(seen_at)
    if isinstance(signal, InvalidSignal):
        raw = signal.raw
        # An unparseable row is decided the moment it is seen: it is never traded.
        return (
            signal.id,
            str(raw.get("symbol") or "").strip(),
            str(raw.get("verdict") or "").strip(),
            None,
            seen,
            None,
            None,
            None,
            None,
            None,
            json.dumps(raw, ensure_ascii=False, default=str),
            redact(f"invalid:{signal.reason}"),
            seen,
        )
    return (
        signal.id,
        signal.symbol,
        signal.verdict,
        to_db_time(signal.timestamp),
        seen,
        to_db_decimal(signal.confidence),
        opt_decimal(signal.entry_price),
        signal.ttl_minutes,
        opt_decimal(signal.target_min),
        opt_decimal(signal.target_max),
        None,
        None,
        None,
    )


def redact_payload(payload: str, redact: Redactor) -> str:
    """An outbox payload with every text in it masked. The JSON is decoded first, so that a
    secret is found whatever JSON escaped in the text around it, and a text cut short at its
    end is seen as such; a PNG's base64 is left alone."""
    if not redact:
        return payload
    try:
        value = json.loads(payload)
    except ValueError:
        return redact(payload)
    cleaned = _redact_json(value, redact)
    return payload if cleaned == value else json.dumps(cleaned)


def _redact_json(value: Any, redact: Redact) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_json(item, redact) for item in value]
    if isinstance(value, dict):
        return {k: v if k == "png" else _redact_json(v, redact) for k, v in value.items()}
    return value
