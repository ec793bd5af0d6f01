"""What every part of the engine works with: the book, the stores, the venue, the clock, the
bus the news leaves on, the strategy, and the tracked background tasks."""

from __future__ import annotations

from dataclasses import dataclass

from trader.book import Book
from trader.clock import Clock
from trader.events import EventBus
from trader.exchange.base import Exchange
from trader.ports import Repositories
from trader.strategy import Strategy
from trader.tasks import Tasks


@dataclass(frozen=True, slots=True)
class Parts:
    book: Book
    repo: Repositories
    exchange: Exchange
    clock: Clock
    bus: EventBus
    strategy: Strategy
    tasks: Tasks
