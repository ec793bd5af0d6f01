"""Replay at scale: the running totals give exactly what re-summing the history gives, and the
time grows linearly with the rows however many trades have closed before."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trader import rules, sizing
from trader.clock import utc_day_start
from trader.models import (
    ClosedTrade,
    CloseReason,
    Fill,
    Instrument,
    InvalidSignal,
    Position,
    Signal,
)
from trader.pnl import close_trade, open_position, taker_fee, trade_stats
from trader.replay import PricePath, ReplayResult, fallback_instrument, replay
from trader.rules import Limits, RiskState
from trader.strategy import Strategy

T0 = datetime(2025, 10, 19, 22, 30, tzinfo=UTC)  # near midnight: runs cross UTC days
SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT")
Held = tuple[Position, datetime, Decimal, CloseReason]  # position, exit time, price, why
Paths = dict[tuple[datetime, str, str], PricePath]


def reference_replay(
    records: Sequence[Signal | InvalidSignal],
    paths: Mapping[tuple[datetime, str, str], PricePath],
    strategy: Strategy,
    instruments: Mapping[str, Instrument],
) -> ReplayResult:
    """The straightforward replay (the algorithm before issue 11): every figure an entry is
    judged on is summed afresh from the open positions and the whole closed history."""
    limits = Limits.from_strategy(strategy)
    outcomes: Counter[str] = Counter()
    seen: set[str] = set()
    wallet = strategy.paper_balance_usdt
    held: dict[str, Held] = {}
    closed: list[ClosedTrade] = []

    def close_until(moment: datetime) -> None:
        nonlocal wallet
        for position, exit_at, price, reason in sorted(held.values(), key=lambda h: h[1]):
            if exit_at > moment:
                break
            fee = taker_fee(position.qty, price, strategy.fee_rate)
            fill = Fill(
                "", position.symbol, position.side.opposite, position.qty, price, fee, exit_at
            )
            trade = close_trade(position, fill, reason)
            wallet += trade.gross_pnl - trade.exit_fee
            closed.append(trade)
            del held[position.symbol]

    def enter(signal: Signal) -> Held | str:
        now = signal.timestamp
        reason = rules.screen(
            signal, now=now, strategy=strategy, limits=limits, open_symbols=held.keys()
        )
        if reason is not None:
            return f"filtered:{reason}"
        day = utc_day_start(now)
        today = sum((t.net_pnl for t in closed if t.closed_at >= day), Decimal(0))
        margin = sizing.entry_margin(strategy, limits)
        reason = rules.risk_reason(margin, RiskState(True, len(held), today), limits)
        if reason is not None:
            return f"rejected:{reason}"
        path = paths.get((signal.timestamp, signal.symbol, signal.verdict))
        if path is None or signal.entry_price is None or signal.side is None:
            return "skipped:no_outcome"
        price = signal.entry_price
        instrument = instruments.get(signal.symbol) or fallback_instrument(signal.symbol, price)
        leverage = sizing.capped_leverage(limits.leverage, instrument)
        order = sizing.size_order(margin, leverage, price, instrument)
        if isinstance(order, str):
            return f"rejected:{order}"
        stop, take = sizing.protective_prices(
            signal.side,
            price,
            sl_pct=strategy.sl_pct,
            tp_pct=strategy.tp_pct,
            leverage=leverage,
            tick=instrument.tick_size,
        )
        fee = taker_fee(order.qty, price, strategy.fee_rate)
        entry = Fill("", signal.symbol, signal.side, order.qty, price, fee, now)
        used = sum((h[0].margin for h in held.values()), Decimal(0))
        required = order.notional / leverage + entry.fee
        reason = sizing.balance_reason(required, wallet - used)
        if reason is not None:
            return f"failed:{reason}"
        why, exit_price = rules.path_exit(
            signal.side, high=path.high, low=path.low, final=path.final, stop=stop, take=take
        )
        expires_at = now + rules.signal_ttl(signal, strategy)
        position = open_position(
            signal.id,
            entry,
            leverage=leverage,
            stop_loss=stop,
            take_profit=take,
            expires_at=expires_at,
        )
        return position, expires_at, exit_price, why

    for record in records:
        if isinstance(record, InvalidSignal) and record.id not in seen:
            seen.add(record.id)
            outcomes[f"invalid:{record.reason}"] += 1
    for signal in sorted((r for r in records if isinstance(r, Signal)), key=lambda s: s.timestamp):
        if signal.id in seen:
            continue
        seen.add(signal.id)
        close_until(signal.timestamp)
        outcome = enter(signal)
        if isinstance(outcome, str):
            outcomes[outcome] += 1
            continue
        wallet -= outcome[0].entry_fee
        held[signal.symbol] = outcome
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


# --- random logs ---------------------------------------------------------------------------

# Prices and amounts with many digits, and leverages that do not divide evenly, so that sums
# of margins and PnL round at Decimal's 28 digits and any change of summing order would show.
prices = st.decimals(Decimal("0.0001"), Decimal(100_000), allow_nan=False, allow_infinity=False)
amounts = st.decimals(Decimal(1), Decimal(2_000), allow_nan=False, allow_infinity=False)
moves = st.sampled_from([Decimal(f) for f in ("0.9", "0.97", "0.995", "1", "1.003", "1.02", "1.1")])

strategies = st.builds(
    Strategy,
    leverage=st.sampled_from([1, 3, 7, 10, 50, 125]),
    sl_pct=st.decimals(1, 100, places=2),
    tp_pct=st.decimals(1, 200, places=2),
    top_coins=st.sampled_from([frozenset(), frozenset(), frozenset(SYMBOLS[:3])]),
    excluded_coins=st.sampled_from([frozenset(), frozenset(SYMBOLS[3:])]),
    fee_rate=st.sampled_from([Decimal(0), Decimal("0.0002"), Decimal("0.00055")]),
    position_size_usdt=amounts,
    max_position_size_usdt=amounts,
    min_confidence=st.sampled_from([Decimal(0), Decimal(0), Decimal("0.5")]),
    max_open_positions=st.integers(1, 5),
    max_daily_loss_usdt=st.decimals(Decimal("0.01"), Decimal(100), places=2),
    default_ttl_minutes=st.integers(1, 90),
    paper_balance_usdt=st.one_of(amounts, st.just(Decimal(10) ** 9)),
)

instruments = st.builds(
    Instrument,
    symbol=st.just(""),  # set per symbol below
    tick_size=st.sampled_from([Decimal("0.0001"), Decimal("0.01"), Decimal("0.5")]),
    qty_step=st.sampled_from([Decimal("0.00001"), Decimal("0.001"), Decimal("0.1")]),
    min_order_qty=st.sampled_from([Decimal("0.00001"), Decimal("0.1")]),
    max_order_qty=st.sampled_from([Decimal(50), Decimal(10**6)]),
    min_notional=st.sampled_from([Decimal(0), Decimal(5)]),
)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[Signal | InvalidSignal], Paths]:
    """Signals in shuffled order, some repeated or invalid, with gaps from none to a day."""
    records: list[Signal | InvalidSignal] = []
    paths: Paths = {}
    at = T0
    for _ in range(draw(st.integers(0, 60), label="rows")):
        at += timedelta(seconds=draw(st.sampled_from([0, 0, 1, 60, 300, 900, 3600, 3600, 86_400])))
        ident = str(draw(st.integers(0, 30)))
        if draw(st.integers(0, 9)) == 0:
            records.append(InvalidSignal(id=ident, reason="bad_symbol"))
            continue
        signal = Signal(
            id=ident,
            timestamp=at,
            symbol=draw(st.sampled_from(SYMBOLS)),
            verdict=draw(st.sampled_from(["BUY", "SELL", "BUY", "SELL", "BUY", "NEUTRAL"])),
            confidence=draw(st.decimals(0, 1, places=2)),
            entry_price=draw(st.one_of(prices, prices, prices, prices, prices, st.none())),
            ttl_minutes=draw(st.one_of(st.none(), st.sampled_from([5, 15]), st.integers(1, 120))),
        )
        records.append(signal)
        if signal.entry_price is not None and draw(st.integers(0, 9)):
            high, low, final = (signal.entry_price * draw(moves) for _ in range(3))
            key = (signal.timestamp, signal.symbol, signal.verdict)
            paths[key] = PricePath(max(high, low, final), min(high, low, final), final)
    return draw(st.permutations(records)), paths


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log=logs(),
    strategy=strategies,
    filters=st.dictionaries(st.sampled_from(SYMBOLS), instruments, max_size=2),
)
def test_replay_is_exactly_the_straightforward_replay(
    log: tuple[list[Signal | InvalidSignal], Paths],
    strategy: Strategy,
    filters: dict[str, Instrument],
) -> None:
    records, paths = log
    known = {symbol: replace(instrument, symbol=symbol) for symbol, instrument in filters.items()}
    result = replay(records, paths, strategy, known)
    expected = reference_replay(records, paths, strategy, known)
    assert result == expected
    assert repr(result) == repr(expected)  # the very same Decimals, exponent and all


# --- linear time ---------------------------------------------------------------------------


def busy_log(rows: int) -> tuple[list[Signal | InvalidSignal], Paths]:
    """A signal every 2 s over 40 symbols, each held a minute, all within one UTC day: nearly
    every signal opens a trade, so today's closed history grows with the rows."""
    records: list[Signal | InvalidSignal] = []
    paths: Paths = {}
    midnight = utc_day_start(T0)
    for i in range(rows):
        at = midnight + timedelta(seconds=2 * i)
        symbol = f"S{i % 40}USDT"
        price = Decimal(100) + i % 7
        records.append(Signal(str(i), at, symbol, "BUY", Decimal("0.9"), price, ttl_minutes=1))
        paths[(at, symbol, "BUY")] = PricePath(price + 1, price - 1, price - i % 3)
    return records, paths


def replay_seconds(rows: int) -> float:
    """Best of three runs, in CPU time (others' work on the machine does not count)."""
    records, paths = busy_log(rows)
    strategy = Strategy(
        paper_balance_usdt=Decimal(10) ** 12,
        max_open_positions=1000,
        max_daily_loss_usdt=Decimal(10) ** 9,
    )
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        result = replay(records, paths, strategy, {})
        best = min(best, time.process_time() - started)
    assert result.outcomes["opened"] > rows * 0.9  # the history really grows
    return best


def test_replay_time_grows_linearly_with_the_rows() -> None:
    # Re-summing the closed history at every entry made 2x the rows cost ~4x the time here.
    small, large = replay_seconds(6_000), replay_seconds(12_000)
    assert large < 3 * small, f"6,000 rows {small:.3f} s, 12,000 rows {large:.3f} s"
