"""The fake's private REST endpoints: signed requests checked like Bybit checks them, answered
in Bybit v5's envelope from the fake account, each change pushed on the private stream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.bybit import params as p
from tests.fakes.bybit.account import FakeAccount
from tests.fakes.bybit.common import BybitError, params_error
from tests.fakes.bybit.paging import (
    CLOSED_PNL_LIMITS,
    EXECUTION_LIMITS,
    ORDER_LIMITS,
    POSITION_LIMITS,
    page,
)
from tests.fakes.bybit.signing import TRADING_PATHS, FakeApiKey, check_rest_auth
from tests.fakes.bybit.trades import FakeOrder

PERMISSION_DENIED = "Permission denied, please check your API key permissions."
MISSING = "Missing some parameters that must be filled in"
Action = Callable[[FakeApiKey, Mapping[str, Any]], Any]
T = TypeVar("T")
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
        account = self.account
        if symbol:
            # Asked by symbol, Bybit lists it even without a position (size "0", side "").
            listed_rows = account.position_rows(account.instrument(symbol).symbol)
            rows: list[tuple[int | str, dict[str, Any]]] = list(enumerate(listed_rows))
        elif params.get("settleCoin"):
            coin = params["settleCoin"]
            rows = [
                (s, account.position_row(s))
                for s in sorted(account.positions)
                if account.instrument(s).settle_coin == coin
            ]
        else:
            raise params_error(f"{MISSING}, symbol or settleCoin")
        listed, cursor = page(rows, params, POSITION_LIMITS)
        return {"category": "linear", "list": listed, "nextPageCursor": cursor}

    def _open_orders(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        """Open orders (New, PartiallyFilled, Untriggered); by ``orderId`` or ``orderLinkId``
        also a recent closed one (Bybit keeps the latest 500); ``openOnly=1``: closed ones."""
        p.require_linear(params)
        by_id = params.get("orderId") or params.get("orderLinkId")
        scope = params.get("symbol") or params.get("settleCoin") or params.get("baseCoin")
        if not (by_id or scope):
            raise params_error(f"{MISSING}, symbol or settleCoin or baseCoin")
        chosen = self._matching(self._newest_first(self.account.orders)[:500], params)
        if not by_id:
            want_open = str(params.get("openOnly", "0")) == "0"
            chosen = [(k, order) for k, order in chosen if order.is_open == want_open]
        return self._order_page(chosen, params)

    def _order_history(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        chosen = self._matching(self._newest_first(self.account.orders), params)
        status = params.get("orderStatus")
        if status:
            chosen = [(k, order) for k, order in chosen if order.status == status]
        return self._order_page(chosen, params)

    def _execution_list(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        exec_type = params.get("execType")
        rows = [
            (k, execution)
            for k, execution in self._newest_first(self.account.executions)
            if self._order_matches(execution.order, params)
            and exec_type in (None, "", execution.exec_type)
        ]
        listed, cursor = page(rows, params, EXECUTION_LIMITS)
        return {
            "category": "linear",
            "list": [execution.to_bybit() for execution in listed],
            "nextPageCursor": cursor,
        }

    def _closed_pnl(self, key: FakeApiKey, params: Mapping[str, Any]) -> dict[str, Any]:
        p.require_linear(params)
        symbol = params.get("symbol")
        rows = [
            (k, r)
            for k, r in self._newest_first(self.account.closed_pnl)
            if symbol in (None, r.order.symbol)
        ]
        start, end = params.get("startTime"), params.get("endTime")
        if start:
            rows = [(k, r) for k, r in rows if r.created_ms >= int(start)]
        if end:
            rows = [(k, r) for k, r in rows if r.created_ms <= int(end)]
        listed, cursor = page(rows, params, CLOSED_PNL_LIMITS)
        return {
            "category": "linear",
            "list": [record.to_bybit() for record in listed],
            "nextPageCursor": cursor,
        }

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _newest_first(records: Sequence[T]) -> list[tuple[int, T]]:
        """Newest first, each keyed by minus its index: the keys rise along the list, and stay
        put when newer records arrive between two pages."""
        return [(-index, record) for index, record in reversed(list(enumerate(records)))]

    def _matching(
        self, orders: list[tuple[int, FakeOrder]], params: Mapping[str, Any]
    ) -> list[tuple[int, FakeOrder]]:
        return [(k, order) for k, order in orders if self._order_matches(order, params)]

    @staticmethod
    def _order_matches(order: FakeOrder, params: Mapping[str, Any]) -> bool:
        # orderFilter (linear): "Order" plain orders only, "StopOrder" conditional ones
        # (stop-loss, take-profit, trailing: a stopOrderType); absent: both.
        kind = params.get("orderFilter")
        if kind == "StopOrder" and not order.stop_order_type:
            return False
        if kind == "Order" and order.stop_order_type:
            return False
        # Bybit's priority: orderId > orderLinkId > symbol.
        if params.get("orderId"):
            return order.order_id == str(params["orderId"])
        if params.get("orderLinkId"):
            return order.order_link_id == str(params["orderLinkId"])
        if params.get("symbol"):
            return order.symbol == str(params["symbol"])
        return True

    @staticmethod
    def _order_page(
        orders: list[tuple[int, FakeOrder]], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        listed, cursor = page(orders, params, ORDER_LIMITS)
        return {
            "category": "linear",
            "list": [order.to_bybit() for order in listed],
            "nextPageCursor": cursor,
        }
