"""The fake's rows have the field names of Bybit's: for each endpoint and push it serves, the key
set of what the fake sends (read through pybit, or a raw WebSocket for protocol replies) against
the recorded payload in ``shared/bybit/payloads/`` (recorded by preference, else Bybit's own doc
example). Every field one has and the other lacks is listed below with the reason, so a field
added on either side without a reason fails here."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import PUBLIC_LINEAR_PATH, FakeBybit, ws_signature
from tests.fakes.bybit.pybit_clients import (
    BTC,
    KEY,
    SECRET,
    StreamFactory,
    call,
    fake,
    market_order,
    rest,
    result,
    streams,
)

pytestmark = [
    pytest.mark.timeout(15),
    pytest.mark.skipif(
        not (Path(__file__).resolve().parents[3] / "shared" / "bybit" / "payloads").is_dir(),
        reason="no recorded Bybit payloads (clone shared/ beside the repository)",
    ),
]
__all__ = ["fake", "rest", "streams"]  # fixtures

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "bybit" / "payloads"
Reasons = Mapping[str, str]
NONE: Reasons = {}

LATER = "added by Bybit after the reference was recorded (changelog)"
OPEN_TIME = "openTime: added 2026-04-21 (nautilus_position-list_open-time_response.json)"
RPI = "rpiTakerAccess/rpiMatchedQty: in the 2026 doc examples of order history and push"
SLIPPAGE = "slippageToleranceType/slippageTolerance: recorded on order history (2025-09)"


def reference(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def first(payload: Any) -> dict[str, Any]:
    """The first row of an envelope's ``result.list``, or of a push's ``data``."""
    rows = payload["result"]["list"] if "result" in payload else payload["data"]
    return dict(rows[0])


def same_fields(
    what: str,
    ours: Mapping[str, Any],
    bybits: Mapping[str, Any],
    *,
    missing: Reasons = NONE,
    extra: Reasons = NONE,
) -> None:
    """``ours`` has ``bybits``' fields, less those in ``missing`` and plus those in ``extra``."""
    assert (set(bybits) - set(ours), set(ours) - set(bybits)) == (set(missing), set(extra)), what


async def test_rest_rows_have_bybits_fields(fake: FakeBybit, rest: Callable[..., HTTP]) -> None:
    session = rest()
    created = await result(
        session, "place_order", **market_order(orderLinkId="o1", stopLoss="64000")
    )
    await call(session, "place_order", **market_order("Sell", "0.004", reduceOnly=True))
    [position] = (await result(session, "get_positions", **BTC))["list"]
    [flat] = (await result(session, "get_positions", category="linear", symbol="ETHUSDT"))["list"]
    [stop] = (await result(session, "get_open_orders", **BTC))["list"]
    history = (await result(session, "get_order_history", **BTC))["list"]
    execution = (await result(session, "get_executions", **BTC))["list"][0]
    [closed] = (await result(session, "get_closed_pnl", **BTC))["list"]
    [wallet] = (await result(session, "get_wallet_balance", accountType="UNIFIED"))["list"]
    key = await result(session, "get_api_key_information")
    instrument = (await result(session, "get_instruments_info", **BTC))["list"][0]
    ticker = (await result(session, "get_tickers", **BTC))["list"][0]

    same_fields("order/create", created, reference("docs_order-create_response.json")["result"])
    same_fields(
        "position/list, open",
        position,
        first(reference("docs_position-list_response.json")),
        missing={
            "breakEvenPrice": "not simulated (added 2026-01-13)",
            "mmrSysUpdateTime": "a typo of the doc example; recorded rows: mmrSysUpdatedTime",
        },
        extra={"openTime": OPEN_TIME, "mmrSysUpdatedTime": "recorded (ccxt, 2023-2024)"},
    )
    same_fields(
        "position/list, open time",
        position,
        first(reference("nautilus_position-list_open-time_response.json")),
        extra={
            "positionIMByMp": LATER,
            "positionMMByMp": LATER,
            "sessionAvgPrice": "in the recorded push and the doc example",
            "seq": "in the recorded rows",
            "isReduceOnly": "in the recorded rows",
            "mmrSysUpdatedTime": "in the recorded rows",
            "leverageSysUpdatedTime": "in the recorded rows",
        },
    )
    same_fields(
        "position/list, flat",
        flat,
        first(reference("ccxt_position-list_linear-flat_response.json")),
        extra={
            "curRealisedPnl": LATER,
            "sessionAvgPrice": LATER,
            "positionIMByMp": LATER,
            "positionMMByMp": LATER,
            "openTime": OPEN_TIME,
        },
    )
    same_fields(
        "order/realtime",
        stop,
        first(reference("ccxt_order-realtime_linear-open_response.json")),
        extra={
            "slippageToleranceType": SLIPPAGE,
            "slippageTolerance": SLIPPAGE,
            "extraFees": "recorded on order history (2025-09)",
            "rpiTakerAccess": RPI,
            "rpiMatchedQty": RPI,
        },
    )
    same_fields(
        "order/history",
        history[0],
        first(reference("ccxt_order-history_linear-filled_response.json")),
        extra={
            "marketUnit": "recorded on open orders (2025-09)",
            "rpiTakerAccess": RPI,
            "rpiMatchedQty": RPI,
        },
    )
    same_fields(
        "execution/list",
        execution,
        first(reference("ccxt_execution-list_linear-trade_response.json")),
        missing={"nextPageCursor": "ccxt copies the page's cursor into each row"},
        extra={"extraFees": "in the doc example (added 2025-05-28)"},
    )
    same_fields(
        "position/closed-pnl",
        closed,
        first(reference("ccxt_position-closed-pnl_linear_response.json")),
        extra={"openFee": LATER + " 2025-06-24", "closeFee": LATER + " 2025-06-24"},
    )
    bybit_wallet = first(reference("docs_account-wallet-balance_response.json"))
    same_fields("wallet-balance", wallet, bybit_wallet)
    same_fields("wallet-balance coin", wallet["coin"][0], bybit_wallet["coin"][0])
    bybit_key = reference("docs_user-query-api_response.json")["result"]
    same_fields("query-api", key, bybit_key)
    recorded_key = reference("nautilus_user-query-api_response.json")["result"]
    same_fields("query-api permissions", key["permissions"], recorded_key["permissions"])
    bybit_instrument = first(reference("docs_market-instruments-info_linear_response.json"))
    same_fields(
        "instruments-info",
        instrument,
        bybit_instrument,
        extra={"displayName": "added for linear 2025-04-22 (changelog)"},
    )
    for part in ("leverageFilter", "priceFilter", "lotSizeFilter", "riskParameters"):
        same_fields(f"instruments-info {part}", instrument[part], bybit_instrument[part])
    same_fields("tickers", ticker, first(reference("docs_market-tickers_inverse_response.json")))


