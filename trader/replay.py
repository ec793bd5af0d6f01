"""Replay: what a signal log would have made, offline, with fees on notional.

It runs the engine's own rules (screen, risk, size, SL/TP) and money code over each signal's
recorded price path (highest, lowest and final price within its TTL).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trader import rules
from trader.clock import utc_day_start
from trader.errors import ConfigError
from trader.exchange.market import parse_instrument
from trader.models import (
    ClosedTrade,
    CloseReason,
    Fill,
    Instrument,
    InvalidSignal,
    Position,
    Signal,
)
from trader.pnl import Stats, close_trade, open_position, taker_fee, trade_stats
from trader.rules import Limits, RiskState
from trader.settings import Strategy
from trader.signal_row import parse_record, parse_timestamp


@dataclass(frozen=True, slots=True)
class PricePath:
    """How the price moved within a signal's TTL, from the generator's outcome log."""

    high: Decimal
    low: Decimal
    final: Decimal


OutcomeKey = tuple[datetime, str, str]  # (timestamp, symbol, verdict)


def load_outcomes(path: Path) -> dict[OutcomeKey, PricePath]:
    """Read ``signal_outcomes.csv``: each signal's highest, lowest and final price."""
    paths: dict[OutcomeKey, PricePath] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                key = (
                    parse_timestamp(row["timestamp_sent"]),
                    row["symbol"].strip().upper(),
                    row["verdict"].strip().upper(),
                )
                price_path = PricePath(
                    high=Decimal(row["highest_reached"]),
                    low=Decimal(row["lowest_reached"]),
                    final=Decimal(row["final_price"]),
                )
            except (KeyError, ValueError, InvalidOperation, TypeError) as exc:
                raise ConfigError(f"{path}:{line}: bad outcome row ({exc})") from None
            paths.setdefault(key, price_path)
    return paths


def load_signals(path: Path) -> list[Signal | InvalidSignal]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [parse_record(row) for row in csv.DictReader(handle)]


