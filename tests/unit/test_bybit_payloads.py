"""Every recorded Bybit payload in ``shared/bybit/payloads/`` goes through the product's own
parser, as it was recorded, and gives exactly what the table below says: our types with
Bybit's exact figures, or nothing (spot, option, funding, an empty push) without an error.

A file the table does not claim fails the test, so a new recording gets a row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit._websocket_stream import _WebSocketManager
from pybit.exceptions import FailedRequestError, InvalidRequestError

from trader.errors import (
    Banned,
    ExchangeError,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    Retryable,
)
from trader.exchange import bybit_stream, bybit_wire
from trader.exchange.base import VenuePosition
from trader.exchange.bybit_messages import (
    Execution,
    OrderUpdate,
    close_reason,
    parse_closed_pnl,
    parse_execution,
    parse_order,
    parse_permissions,
    parse_position,
    parse_wallet,
    result_of,
    rows_of,
    usdt_balance,
)
from trader.exchange.market import _first_of_list, parse_instrument, parse_ticker
from trader.models import CloseReason, Instrument, Side, Ticker

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "bybit" / "payloads"
pytestmark = pytest.mark.skipif(
    not PAYLOADS.is_dir(),
    reason=f"no recorded Bybit payloads at {PAYLOADS} (clone shared/ beside the repository)",
)

D = Decimal
AT = datetime(2026, 1, 1, tzinfo=UTC)  # when a ticker is read: the caller's clock
Check = Callable[[Any], None]


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# --- what each kind of payload is checked with ---------------------------------------------


def rows(parse: Callable[[Mapping[str, Any]], Any], *expected: Any) -> Check:
    """A REST list: each row parsed on its own (a malformed one raises here), in order."""
    return lambda payload: _same([parse(row) for row in rows_of(payload)], list(expected))


def pushed(parse: Callable[[Mapping[str, Any]], Any], *expected: Any) -> Check:
    """A private stream push: each row of its ``data`` parsed on its own, in order."""
    return lambda payload: _same([parse(row) for row in payload["data"]], list(expected))


def _same(parsed: list[Any], expected: list[Any]) -> None:
    assert parsed == expected


def ticker(expected: Ticker, *, push: bool = False) -> Check:
    def check(payload: Any) -> None:
        raw = payload["data"] if push else _first_of_list(payload, "tickers")
        assert raw is not None
        assert parse_ticker(raw, AT) == expected

    return check


def instruments(*expected: Instrument) -> Check:
    def check(payload: Any) -> None:
        first = _first_of_list(payload, "instruments-info")
        assert first is not None
        parsed = [parse_instrument(raw) for raw in rows_of(payload)]
        assert parsed == list(expected)
        assert parsed[0] == parse_instrument(first)
        assert all(i.is_usdt_perpetual for i in parsed)

    return check


def wallet(expected: Decimal) -> Check:
    return lambda payload: _same([parse_wallet(result_of(payload))], [expected])


def closed_pnl(order_id: str, expected: Decimal) -> Check:
    def check(payload: Any) -> None:
        assert parse_closed_pnl(rows_of(payload), order_id) == expected
        assert parse_closed_pnl(rows_of(payload), "another-order") is None

    return check


def key_refused(expected: str) -> Check:
    def check(payload: Any) -> None:
        key = parse_permissions(result_of(payload))
        assert key.read_only
        assert key.can_trade_contracts
        assert key.refusal() == expected

    return check


def acknowledged(expected: Mapping[str, Any]) -> Check:
    """An answer the adapter reads nothing from but success (its fills come by orderLinkId)."""
    return lambda payload: _same([dict(result_of(payload))], [dict(expected)])


def answered(accepted: bool, message: str | None) -> Check:
    """A login or subscription answer, as ``bybit_stream`` reports it to the private stream."""

    def check(payload: Any) -> None:
        said: list[tuple[bool, str]] = []
        bybit_stream._answer(lambda ok, why: said.append((ok, why)), payload)
        assert [ok for ok, _ in said] == [accepted]
        if message is not None:
            assert said[0][1] == message

    return check


# --- Bybit's error answers through bybit_wire's taxonomy -------------------------------------

# retCode → (class for an order, class for a read); a code not listed is a plain refusal.
ERROR_CLASSES: dict[int, tuple[type[ExchangeError], type[ExchangeError]]] = {
    -1: (OutcomeUnknown, Retryable),  # "request expired": an order may have gone through
    429: (RateLimited, RateLimited),  # "high server load, please retry": nothing was done
    10000: (OutcomeUnknown, Retryable),  # server timeout
    10002: (Retryable, Retryable),  # outside recv_window: refused before anything happened
    10006: (RateLimited, RateLimited),
    10016: (OutcomeUnknown, Retryable),  # server error
    10018: (RateLimited, RateLimited),
}
REFUSED = (OrderRejected, ExchangeError)
# HTTP status → class, for an order and a read alike.
HTTP_CLASSES: dict[int, type[ExchangeError]] = {403: Banned, 429: RateLimited}


def _classified(error: Exception, order: bool) -> ExchangeError:
    def call() -> None:
        raise error

    with pytest.raises(ExchangeError) as caught:
        asyncio.run(bybit_wire._call_once("order" if order else "read", call, order, {}))
    assert "REQUEST-LINE" not in str(caught.value)  # pybit's request line never leaks
    return caught.value


def _answer_error(code: int, message: str) -> InvalidRequestError:
    # What pybit raises for a retCode other than 0.
    return InvalidRequestError(
        request="POST /v5/order/create: REQUEST-LINE",
        message=message,
        status_code=code,
        time="0",
        resp_headers={},
    )


def _check_code(code: int, message: str) -> None:
    for order, expected in zip((True, False), ERROR_CLASSES.get(code, REFUSED), strict=True):
        error = _classified(_answer_error(code, message), order)
        assert error.code == code
        assert message[:50] in str(error)
        assert type(error) is expected, (code, order)


def error_answers(payload: Any) -> None:
    assert payload, "no answers recorded"
    for answer in payload:
        _check_code(int(answer["retCode"]), str(answer["retMsg"]))


def error_table(payload: Any) -> None:
    for code, row in payload["uta"].items():
        _check_code(int(code), str(row["retMsg_doc"]))
    for status in payload["http"]:
        for order in (True, False):
            failed = FailedRequestError(
                request="GET /x: REQUEST-LINE",
                message="HTTP status code is not 200.",
                status_code=int(status),
                time="0",
                resp_headers={},
            )
            error = _classified(failed, order)
            assert type(error) is HTTP_CLASSES.get(int(status), ExchangeError), (status, order)


def rate_limit_headers(payload: Any) -> None:
    # Read from the header: its reset (2024) is past, so no wait; without it, no figure.
    assert bybit_wire._reset_in(payload["headers"]) == 0.0
    assert bybit_wire._reset_in({}) is None


def request_tables(payload: Any) -> None:
    assert "docs/v5/position/position.mdx" in payload
    assert all(isinstance(params, Mapping) for params in payload.values())


def pong(payload: Any) -> None:
    assert _WebSocketManager._is_custom_pong(payload)  # pybit drops it before our callbacks


# --- expected values, read off the payloads ------------------------------------------------


def trade(ids: str, link: str, symbol: str, side: Side, qty: str, price: str, fee: str,
          closed: str, at: int, kind: str = "Trade", create: str = "") -> Execution:  # fmt: skip
    """An execution; ``ids`` is "execId orderId"; stopOrderType is UNKNOWN in all of them."""
    exec_id, order_id = ids.split()
    return Execution(exec_id, order_id, link, symbol, side, D(qty), D(price), D(fee), D(closed),
                     "UNKNOWN", ms(at), kind, create)  # fmt: skip


def order(
    order_id: str, status: str, filled: str, kind: str, left: str, **more: Any
) -> OrderUpdate:
    """An order row as Bybit's REST lists give it (no closedPnl there), placed by a user."""
    return OrderUpdate(**{
        "order_id": order_id, "link_id": "", "symbol": "BTCUSDT", "status": status,
        "cum_exec_qty": D(filled), "closed_pnl": None, "reject_reason": "EC_NoError",
        "create_type": "CreateByUser", "order_type": kind, "cancel_type": "UNKNOWN",
        "leaves_qty": D(left), "cum_exec_fee": D(0), **more,
    })  # fmt: skip


