-- 004: in live mode the equity curve is the account's balance as Bybit reported it just
-- after each close (not the paper starting balance plus PnL): one mark per closed trade.
CREATE TABLE balance_marks (
    trade_id INTEGER PRIMARY KEY REFERENCES trades (id),
    balance TEXT NOT NULL,   -- USDT, exact decimal text, as Bybit sent it
    at TEXT NOT NULL         -- when Bybit was asked
);