def load_instruments(path: Path | None) -> dict[str, Instrument]:
    """Instrument filters in Bybit's instruments-info shape (``{"list": [...]}``)."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {raw["symbol"]: parse_instrument(raw) for raw in data["list"]}


def fallback_instrument(symbol: str, price: Decimal) -> Instrument:
    """Filters for a symbol missing from the snapshot: a tick of ~5 significant digits and a
    qty step worth 0.1–1 USDT, which is what Bybit uses for most linear perpetuals."""
    exponent = price.adjusted()
    tick = Decimal(1).scaleb(exponent - 4)
    step = Decimal(1).scaleb(-exponent - 1)
    return Instrument(
        symbol=symbol,
        tick_size=tick,
        qty_step=step,
        min_order_qty=step,
        max_order_qty=Decimal(10) ** 9,
        min_notional=Decimal(5),
    )


@dataclass(slots=True)
class _Open:
    position: Position
    exit_at: datetime
    exit_price: Decimal
    reason: CloseReason


@dataclass(frozen=True)
class ReplayResult:
    signals: int  # rows read
    unique: int  # distinct signal identities
    outcomes: Counter[str]
    trades: list[ClosedTrade]  # in close order
    stats: Stats


def replay(
    records: Iterable[Signal | InvalidSignal],
    paths: Mapping[OutcomeKey, PricePath],
    strategy: Strategy,
    instruments: Mapping[str, Instrument],
) -> ReplayResult:
    """Trade ``records`` in time order as the engine would, exiting along ``paths``."""
    records = list(records)
    limits = Limits.from_strategy(strategy)
    outcomes: Counter[str] = Counter()
    seen: set[str] = set()
    wallet = strategy.paper_balance_usdt
    open_: dict[str, _Open] = {}
    closed: list[ClosedTrade] = []

    def close_until(moment: datetime) -> None:
        nonlocal wallet
        for item in sorted(open_.values(), key=lambda o: o.exit_at):
            if item.exit_at > moment:
                break
            position = item.position
            fill = Fill(
                link_id="",
                symbol=position.symbol,
                side=position.side.opposite,
                qty=position.qty,
                price=item.exit_price,
                fee=taker_fee(position.qty, item.exit_price, strategy.fee_rate),
                at=item.exit_at,
            )
            trade = close_trade(position, fill, item.reason)
            wallet += trade.gross_pnl - trade.exit_fee
            closed.append(trade)
            del open_[position.symbol]

    for invalid in records:
        if isinstance(invalid, InvalidSignal) and invalid.id not in seen:
            seen.add(invalid.id)
            outcomes[f"invalid:{invalid.reason}"] += 1
    signals = sorted((r for r in records if isinstance(r, Signal)), key=lambda s: s.timestamp)
    for signal in signals:
        if signal.id in seen:
            continue  # the same signal twice is acted on once
        seen.add(signal.id)
        now = signal.timestamp
        close_until(now)
        outcome = _enter(signal, now, paths, strategy, limits, instruments, open_, closed, wallet)
        if isinstance(outcome, str):
            outcomes[outcome] += 1
            continue
        wallet -= outcome.position.entry_fee
        open_[signal.symbol] = outcome
        outcomes["opened"] += 1
    close_until(datetime.max.replace(tzinfo=UTC))
    trades = sorted(closed, key=lambda t: t.closed_at)
    return ReplayResult(
        signals=len(records),
        unique=len(seen),
        outcomes=outcomes,
        trades=trades,
        stats=trade_stats(trades, strategy.paper_balance_usdt),
    )


def _enter(
    signal: Signal,
    now: datetime,
    paths: Mapping[OutcomeKey, PricePath],
    strategy: Strategy,
    limits: Limits,
    instruments: Mapping[str, Instrument],
    open_: Mapping[str, _Open],
    closed: list[ClosedTrade],
    wallet: Decimal,
) -> _Open | str:
    """The engine's sequence for one signal: screen, risk, size, protect, fill."""
    reason = rules.screen(
        signal, now=now, strategy=strategy, limits=limits, open_symbols=open_.keys()
    )
    if reason is not None:
        return f"filtered:{reason}"
    day = utc_day_start(now)
    state = RiskState(
        trading_enabled=True,
        open_positions=len(open_),
        daily_net_pnl=sum((t.net_pnl for t in closed if t.closed_at >= day), Decimal(0)),
    )
    margin = rules.entry_margin(strategy, limits)
    reason = rules.risk_reason(margin, state, limits)
    if reason is not None:
        return f"rejected:{reason}"
    price_path = paths.get((signal.timestamp, signal.symbol, signal.verdict))
    if price_path is None or signal.entry_price is None:
        return "skipped:no_outcome"
    side = signal.side
    assert side is not None
    price = signal.entry_price  # the only price replay knows: no spread is simulated
    instrument = instruments.get(signal.symbol) or fallback_instrument(signal.symbol, price)
    sizing = rules.size_order(margin, limits.leverage, price, instrument)
    if isinstance(sizing, str):
        return f"rejected:{sizing}"
    stop, take = rules.protective_prices(
        side,
        price,
        sl_pct=strategy.sl_pct,
        tp_pct=strategy.tp_pct,
        leverage=limits.leverage,
        tick=instrument.tick_size,
    )
    entry = Fill(
        link_id="",
        symbol=signal.symbol,
        side=side,
        qty=sizing.qty,
        price=price,
        fee=taker_fee(sizing.qty, price, strategy.fee_rate),
        at=now,
    )
    used = sum((o.position.margin for o in open_.values()), Decimal(0))
    margin_used = sizing.notional / limits.leverage
    reason = rules.balance_reason(margin_used + entry.fee, wallet - used)
    if reason is not None:
        return f"failed:{reason}"
    exit_reason, exit_price = rules.path_exit(
        side,
        high=price_path.high,
        low=price_path.low,
        final=price_path.final,
        stop=stop,
        take=take,
    )
    expires_at = signal.timestamp + rules.signal_ttl(signal, strategy)
    position = open_position(
        signal.id,
        entry,
        leverage=limits.leverage,
        stop_loss=stop,
        take_profit=take,
        expires_at=expires_at,
    )
    # When within the TTL an SL or TP hit is not recorded, so every position is held to its
    # TTL: slots and the daily loss free up no earlier than they surely would have.
    return _Open(position, expires_at, exit_price, exit_reason)