def stop_order(order_id: str, link_id: str, stop: str, trigger: str) -> OrderUpdate:
    return order(order_id, "Untriggered", "0", "Market", "0.500", link_id=link_id,
                 reject_reason="", reduce_only=True, stop_order_type=stop, qty=D("0.500"),
                 trigger_price=D(trigger))  # fmt: skip


def held(symbol: str, side: Side | None, qty: str, entry: str, leverage: str,
         opened: int | None, updated: int, created: int) -> VenuePosition:  # fmt: skip
    """A position without SL/TP: opened ``opened`` (openTime), first created ``created``."""
    return VenuePosition(symbol, side, D(qty), D(entry), D(leverage), None, None,
                         ms(opened) if opened else None, ms(updated), ms(created))  # fmt: skip


BUY, SELL = Side.BUY, Side.SELL
PUSHED_TRADE = trade("0ab1bdf7-4219-438b-b30a-32ec863018f7 9aac161b-8ed6-450d-9cab-c5cc67c21784",
                     "", "BTCUSDT", SELL, "0.5", "95900.1", "26.3725275", "0.5", 1746270400353,
                     create="CreateByUser")  # fmt: skip
ADL = trade("0ab1bdf7-4219-438b-b30a-32ec863018f8 9aac161b-8ed6-450d-9cab-c5cc67c21785", "",
            "BTCUSDT", SELL, "0.5", "95850.0", "0", "0.5", 1746270400398, "AdlTrade")  # fmt: skip


