"""Replay: what a signal log would have made, offline, with fees on notional.

It runs the engine's own rules (screen, risk, size, SL/TP) and money code over each signal's
recorded price path (highest, lowest and final price within its TTL).
"""

from __future__ import annotations

import csv
import heapq
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trader import replay_plans, rules, sizing, take_profits, trailing
from trader.clock import utc_day_start
from trader.cooldowns import Cooldowns
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
    TrailingStop,
)
from trader.pnl import Stats, close_trade, open_position, taker_fee, trade_stats
from trader.rules import Limits, RiskState
from trader.signal_row import parse_record, parse_timestamp
from trader.strategy import Strategy


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
            except (KeyError, ValueError, InvalidOperation, TypeError, AttributeError) as exc:
                # AttributeError: a row cut short reads None for its missing fields.
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
    parts: tuple[replay_plans.Part, ...] = ()  # several take-profits: its exits, in order


class _Book:
    """The replayed account as it goes: wallet, open positions and closed trades.

    What an entry is judged on (today's net PnL, the margin in use) is kept up to date as
    trades open and close instead of being re-summed from the whole history at every signal,
    which made a long log quadratic. Each figure is the same Decimal sum, in the same order,
    that re-summing would compute, so the results are exactly those of summing afresh.
    """

    def __init__(self, wallet: Decimal, fee_rate: Decimal) -> None:
        self.wallet = wallet
        self.fee_rate = fee_rate
        self.positions: dict[str, _Open] = {}  # by symbol, in the order they opened
        self.closed: list[ClosedTrade] = []  # in close order
        # Exits due, earliest first; among equal times the earlier opened goes first.
        self._exits: list[tuple[datetime, int, str]] = []
        self._opened = 0
        self._day: datetime | None = None
        self._day_net_pnl = Decimal(0)
        self._tallied = 0  # closed trades already weighed for ``_day_net_pnl``
        self._used: Decimal | None = Decimal(0)  # margin of open positions; None: to re-sum
        self.cooldowns = Cooldowns()  # as the engine's book keeps them
        self.tp_fills: list[int] = []  # how many positions filled TP1, TP2, ... (plans)

    def open(self, item: _Open) -> None:
        position = item.position
        self.wallet -= position.entry_fee
        self.positions[position.symbol] = item
        heapq.heappush(self._exits, (item.exit_at, self._opened, position.symbol))
        self._opened += 1
        if self._used is not None:
            # The new position is the last one: re-summing would add its margin last too.
            self._used += position.margin

    def close_until(self, moment: datetime) -> None:
        """Exit every position due by ``moment``, in exit order, at its path's exit price."""
        while self._exits and self._exits[0][0] <= moment:
            _, _, symbol = heapq.heappop(self._exits)
            item = self.positions.pop(symbol)
            position = item.position
            fill = Fill(
                link_id="",
                symbol=position.symbol,
                side=position.side.opposite,
                qty=position.qty,
                price=item.exit_price,
                fee=taker_fee(position.qty, item.exit_price, self.fee_rate),
                at=item.exit_at,
            )
            if item.parts:  # one trade, the sum of its parts
                filled = sum(1 for _, _, why in item.parts if why is CloseReason.TAKE_PROFIT)
                self.tp_fills += [0] * (filled - len(self.tp_fills))
                for number in range(filled):
                    self.tp_fills[number] += 1
                fee_rate, at = self.fee_rate, item.exit_at
                trade = replay_plans.book_parts(position, item.parts, fee_rate=fee_rate, at=at)
            else:
                trade = close_trade(position, fill, item.reason)
            self.wallet += trade.gross_pnl - trade.exit_fee
            self.closed.append(trade)
            self.cooldowns.record(trade.symbol, trade.closed_at, trade.net_pnl)
            # Rounded sums do not subtract exactly: the margin in use is re-summed once, over
            # the positions still open (bounded by the open-position limit, not by history).
            self._used = None

    def daily_net_pnl(self, now: datetime) -> Decimal:
        """Net PnL of the trades closed since UTC midnight of ``now``.

        ``now`` never goes back and every trade closes by the ``now`` it is first weighed
        at, so a trade weighed today counts for no later day, and one from an earlier day
        never counts again: each closed trade is weighed once.
        """
        day = utc_day_start(now)
        if day != self._day:
            self._day, self._day_net_pnl = day, Decimal(0)
        for index in range(self._tallied, len(self.closed)):
            trade = self.closed[index]
            if trade.closed_at >= day:
                self._day_net_pnl += trade.net_pnl
        self._tallied = len(self.closed)
        return self._day_net_pnl

    def used_margin(self) -> Decimal:
        """Margin held by the open positions, summed in the order they opened."""
        if self._used is None:
            self._used = sum((o.position.margin for o in self.positions.values()), Decimal(0))
        return self._used


