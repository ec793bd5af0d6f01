"""Filters, risk limits and sizing: the pure trading rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader import rules, sizing
from trader.models import CloseReason, Instrument, Side, Signal
from trader.rules import Limits, RiskState
from trader.strategy import Strategy

NOW = datetime(2025, 10, 19, 12, 0, tzinfo=UTC)
STRATEGY = Strategy(
    leverage=50,
    sl_pct=Decimal(40),
    tp_pct=Decimal(75),
    top_coins=frozenset({"SOLUSDT", "BTCUSDT"}),
    excluded_coins=frozenset({"YFIUSDT"}),
)
LIMITS = Limits.from_strategy(STRATEGY)
SOL = Instrument(
    symbol="SOLUSDT",
    tick_size=Decimal("0.01"),
    qty_step=Decimal("0.1"),
    min_order_qty=Decimal("0.1"),
    max_order_qty=Decimal(80000),
    min_notional=Decimal(5),
)


def signal(**changes: object) -> Signal:
    base = Signal(
        id="s1",
        timestamp=NOW - timedelta(seconds=5),
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal("0.8"),
        entry_price=Decimal(190),
        ttl_minutes=15,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def screen(sig: Signal, open_symbols: tuple[str, ...] = ()) -> str | None:
    return rules.screen(
        sig, now=NOW, strategy=STRATEGY, limits=LIMITS, open_symbols=set(open_symbols)
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"verdict": "NEUTRAL"}, "verdict"),
        ({"timestamp": NOW - timedelta(seconds=121)}, "stale"),
        ({"timestamp": NOW - timedelta(minutes=2), "ttl_minutes": 1}, "stale"),
        ({"symbol": "YFIUSDT"}, "excluded_coin"),
        ({"symbol": "ETHUSDT"}, "not_in_top_coins"),
        ({"confidence": Decimal("0.49")}, "low_confidence"),
        ({"confidence": Decimal("0.5")}, None),
    ],
)
def test_screen_gives_the_first_reason_to_skip(changes: dict[str, object], reason: str) -> None:
    assert screen(signal(**changes)) == reason


def test_a_symbol_with_a_position_or_an_entry_in_flight_is_already_open() -> None:
    assert screen(signal(), open_symbols=("SOLUSDT",)) == "already_open"


def test_empty_whitelist_means_any_coin() -> None:
    open_strategy = replace(STRATEGY, top_coins=frozenset())
    reason = rules.screen(
        signal(symbol="LINKUSDT"), now=NOW, strategy=open_strategy, limits=LIMITS, open_symbols=()
    )
    assert reason is None


def test_signal_from_the_future_is_not_stale() -> None:
    assert screen(signal(timestamp=NOW + timedelta(seconds=30))) is None


@pytest.mark.parametrize(
    ("state", "margin", "reason"),
    [
        (RiskState(True, 0, Decimal(0)), Decimal(100), None),
        (RiskState(False, 0, Decimal(0)), Decimal(100), "trading_disabled"),
        (RiskState(True, 15, Decimal(0)), Decimal(100), "max_open_positions"),
        (RiskState(True, 14, Decimal(0)), Decimal(100), None),
        (RiskState(True, 0, Decimal(-500)), Decimal(100), "daily_loss_limit"),
        (RiskState(True, 0, Decimal("-499.99")), Decimal(100), None),
        (RiskState(True, 0, Decimal(900)), Decimal(100), None),
        (RiskState(True, 0, Decimal(0)), Decimal("100.01"), "position_size"),
    ],
)
def test_risk_reason(state: RiskState, margin: Decimal, reason: str | None) -> None:
    assert rules.risk_reason(margin, state, LIMITS) == reason


def test_margin_is_position_size_capped_by_the_limit() -> None:
    big = replace(STRATEGY, position_size_usdt=Decimal(250))
    assert sizing.entry_margin(big, Limits.from_strategy(big)) == Decimal(100)
    small = replace(STRATEGY, position_size_usdt=Decimal(40))
    assert sizing.entry_margin(small, Limits.from_strategy(small)) == Decimal(40)


def test_the_margin_set_from_chat_is_traded_and_still_capped() -> None:
    limits = LIMITS.with_overrides({"margin": "40"})
    assert sizing.entry_margin(STRATEGY, limits) == Decimal(40)
    assert sizing.entry_margin(STRATEGY, LIMITS.with_overrides({"margin": "500"})) == Decimal(100)


def test_sizing_for_sol_at_50x() -> None:
    order = sizing.size_order(Decimal(100), 50, Decimal("190.37"), SOL)
    assert isinstance(order, sizing.Sizing)
    assert order.qty == Decimal("26.2")  # 5000 / 190.37 = 26.26… rounded down
    assert order.notional <= Decimal(5000)


def test_sizing_never_exceeds_the_max_order_qty() -> None:
    order = sizing.size_order(Decimal(1000), 100, Decimal("0.01"), SOL)
    assert isinstance(order, sizing.Sizing)
    assert order.qty == SOL.max_order_qty


def test_sizing_rejects_below_minimums() -> None:
    btc = replace(SOL, symbol="BTCUSDT", qty_step=Decimal("0.001"), min_order_qty=Decimal("0.001"))
    assert sizing.size_order(Decimal(1), 1, Decimal(110000), btc) == "below_min_qty"
    assert sizing.size_order(Decimal(4), 1, Decimal(1), SOL) == "below_min_notional"


def test_protective_prices_from_percent_of_margin() -> None:
    stop, take = sizing.protective_prices(
        Side.BUY,
        Decimal(100),
        sl_pct=Decimal(40),
        tp_pct=Decimal(75),
        leverage=50,
        tick=Decimal("0.01"),
    )
    assert (stop, take) == (Decimal("99.20"), Decimal("101.50"))  # 0.8% and 1.5%
    stop, take = sizing.protective_prices(
        Side.SELL,
        Decimal(100),
        sl_pct=Decimal(40),
        tp_pct=Decimal(75),
        leverage=50,
        tick=Decimal("0.01"),
    )
    assert (stop, take) == (Decimal("100.80"), Decimal("98.50"))


def test_path_exit_checks_stop_before_take() -> None:
    both = rules.path_exit(
        Side.BUY,
        high=Decimal(110),
        low=Decimal(90),
        final=Decimal(100),
        stop=Decimal(95),
        take=Decimal(105),
    )
    assert both == (CloseReason.STOP_LOSS, Decimal(95))
    take = rules.path_exit(
        Side.SELL,
        high=Decimal(101),
        low=Decimal(90),
        final=Decimal(99),
        stop=Decimal(102),
        take=Decimal(95),
    )
    assert take == (CloseReason.TAKE_PROFIT, Decimal(95))
    neither = rules.path_exit(
        Side.SELL,
        high=Decimal(101),
        low=Decimal(99),
        final=Decimal("99.5"),
        stop=Decimal(102),
        take=Decimal(95),
    )
    assert neither == (CloseReason.TTL, Decimal("99.5"))


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("max_positions", "0", "between 1 and 1000"),
        ("max_positions", "2.5", "whole number"),
        ("daily_loss", "-5", "positive"),
        ("daily_loss", "abc", "needs a number"),
        ("min_confidence", "1.5", "between 0 and 1"),
        ("leverage", "200", "between 1 and 125"),
        ("position_size", "nan", "finite"),
        ("bogus", "1", "unknown limit"),
        ("daily_loss", "1e9999", "like 250"),  # finite for Decimal, and the stop would be off
        ("daily_loss", "1E3", "like 250"),
        ("daily_loss", "100000000", "at most 10,000,000"),
        ("position_size", "١٢", "like 250"),  # Arabic-Indic digits
        ("max_positions", "５", "like 250"),  # a full-width digit
        ("leverage", "٥", "like 250"),
    ],
)
def test_bad_limit_values_are_refused_with_a_clear_message(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rules.parse_limit(name, raw)


def test_a_long_bad_value_is_quoted_back_short() -> None:
    with pytest.raises(ValueError, match="needs a number") as refused:
        rules.parse_limit("daily_loss", "9" * 20 + "x" * 5000)
    assert len(str(refused.value)) < 120  # Telegram would refuse a 5,000-character reply


@pytest.mark.parametrize(
    ("typed", "symbol"),
    [
        ("doge", "DOGEUSDT"),
        ("DOGEUSDT", "DOGEUSDT"),
        (" SolUsdt ", "SOLUSDT"),
        ("1000pepe", "1000PEPEUSDT"),
    ],
)
def test_a_symbol_may_be_typed_without_its_quote_coin(typed: str, symbol: str) -> None:
    assert rules.full_symbol(typed) == symbol


def test_limit_overrides_apply_and_bad_stored_values_fall_back() -> None:
    limits = LIMITS.with_overrides({"max_positions": "3", "daily_loss": "junk", "x": "1"})
    assert limits.max_open_positions == 3
    assert limits.max_daily_loss_usdt == LIMITS.max_daily_loss_usdt


# --- properties -----------------------------------------------------------------------------

steps = st.sampled_from([Decimal("0.001"), Decimal("0.01"), Decimal("0.1"), Decimal(1)])
ticks = st.sampled_from([Decimal("0.00001"), Decimal("0.0001"), Decimal("0.01"), Decimal("0.1")])
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(150000), places=5)
margins = st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2)
leverages = st.integers(min_value=1, max_value=125)


@settings(max_examples=300)
@given(margin=margins, leverage=leverages, price=prices, step=steps)
def test_qty_is_a_multiple_of_step_and_never_above_the_notional(
    margin: Decimal, leverage: int, price: Decimal, step: Decimal
) -> None:
    instrument = replace(
        SOL,
        qty_step=step,
        min_order_qty=step,
        min_notional=Decimal(0),
        max_order_qty=Decimal(10**9),
    )
    order = sizing.size_order(margin, leverage, price, instrument)
    if isinstance(order, str):
        assert order == "below_min_qty"
        assert margin * leverage / price < step
        return
    assert order.qty % step == 0
    assert order.qty * price <= margin * leverage
    # Rounded down by less than one step.
    assert (order.qty + step) * price > margin * leverage


@settings(max_examples=300)
@given(
    side=st.sampled_from(list(Side)),
    tick=ticks,
    ticks_in_price=st.integers(min_value=100, max_value=10**7),
    sl_pct=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(99), places=1),
    tp_pct=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(500), places=1),
    leverage=leverages,
)
def test_stop_and_take_are_on_the_right_side_and_on_the_tick(
    side: Side,
    tick: Decimal,
    ticks_in_price: int,
    sl_pct: Decimal,
    tp_pct: Decimal,
    leverage: int,
) -> None:
    entry = tick * ticks_in_price
    stop, take = sizing.protective_prices(
        side, entry, sl_pct=sl_pct, tp_pct=tp_pct, leverage=leverage, tick=tick
    )
    assert stop % tick == 0
    assert take % tick == 0
    assert stop > 0
    assert take > 0
    if side is Side.BUY:
        assert stop < entry < take
    else:
        assert take < entry < stop
    # The entry price itself triggers neither.
    assert rules.exit_trigger(side, entry, stop, take) is None


def test_a_signal_from_far_in_the_future_is_stale() -> None:
    assert screen(signal(timestamp=NOW + timedelta(seconds=121))) == "stale"


def test_a_limit_stored_with_an_exponent_is_read_back_not_dropped() -> None:
    limits = LIMITS.with_overrides({"daily_loss": "1E+3", "min_confidence": "1E-7"})
    assert limits.max_daily_loss_usdt == Decimal(1000)
    assert limits.min_confidence == Decimal("0.0000001")


@pytest.mark.parametrize(
    ("entry", "market", "moved"),
    [
        ("2.479", "2.479", False),
        ("2.479", "2.5037", False),  # 0.996%: within 1%
        ("2.479", "2.5040", True),
        ("1.0", "2.479", True),  # the row that traded in a session
        (None, "2.479", False),  # no entry price in the row: nothing to hold it to
    ],
)
def test_a_signal_far_from_the_market_has_moved(
    entry: str | None, market: str, moved: bool
) -> None:
    signal = Signal(
        id="s",
        timestamp=NOW,
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal(1),
        entry_price=None if entry is None else Decimal(entry),
    )
    assert rules.price_moved(signal, Decimal(market), STRATEGY) is moved


# --- sizing from the balance ---------------------------------------------------------------


def test_margin_as_a_percent_of_the_balance_is_capped() -> None:
    pct = replace(STRATEGY, position_size_pct=Decimal(5))
    big_cap = replace(LIMITS, max_position_size_usdt=Decimal(1000))
    kwargs = {"price": Decimal(150), "stop": Decimal("148.8"), "leverage": 50}
    assert sizing.trade_margin(pct, big_cap, balance=Decimal(1000), **kwargs) == Decimal(50)
    assert sizing.trade_margin(pct, LIMITS, balance=Decimal(10_000), **kwargs) == Decimal(100)
    assert sizing.trade_margin(pct, LIMITS, balance=None, **kwargs) == "balance_unknown"
    # Without either key, as before: position_size_usdt (or /limits margin) under its cap.
    assert sizing.trade_margin(STRATEGY, LIMITS, balance=None, **kwargs) == Decimal(100)
    assert sizing.entry_margin(pct, LIMITS) == LIMITS.max_position_size_usdt


@settings(max_examples=300, deadline=None)
@given(
    balance=st.decimals(min_value=50, max_value=1_000_000, places=2),
    risk_pct=st.decimals(min_value="0.1", max_value=5, places=2),
    price=st.decimals(min_value=1, max_value=100_000, places=2),
    sl_pct=st.decimals(min_value=1, max_value=90, places=1),
    leverage=st.integers(min_value=1, max_value=100),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_a_stop_loss_hit_loses_at_most_the_risk_and_one_step_more_would_exceed_it(
    balance: Decimal,
    risk_pct: Decimal,
    price: Decimal,
    sl_pct: Decimal,
    leverage: int,
    side: Side,
) -> None:
    strategy = replace(STRATEGY, risk_per_trade_pct=risk_pct, sl_pct=sl_pct)
    limits = replace(LIMITS, max_position_size_usdt=Decimal(10_000_000))  # no cap here
    instrument = replace(
        SOL, tick_size=Decimal("0.01"), qty_step=Decimal("0.001"), max_order_qty=Decimal(10**12)
    )
    stop, _ = sizing.protective_prices(
        side, price, sl_pct=sl_pct, tp_pct=Decimal(50), leverage=leverage, tick=Decimal("0.01")
    )
    margin = sizing.trade_margin(
        strategy, limits, balance=balance, price=price, stop=stop, leverage=leverage
    )
    assert isinstance(margin, Decimal)
    order = sizing.size_order(margin, leverage, price, instrument)
    if isinstance(order, str):
        return  # too small for the venue: refused, nothing risked

    def loss(qty: Decimal) -> Decimal:
        fees = strategy.fee_rate * qty * (price + stop)  # taker fee in and out, on notional
        return qty * abs(price - stop) + fees

    risk = balance * risk_pct / 100
    assert loss(order.qty) <= risk * (1 + Decimal("1e-20"))
    assert loss(order.qty + instrument.qty_step) > risk * (1 - Decimal("1e-20"))