def adl(payload: Any) -> None:
    pushed(parse_execution, ADL)(payload)
    assert close_reason(ADL) is CloseReason.ADL


# --- the table: every file, the parser that reads it, and what it gives ----------------------

REFUSED_KEY = (
    "BYBIT_API_KEY can transfer funds out (Wallet: AccountTransfer, Wallet: SubMemberTransfer);"
    " can move funds out (Earn: Earn, FiatP2P: FiatP2POrder, FiatP2P: Advertising, {}"
    "FiatConvertBroker: FiatConvertBrokerOrder, FiatBitPay: FaitPayOrder, BitCard: BitCard)"
)
BTCUSDT = Instrument("BTCUSDT", D("0.10"), D("0.001"), D("0.001"), D("500.000"), D(5), D(100))
ETHUSDT = Instrument("ETHUSDT", D("0.01"), D("0.01"), D("0.01"), D("500.000"), D(5), D(100))

CASES: dict[str, tuple[str, Check]] = {
    "SOURCES.md": ("not a payload: where each file came from", lambda _: None),
    # wallet: USDT walletBalance − spotBorrow (none of these borrowed USDT)
    "ccxt_account-wallet-balance_unified_response.json": (
        "parse_wallet: USDT 3322.25896609 (no spotBorrow field; borrowAmount 0)",
        wallet(D("3322.25896609"))),
    "docs_account-wallet-balance_response.json": (
        "parse_wallet: 0, Bybit lists no USDT (only BTC)", wallet(D(0))),
    "nautilus_account-wallet-balance_response.json": (
        "parse_wallet: USDT 1000.50, spotBorrow 0 (ETH's borrowing is not USDT's)",
        wallet(D("1000.50"))),
    "nautilus-py_account-wallet-balance_unified_item.json": (
        "usdt_balance of one account item: 10002.26016244",
        lambda item: _same([usdt_balance(item)], [D("10002.26016244")])),
    # executions
    "ccxt_execution-list_linear-funding_response.json": (
        "parse_execution: ignored, execType Funding moves money, not the position",
        rows(parse_execution, None)),
    "ccxt_execution-list_linear-trade_response.json": (
        "parse_execution: one Trade, createType CreateByUser",
        rows(parse_execution, trade(
            "751c8dba-bdeb-5d0c-9dd3-dda6bf98cdaf c18b72e4-1bf7-4c30-9b99-ba3274066029", "",
            "LTCUSDT", BUY, "0.1", "85.11", "0.00468105", "0", 1710762918390,
            create="CreateByUser"))),
    "docs_execution-list_response.json": (
        "parse_execution: one Trade of a USDC perpetual, closedSize '' as 0",
        rows(parse_execution, trade(
            "e0cbe81d-0f18-5866-9415-cf319b5dab3b 8c065341-7b52-4ca9-ac2c-37e31ac55c94", "",
            "ETHPERP", BUY, "0.1", "1190.15", "0.071409", "0", 1672282722429))),
    "docs_ws-private-execution_push.json": (
        "parse_execution: one Trade that closed 0.5", pushed(parse_execution, PUSHED_TRADE)),
    "nautilus_ws-execution_push.json": (
        "parse_execution: the same Trade with an orderLinkId and no createType",
        pushed(parse_execution,
               replace(PUSHED_TRADE, link_id="test-order-link-001", create_type=""))),
    "nautilus_ws-execution_adl_push.json": (
        "parse_execution: AdlTrade, fee 0; close_reason ADL", adl),
    "quanta_ws-execution_linear-futures_push.json": (
        "parse_execution: a dated future's Trade under category linear (parsed; never ours)",
        pushed(parse_execution, trade(
            "60c80c8e-ed4c-5505-9135-743b457d22ee 9c38c328-30cf-4374-9d69-9d30d3817201",
            "MjARTou9", "BTC-27SEP24", BUY, "0.001", "69175", "0.03804625", "0",
            1721703999514, create="CreateByUser"))),
    "quanta_ws-execution_spot_push.json": (
        "parse_execution: ignored, category spot", pushed(parse_execution, None)),
    # orders
    "ccxt_order-history_linear-filled_response.json": (
        "parse_order: two Filled market orders, a reduce-only Sell and a Buy",
        rows(parse_order,
             order("f5f2d355-9a11-4af3-9b83-aa1d6ab6ddfe", "Filled", "0.001", "Market", "0",
                   reduce_only=True, avg_price=D("122529.9"), cum_exec_fee=D("0.06739145"),
                   qty=D("0.001")),
             order("aee7453a-a100-465f-857a-3db780e9329a", "Filled", "0.001", "Market", "0",
                   avg_price=D("123498"), cum_exec_fee=D("0.0679239"), qty=D("0.001")))),
    "ccxt_order-realtime_linear-open_response.json": (
        "parse_order: a New limit order, avgPrice '' as None",
        rows(parse_order,
             order("3606515b-e4d7-4ea4-b096-bb247d0661ae", "New", "0", "Limit", "0.001",
                   qty=D("0.001")))),
    "docs_order-history_response.json": (
        "parse_order: Cancelled with nothing filled (a rejection, not a partial fill)",
        rows(parse_order,
             order("14bad3a1-6454-43d8-bcf2-5345896cf74d", "Cancelled", "0.000", "Limit",
                   "0.000", link_id="YLxaWKMiHU", create_type="", stop_order_type="UNKNOWN",
                   qty=D("0.003"),
                   reject_reason="EC_PostOnlyWillTakeLiquidity"))),
    "docs_order-realtime_response.json": (
        "parse_order: a New limit order, avgPrice '0' as None",
        rows(parse_order,
             order("fd4300ae-7847-404e-b947-b46980a4d140", "New", "0.00", "Limit", "0.10",
                   link_id="test-000005", symbol="ETHUSDT", create_type="",
                   stop_order_type="UNKNOWN", qty=D("0.10")))),
    "docs_ws-private-order_push.json": (
        "parse_order: ignored, category option", pushed(parse_order, None)),
    "nautilus_ws-order_stop-loss-untriggered_push.json": (
        "parse_order: an Untriggered reduce-only StopLoss",
        pushed(parse_order,
               stop_order("test-stop-loss-001", "test-client-sl-001", "StopLoss", "48000.00"))),
    "nautilus_ws-order_take-profit-untriggered_push.json": (
        "parse_order: an Untriggered reduce-only TakeProfit",
        pushed(parse_order,
               stop_order("test-take-profit-001", "test-client-tp-001", "TakeProfit",
                          "55000.00"))),
    "quanta_ws-order_empty-data_push.json": ("parse_order: nothing, data []", pushed(parse_order)),
    "quanta_ws-order_spot-rejected_push.json": (
        "parse_order: ignored, category spot", pushed(parse_order, None)),
    # positions: opened_at from openTime only; createdTime is first_created_at
    "ccxt_position-list_linear-flat_response.json": (
        "parse_position: flat (size 0, side ''), no open time",
        rows(parse_position,
             held("LTCUSDT", None, "0", "0", "6", None, 1701294996731, 1677168085779))),
    "ccxt_position-list_linear-open_response.json": (
        "parse_position: long 1.2; no openTime, so no open time (createdTime is 2023-02)",
        rows(parse_position, held("LTCUSDT", BUY, "1.2", "64.59947917", "6", None,
                                  1699948800031, 1677168085779))),
    "docs_position-list_response.json": (
        "parse_position: the row shape (Bybit's example is an inverse BTCUSD short)",
        rows(parse_position, held("BTCUSD", SELL, "300", "27464.50441675", "10", None,
                                  1697673600012, 1676538056258))),
    "docs_ws-private-position_push.json": (
        "parse_position: a flat push (entryPrice, not avgPrice)",
        pushed(parse_position,
               held("BTCUSDT", None, "0", "0", "10", None, 1697682317038, 1694402496913))),
    "nautilus_ws-position_push.json": (
        "parse_position: a short 0.01 push at entryPrice 3641.075",
        pushed(parse_position, held("ETHUSDT", SELL, "0.01", "3641.075", "30", None,
                                    1762199125472, 1730805600084))),
    "nautilus_position-list_open-time_response.json": (
        "parse_position: opened_at from openTime (a number), not from createdTime",
        rows(parse_position, held("LTCUSDT", BUY, "1", "70", "10", 1700000000123,
                                  1697673600012, 1676538056258))),
    "issues_ccxt-16424_position-list_flat-side-None_row.json": (
        "parse_position: flat on a classic account (side 'None', size '0.000')",
        lambda p: _same([parse_position(p["row"])], [
            held("BTCUSDT", None, "0.000", "0", "3", None, 1673441088780, 1672959618477)])),
    # closed PnL
    "ccxt_position-closed-pnl_linear_response.json": (
        "parse_closed_pnl: -0.43582528 for its order",
        closed_pnl("bcb03fc1-6bfe-4464-954c-4b017aea5286", D("-0.43582528"))),
    "docs_position-closed-pnl_response.json": (
        "parse_closed_pnl: -47.4065323 for its order",
        closed_pnl("5a373bfe-188d-4913-9c81-d57ab5be8068", D("-47.4065323"))),
    # key rights
    "docs_user-query-api_response.json": (
        "parse_permissions: refused, it can transfer and move funds out (and is read-only)",
        key_refused(REFUSED_KEY.format(""))),
    "nautilus_user-query-api_response.json": (
        "parse_permissions: refused, as the docs' key, with FiatBybitPay too",
        key_refused(REFUSED_KEY.format("FiatBybitPay: FaitPayOrder, "))),
    # instruments
    "docs_market-instruments-info_linear_response.json": (
        "parse_instrument: BTCUSDT, a USDT perpetual; market orders capped at maxMktOrderQty",
        instruments(BTCUSDT)),
    "nautilus-py_market-instruments-info_linear_response.json": (
        "parse_instrument: BTCUSDT and ETHUSDT, USDT perpetuals", instruments(BTCUSDT, ETHUSDT)),
    # tickers
    "ccxt_market-tickers_linear-prelisting-fields_response.json": (
        "parse_ticker: with the pre-listing fields empty",
        ticker(Ticker("BTCUSDT", D("68641.30"), D("68641.20"), D("68641.30"), AT))),
    "ccxt_market-tickers_linear_response.json": (
        "parse_ticker", ticker(Ticker("BTCUSDT", D("51444.40"), D("51444.30"), D("51444.40"), AT))),
    "docs_market-tickers_inverse_response.json": (
        "parse_ticker: the row shape (Bybit's example is inverse BTCUSD)",
        ticker(Ticker("BTCUSD", D("120635.50"), D("103401.00"), D("109152.80"), AT))),
    "docs_ws-public-ticker_linear_snapshot.json": (
        "parse_ticker: a stream snapshot",
        ticker(Ticker("BTCUSDT", D("66666.60"), D("66666.60"), D("66666.70"), AT), push=True)),
    "nautilus_ws-ticker_linear_snapshot.json": (
        "parse_ticker: a stream snapshot",
        ticker(Ticker("BTCUSDT", D("17216.00"), D("17215.50"), D("17216.00"), AT), push=True)),
    # acknowledgements: success is all the adapter reads
    "ccxt_order-create_response.json": (
        "result_of: accepted; the fill is looked up by orderLinkId",
        acknowledged({"orderId": "1992319485461489920", "orderLinkId": "1992319485469878528"})),
    "docs_order-create_response.json": (
        "result_of: accepted; the fill is looked up by orderLinkId",
        acknowledged({"orderId": "1321003749386327552", "orderLinkId": "spot-test-postonly"})),
    "docs_position-set-leverage_response.json": ("result_of: {} (success)", acknowledged({})),
    "docs_position-switch-mode_response.json": ("result_of: {} (success)", acknowledged({})),
    # the private stream's control messages
    "docs_ws-auth_success.json": ("bybit_stream: login accepted", answered(True, "")),
    "nautilus_ws-auth_failure.json": (
        "bybit_stream: login refused (the WS-trade shape says retMsg, not ret_msg)",
        answered(False, None)),
    "docs_ws-private-subscribe_reply.json": ("bybit_stream: subscribed", answered(True, "")),
    "nautilus_ws-subscribe_ack.json": ("bybit_stream: subscribed", answered(True, "")),
    "nautilus_ws-subscribe_failure.json": (
        "bybit_stream: subscription refused, with Bybit's reason",
        answered(False, "Invalid topic: invalid.topic.BTCUSDT")),
    "docs_ws-private-pong.json": ("pybit: a pong, dropped before our callbacks", pong),
    # failures and their headers
    "issues_error-answers.json": (
        "bybit_wire: 10002 retried, 10001 an order's rejection / a read's error", error_answers),
    "docs_error-codes_table.json": (
        "bybit_wire: every retCode and HTTP status in its class (ERROR_CLASSES, HTTP_CLASSES)",
        error_table),
    "issues_ccxt-21565_position-list_response-headers.json": (
        "bybit_wire._reset_in: the rate limit's reset, read from the header",
        rate_limit_headers),
    "docs_request-params.json": (
        "not a response: the docs' request-parameter tables (a reference for the fake)",
        request_tables),
}  # fmt: skip


def _files() -> list[str]:
    return sorted(p.name for p in PAYLOADS.iterdir() if p.is_file()) if PAYLOADS.is_dir() else []


@pytest.mark.parametrize("name", _files())
def test_each_recorded_payload_parses_into_what_the_table_says(name: str) -> None:
    assert name in CASES, f"{name}: not claimed; add a row to CASES (which parser, what result)"
    _, check = CASES[name]
    text = (PAYLOADS / name).read_text(encoding="utf-8")
    check(json.loads(text) if name.endswith(".json") else text)


def test_every_file_the_table_claims_is_recorded() -> None:
    assert sorted(set(CASES) - set(_files())) == []
