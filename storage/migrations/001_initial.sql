-- 001: the initial schema.
--
-- Conventions (see storage/repositories.py):
--   money, prices, quantities  TEXT holding str(Decimal), so values stay exact;
--   times                      TEXT 'YYYY-MM-DDTHH:MM:SS.ffffff+00:00' in UTC, so that text
--                              order is time order and range queries can use indexes;
--   enums                      TEXT holding the enum's value ('Buy', 'SL', 'pending', ...).

-- Every signal seen in the log, valid or not, with the one outcome it ended with.
CREATE TABLE signals (
    id          TEXT PRIMARY KEY,
    symbol      TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    timestamp   TEXT,               -- the signal's own time; NULL when the row was unparseable
    seen_at     TEXT NOT NULL,
    confidence  TEXT,
    entry_price TEXT,
    ttl_minutes INTEGER,
    target_min  TEXT,
    target_max  TEXT,
    raw         TEXT,               -- JSON of the CSV row, kept for rows that did not parse
    outcome     TEXT,               -- NULL until decided: 'opened', 'filtered:<reason>', ...
    outcome_at  TEXT
);

-- Undecided signals are what a crash interrupted; start-up looks them up.
CREATE INDEX signals_undecided ON signals (seen_at) WHERE outcome IS NULL;

-- Orders are recorded before they are sent, so a crash leaves a trace to look up.
CREATE TABLE orders (
    link_id           TEXT PRIMARY KEY,
    signal_id         TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    side              TEXT NOT NULL CHECK (side IN ('Buy', 'Sell')),
    qty               TEXT NOT NULL,
    reduce_only       INTEGER NOT NULL CHECK (reduce_only IN (0, 1)),
    status            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    error             TEXT NOT NULL DEFAULT '',
    exchange_order_id TEXT NOT NULL DEFAULT ''
);

CREATE INDEX orders_status ON orders (status);

CREATE TABLE fills (
    id       INTEGER PRIMARY KEY,
    link_id  TEXT NOT NULL,
    symbol   TEXT NOT NULL,
    side     TEXT NOT NULL CHECK (side IN ('Buy', 'Sell')),
    qty      TEXT NOT NULL,
    price    TEXT NOT NULL,
    fee      TEXT NOT NULL,
    at       TEXT NOT NULL,
    exec_id  TEXT NOT NULL DEFAULT ''
);

-- The WebSocket and REST polling can both report one execution; its exec_id dedupes it.
-- Paper fills have no exec_id, so the uniqueness only applies where one is set.
CREATE UNIQUE INDEX fills_exec_id ON fills (exec_id) WHERE exec_id <> '';
CREATE INDEX fills_link_id ON fills (link_id);

-- Open positions only: a row is deleted when its trade is stored.
-- AUTOINCREMENT so that an id is never reused: a stale reference to a closed position
-- must not find a newer one.
CREATE TABLE positions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id   TEXT NOT NULL,
    symbol      TEXT NOT NULL UNIQUE,   -- one-way mode: at most one open position per symbol
    side        TEXT NOT NULL CHECK (side IN ('Buy', 'Sell')),
    qty         TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    leverage    INTEGER NOT NULL,
    margin      TEXT NOT NULL,
    stop_loss   TEXT NOT NULL,
    take_profit TEXT NOT NULL,
    entry_fee   TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    link_id     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE trades (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    position_id INTEGER UNIQUE,         -- a position closes into at most one trade
    signal_id   TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL CHECK (side IN ('Buy', 'Sell')),
    qty         TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    exit_price  TEXT NOT NULL,
    leverage    INTEGER NOT NULL,
    margin      TEXT NOT NULL,
    entry_fee   TEXT NOT NULL,
    exit_fee    TEXT NOT NULL,
    gross_pnl   TEXT NOT NULL,
    net_pnl     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    closed_at   TEXT NOT NULL
);

-- Today's PnL, /status and /trades all read trades by close time.
CREATE INDEX trades_closed_at ON trades (closed_at, id);

-- Limits and switches changed from chat; they override the strategy file until deleted.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Notifications wait here until Telegram has taken them, so an outage or restart
-- delays them but never loses them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    last_error      TEXT NOT NULL DEFAULT ''
);

CREATE INDEX outbox_unsent ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- One inline-button question per signal; its status moves from 'pending' exactly once.
CREATE TABLE confirmations (
    signal_id   TEXT PRIMARY KEY,
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    resolved_at TEXT
);

CREATE INDEX confirmations_pending ON confirmations (expires_at) WHERE status = 'pending';