async def test_pushes_have_bybits_fields(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await call(session, "place_order", **market_order(stopLoss="64000"))
    await call(session, "place_order", **market_order("Sell", reduceOnly=True))
    await pushes.until(lambda: len(pushes.data("wallet")) == 2)
    order = pushes.data("order")[0]
    execution = pushes.data("execution")[-1]
    [opened, flat] = pushes.data("position")
    wallet = pushes.data("wallet")[-1]

    same_fields(
        "order push",
        order,
        first(reference("docs_ws-private-order_push.json")),
        extra={
            "createType": "in the linear order pushes (nautilus_ws-order_*)",
            "isLeverage": "in the recorded order push (quanta)",
            "marketUnit": "in the recorded order push (quanta)",
            "slippageToleranceType": "added to the order push 2025-02-27",
            "slippageTolerance": "added to the order push 2025-02-27",
        },
    )
    same_fields(
        "execution push", execution, first(reference("docs_ws-private-execution_push.json"))
    )
    same_fields(
        "position push, open",
        opened,
        first(reference("nautilus_ws-position_push.json")),
        extra={"openTime": OPEN_TIME + "; assumed in pushes too"},
    )
    same_fields(
        "position push, flat",
        flat,
        first(reference("docs_ws-private-position_push.json")),
        missing={"breakEvenPrice": "not simulated (added 2026-01-13)"},
        extra={"openTime": OPEN_TIME + "; assumed in pushes too"},
    )
    # No wallet push is recorded; Bybit's wallet topic documents the REST row's fields.
    same_fields(
        "wallet push", wallet, first(reference("docs_account-wallet-balance_response.json"))
    )


async def test_stream_replies_have_bybits_fields(fake: FakeBybit) -> None:
    async def ask(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> Any:
        await ws.send_str(json.dumps(message))
        return json.loads(await ws.receive_str(timeout=2))

    expires = fake.server_time_ms() + 5000
    public_url = fake.ws_private_url.replace("/v5/private", PUBLIC_LINEAR_PATH)
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(fake.ws_private_url) as ws:
            refused = await ask(ws, {"op": "auth", "args": [KEY, 1, ws_signature(SECRET, 1)]})
            auth = await ask(
                ws, {"op": "auth", "args": [KEY, expires, ws_signature(SECRET, expires)]}
            )
            pong = await ask(ws, {"op": "ping", "req_id": "p1"})
            subscribed = await ask(ws, {"op": "subscribe", "args": ["order"]})
        async with client.ws_connect(public_url) as ws:
            await ask(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
            snapshot = json.loads(await ws.receive_str(timeout=2))

    same_fields("auth", auth, reference("docs_ws-auth_success.json"))
    same_fields("auth refused", refused, reference("docs_ws-auth_success.json"))
    assert (refused["success"], refused["ret_msg"]) == (False, "Params Error")
    same_fields("pong", pong, reference("docs_ws-private-pong.json"))
    same_fields("subscribe", subscribed, reference("docs_ws-private-subscribe_reply.json"))
    bybit_snapshot = reference("docs_ws-public-ticker_linear_snapshot.json")
    same_fields("ticker snapshot", snapshot, bybit_snapshot)
    same_fields("ticker snapshot data", snapshot["data"], bybit_snapshot["data"])
