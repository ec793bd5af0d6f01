"""SQLite storage via aiosqlite: implements the repositories that ``trader.ports`` declares."""