@dataclass(frozen=True)
class ReplayResult:
    signals: int  # rows read
    unique: int  # distinct signal identities
    outcomes: Counter[str]
    trades: list[ClosedTrade]  # in close order
    stats: Stats
    rules: tuple[str, ...] = ()  # the worst-case exit rules applied beyond SL / TP / TTL
    tp_fills: tuple[int, ...] = ()  # with several take-profits: positions that filled TP1, ...


def replay(
    records: Iterable[Signal | InvalidSignal],
    paths: Mapping[OutcomeKey, PricePath],
    strategy: Strategy,
    instruments: Mapping[str, Instrument],
) -> ReplayResult:
    """Trade ``records`` in time order as the engine would, exiting along ``paths``.

    Linear in the rows: each signal costs the same however long the history before it.
    """
    records = list(records)
    limits = Limits.from_strategy(strategy)
    outcomes: Counter[str] = Counter()
    seen: set[str] = set()
    book = _Book(strategy.paper_balance_usdt, strategy.fee_rate)
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
        book.close_until(now)
        outcome = _enter(signal, now, paths, strategy, limits, instruments, book)
        if isinstance(outcome, str):
            outcomes[outcome] += 1
            continue
        book.open(outcome)
        outcomes["opened"] += 1
    book.close_until(datetime.max.replace(tzinfo=UTC))
    trades = sorted(book.closed, key=lambda t: t.closed_at)
    return ReplayResult(
        signals=len(records),
        unique=len(seen),
        outcomes=outcomes,
        trades=trades,
        stats=trade_stats(trades, strategy.paper_balance_usdt),
        rules=replay_plans.exit_rules(strategy),
        tp_fills=tuple(book.tp_fills),
    )


def _enter(
    signal: Signal,
    now: datetime,
    paths: Mapping[OutcomeKey, PricePath],
    strategy: Strategy,
    limits: Limits,
    instruments: Mapping[str, Instrument],
    book: _Book,
) -> _Open | str:
    """The engine's sequence for one signal: screen, risk, size, protect, fill."""
    reason = rules.screen(
        signal,
        now=now,
        strategy=strategy,
        limits=limits,
        open_symbols=book.positions.keys(),
        cooling=book.cooldowns.cooling(now, limits.cooldown_minutes),
    )
    if reason is not None:
        return f"filtered:{reason}"
    state = RiskState(
        trading_enabled=True,
        open_positions=len(book.positions),
        daily_net_pnl=book.daily_net_pnl(now),
    )
    margin = sizing.entry_margin(strategy, limits)
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
    leverage = sizing.capped_leverage(limits.leverage, instrument)  # as the engine caps it
    stop, take = sizing.protective_prices(
        side,
        price,
        sl_pct=strategy.sl_pct,
        tp_pct=strategy.tp_pct,
        leverage=leverage,
        tick=instrument.tick_size,
    )
    # Sized as the engine sizes it: from the balance (the wallet) where the strategy says so.
    sized = sizing.trade_margin(
        strategy, limits, balance=book.wallet, price=price, stop=stop, leverage=leverage
    )
    if isinstance(sized, str):
        return f"rejected:{sized}"
    order = sizing.size_order(sized, leverage, price, instrument)
    if isinstance(order, str):
        return f"rejected:{order}"
    entry = Fill(
        link_id="",
        symbol=signal.symbol,
        side=side,
        qty=order.qty,
        price=price,
        fee=taker_fee(order.qty, price, strategy.fee_rate),
        at=now,
    )
    margin_used = order.notional / leverage
    reason = sizing.balance_reason(margin_used + entry.fee, book.wallet - book.used_margin())
    if reason is not None:
        return f"failed:{reason}"
    plan = trailing.plan(strategy, side, price, leverage=leverage, tick=instrument.tick_size)
    if plan is not None and plan.active_price is None:
        plan = TrailingStop(plan.distance, price)  # it trails at once: active from the entry
    exit_reason, exit_price = rules.path_exit(
        side,
        high=price_path.high,
        low=price_path.low,
        final=price_path.final,
        stop=stop,
        take=take,
        trailing=plan,
    )
    expires_at = signal.timestamp + rules.signal_ttl(signal, strategy)
    tps = take_profits.make_plan(
        strategy, side, price, order.qty, leverage=leverage, instrument=instrument, signal=signal
    )
    parts: tuple[replay_plans.Part, ...] = ()
    if tps is not None:
        path = {"high": price_path.high, "low": price_path.low, "final": price_path.final}
        parts = tuple(replay_plans.path_parts(side, tps, stop=stop, trailing=plan, **path))
        exit_reason, exit_price = parts[-1][2], parts[-1][1]
        take = tps.levels[-1].price
    position = open_position(
        signal.id,
        entry,
        leverage=leverage,
        stop_loss=stop,
        take_profit=take,
        expires_at=expires_at,
    )
    # When within the TTL an SL or TP hit is not recorded, so every position is held to its
    # TTL: slots and the daily loss free up no earlier than they surely would have.
    return _Open(position, expires_at, exit_price, exit_reason, parts)
