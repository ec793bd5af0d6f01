"""The fake's private REST endpoints: signed requests checked like Bybit checks them, answered
in Bybit v5's envelope from the fake account, each change pushed on the private stream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from tests.fakes.bybit import params as p
from tests.fakes.bybit.account import FakeAccount
from tests.fakes.bybit.common import SETTLE_COIN, BybitError, params_error
from tests.fakes.bybit.records import FakeOrder
from tests.fakes.bybit.signing import TRADING_PATHS, FakeApiKey, check_rest_auth

PERMISSION_DENIED = "Permission denied, please check your API key permissions."
MISSING = "Missing some parameters that must be filled in"
Action = Callable[[FakeApiKey, Mapping[str, Any]], Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PrivateRest:
    """Mixin of ``FakeBybit``: the private REST routes."""

    # Provided by FakeBybit.
    api_keys: dict[str, FakeApiKey]
    account: FakeAccount
    _notify: Callable[[], None]
    _server_ms: Callable[[], int]
    _envelope: Callable[..., dict[str, Any]]
    _flush_account: Callable[[], Awaitable[None]]

    def _private_routes(self) -> list[web.RouteDef]:
        routes: list[tuple[str, str, Action]] = [
            ("GET", "/v5/user/query-api", lambda key, _: key.to_bybit()),
            ("GET", "/v5/account/wallet-balance", self._wallet_balance),
            ("GET", "/v5/position/list", self._position_list),
            ("POST", "/v5/position/set-leverage", lambda _, q: self.account.set_leverage(q)),
            ("POST", "/v5/position/switch-mode", lambda _, q: self.account.switch_mode(q)),
            ("POST", "/v5/position/trading-stop", lambda _, q: self.account.set_trading_stop(q)),
            ("POST", "/v5/order/create", lambda _, q: self.account.place_order(q)),
            ("GET", "/v5/order/realtime", self._open_orders),
            ("GET", "/v5/order/history", self._order_history),
            ("GET", "/v5/execution/list", self._execution_list),
            ("GET", "/v5/position/closed-pnl", self._closed_pnl),
        ]
        return [web.route(method, path, self._signed(action)) for method, path, action in routes]

    def _signed(self, action: Action) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.text()
            if request.method == "GET":
                payloads = [request.rel_url.raw_query_string, request.query_string]
            else:
                payloads = [body]
            try:
                key = check_rest_auth(self.api_keys, request.headers, payloads, self._server_ms())
                if request.path in TRADING_PATHS and not key.can_trade:
                    raise BybitError(10005, PERMISSION_DENIED)
                result = action(key, self._params(request, body))
            except BybitError as refused:
                self.account.pushes.clear()  # a refused request changes nothing
                return web.json_response(self._envelope({}, refused.ret_code, refused.ret_msg))
            await self._flush_account()
            self._notify()
            return web.json_response(self._envelope({} if result is None else result))

        return handle

    @staticmethod
    def _params(request: web.Request, body: str) -> Mapping[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        try:
            params = json.loads(body or "{}")
        except ValueError:
            raise params_error("params error: the body is not valid JSON") from None
        if not isinstance(params, dict):
            raise params_error("params error: the body is not a JSON object")
        return params

    # -- reads -----------------------------------------------------------------------------

    def _wallet_balance(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            raise params_error("accountType only support UNIFIED")
        row = self.account.wallet_row()
        coins = [c.strip() for c in str(params.get("coin", "")).split(",") if c.strip()]
        if coins:
            row["coin"] = [c for c in row["coin"] if c["coin"] in coins]
        return {"list": [row]}

    def _position_list(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        symbol = params.get("symbol")
        if symbol:
            # Asked by symbol, Bybit lists it even without a position (size "0", side "").
            rows = [self.account.position_row(self.account.instrument(symbol).symbol)]
        elif params.get("settleCoin"):
            open_symbols = self.account.positions if params["settleCoin"] == SETTLE_COIN else {}
            rows = [self.account.position_row(s) for s in open_symbols]
        else:
            raise params_error(f"{MISSING}, symbol or settleCoin")
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    def _open_orders(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        """Open orders (New, PartiallyFilled, Untriggered); by ``orderId`` or ``orderLinkId``
        also a recent closed one (Bybit keeps the latest 500); ``openOnly=1``: closed ones."""
        p.require_linear(params)
        by_id = params.get("orderId") or params.get("orderLinkId")
        scope = params.get("symbol") or params.get("settleCoin") or params.get("baseCoin")
        if not (by_id or scope):
            raise params_error(f"{MISSING}, symbol or settleCoin or baseCoin")
        recent = list(reversed(self.account.orders))[:500]
        chosen = self._matching(recent, params)
        if not by_id:
            want_open = str(params.get("openOnly", "0")) == "0"
            chosen = [order for order in chosen if order.is_open == want_open]
        return self._order_page(chosen, p.limit(params, 20, 50))

    def _order_history(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        chosen = self._matching(list(reversed(self.account.orders)), params)
        status = params.get("orderStatus")
        if status:
            chosen = [order for order in chosen if order.status == status]
        return self._order_page(chosen, p.limit(params, 20, 50))

    def _execution_list(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        rows = [
            execution
            for execution in reversed(self.account.executions)
            if self._order_matches(execution.order, params)
        ]
        limit = p.limit(params, 50, 100)
        return {
            "category": "linear",
            "list": [execution.to_bybit() for execution in rows[:limit]],
            "nextPageCursor": "",
        }

    def _closed_pnl(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        symbol = params.get("symbol")
        rows = [r for r in reversed(self.account.closed_pnl) if symbol in (None, r.order.symbol)]
        start, end = params.get("startTime"), params.get("endTime")
        if start:
            rows = [r for r in rows if r.created_ms >= int(start)]
        if end:
            rows = [r for r in rows if r.created_ms <= int(end)]
        limit = p.limit(params, 50, 100)
        return {
            "category": "linear",
            "list": [record.to_bybit() for record in rows[:limit]],
            "nextPageCursor": "",
        }

    # -- helpers ---------------------------------------------------------------------------

    def _matching(self, orders: list[FakeOrder], params: Mapping[str, Any]) -> list[FakeOrder]:
        return [order for order in orders if self._order_matches(order, params)]

    @staticmethod
    def _order_matches(order: FakeOrder, params: Mapping[str, Any]) -> bool:
        # Bybit's priority: orderId > orderLinkId > symbol.
        if params.get("orderId"):
            return order.order_id == str(params["orderId"])
        if params.get("orderLinkId"):
            return order.order_link_id == str(params["orderLinkId"])
        if params.get("symbol"):
            return order.symbol == str(params["symbol"])
        return True

    @staticmethod
    def _order_page(orders: list[FakeOrder], limit: int) -> dict[str, Any]:
        return {
            "category": "linear",
            "list": [order.to_bybit() for order in orders[:limit]],
            "nextPageCursor": "",
        }
