"""A position's trailing stop in SQLite (migration 006): its plan with the position, and the
best price paper's simulated stop followed, kept for the open position it belongs to."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import make_position, make_trade, repo
from trader.models import TrailingStop

__all__ = ["repo"]  # fixtures


async def test_the_trailing_plan_is_stored_with_the_position(repo: SqliteRepositories) -> None:
    with_activation = replace(
        make_position("SOLUSDT"),
        link_id="sig-a",
        trailing=TrailingStop(Decimal("0.76"), Decimal("185.95")),
    )
    at_once = replace(
        make_position("BTCUSDT", signal_id="sig-2"),
        link_id="sig-b",
        trailing=TrailingStop(Decimal("260.0")),
    )
    without = replace(make_position("XRPUSDT", signal_id="sig-3"), link_id="sig-c")
    for position in (with_activation, at_once, without):
        await repo.add_position(position)

    loaded = {p.symbol: p.trailing for p in await repo.open_positions()}
    assert loaded == {
        "SOLUSDT": TrailingStop(Decimal("0.76"), Decimal("185.95")),
        "BTCUSDT": TrailingStop(Decimal("260.0"), None),
        "XRPUSDT": None,
    }


async def test_a_best_price_is_kept_for_an_open_position_only(repo: SqliteRepositories) -> None:
    position = await repo.add_position(
        replace(make_position(), link_id="sig-a", trailing=TrailingStop(Decimal("0.76")))
    )
    assert await repo.trailing_bests() == {}  # not active yet
    assert not await repo.set_trailing_best("sig-unknown", Decimal(1))
    assert await repo.set_trailing_best("sig-a", Decimal("186.10"))
    assert await repo.set_trailing_best("sig-a", Decimal("185.70"))
    assert await repo.trailing_bests() == {"sig-a": Decimal("185.70")}

    assert position.id is not None
    await repo.close_position(position.id, make_trade())
    assert await repo.trailing_bests() == {}
    assert not await repo.set_trailing_best("sig-a", Decimal("185.00"))
