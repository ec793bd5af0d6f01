"""The repository as a whole: every port method implemented with its signature, and
transactions kept apart under concurrent and cancelled writers.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import T0, make_position, make_signal, make_trade, repo
from trader.ports import Repositories

__all__ = ["repo"]  # fixtures


async def test_concurrent_writers_do_not_share_a_transaction(repo: SqliteRepositories) -> None:
    symbols = [f"C{i}USDT" for i in range(20)]
    positions = await asyncio.gather(
        *(repo.add_position(make_position(s, signal_id=s)) for s in symbols)
    )
    await asyncio.gather(
        *(repo.record_signal(make_signal(f"x{i}"), T0) for i in range(20)),
        *(
            repo.close_position(p.id, make_trade(p.symbol, signal_id=p.symbol))
            for p in positions
            if p.id is not None
        ),
    )
    assert await repo.open_positions() == []
    assert await repo.trade_count() == 20
    assert len(await repo.signals_without_outcome()) == 20


def test_every_port_method_is_implemented_with_its_signature() -> None:
    port_methods = {
        name
        for name, member in inspect.getmembers(Repositories, inspect.isfunction)
        if not name.startswith("_")
    }
    assert port_methods
    for name in port_methods:
        ours = inspect.signature(getattr(SqliteRepositories, name))
        theirs = inspect.signature(getattr(Repositories, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert inspect.iscoroutinefunction(getattr(SqliteRepositories, name)), name


async def test_a_writer_cancelled_mid_transaction_leaves_no_transaction_open(
    repo: SqliteRepositories,
) -> None:
    for _ in range(20):
        writer = asyncio.create_task(repo.set_setting("k", "v"))
        await asyncio.sleep(0)  # let it take the lock and start BEGIN on the worker thread
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    await repo.set_setting("after", "ok")
    assert await repo.get_setting("after") == "ok"
