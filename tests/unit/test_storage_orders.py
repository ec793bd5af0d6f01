"""The orders and fills repository: an order's record and its updates, listing by status,
one order per link id, and a fill stored once per execution.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import T0, repo, scalar
from trader.models import Fill, Side
from trader.ports import OrderRecord, OrderStatus

__all__ = ["repo"]  # fixtures


async def test_order_round_trips_and_updates(repo: SqliteRepositories) -> None:
    order = OrderRecord(
        link_id="e-sig-1",
        signal_id="sig-1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("0.0010"),
        reduce_only=False,
        status=OrderStatus.PENDING,
        created_at=T0,
    )
    await repo.add_order(order)
    assert await repo.get_order("e-sig-1") == order

    await repo.update_order("e-sig-1", OrderStatus.UNKNOWN, exchange_order_id="X-1")
    await repo.update_order("e-sig-1", OrderStatus.FILLED)
    stored = await repo.get_order("e-sig-1")
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    assert stored.exchange_order_id == "X-1"  # an empty id does not erase the known one
    assert str(stored.qty) == "0.0010"
    assert await repo.get_order("missing") is None


async def test_orders_are_listed_by_status(repo: SqliteRepositories) -> None:
    for index, status in enumerate(
        [OrderStatus.PENDING, OrderStatus.FILLED, OrderStatus.UNKNOWN, OrderStatus.REJECTED]
    ):
        await repo.add_order(
            OrderRecord(
                link_id=f"o-{index}",
                signal_id=f"s-{index}",
                symbol="BTCUSDT",
                side=Side.SELL,
                qty=Decimal(1),
                reduce_only=True,
                status=status,
                created_at=T0 + timedelta(seconds=index),
                error="110007 insufficient balance" if status is OrderStatus.REJECTED else "",
            )
        )
    in_flight = await repo.orders_with_status(OrderStatus.PENDING, OrderStatus.UNKNOWN)
    assert [o.link_id for o in in_flight] == ["o-0", "o-2"]
    rejected = await repo.orders_with_status(OrderStatus.REJECTED)
    assert rejected[0].error == "110007 insufficient balance"
    assert rejected[0].reduce_only
    assert await repo.orders_with_status() == []


async def test_second_order_with_the_same_link_id_is_refused(repo: SqliteRepositories) -> None:
    order = OrderRecord("L", "S", "SOLUSDT", Side.BUY, Decimal(1), False, OrderStatus.PENDING, T0)
    await repo.add_order(order)
    with pytest.raises(sqlite3.IntegrityError):
        await repo.add_order(replace(order, status=OrderStatus.FILLED))
    stored = await repo.get_order("L")
    assert stored is not None
    assert stored.status is OrderStatus.PENDING


async def test_fill_with_a_known_exec_id_is_a_duplicate(repo: SqliteRepositories) -> None:
    fill = Fill("L", "SOLUSDT", Side.BUY, Decimal("1.5"), Decimal("187.45"), Decimal("0.15"), T0)
    assert await repo.add_fill(replace(fill, exec_id="exec-1")) is True
    assert await repo.add_fill(replace(fill, exec_id="exec-1")) is False
    # Paper fills have no exec_id: each one is its own execution.
    assert await repo.add_fill(fill) is True
    assert await repo.add_fill(fill) is True
    assert await scalar(repo, "SELECT COUNT(*) FROM fills") == 3
    assert await scalar(repo, "SELECT fee FROM fills WHERE exec_id = 'exec-1'") == "0.15"
