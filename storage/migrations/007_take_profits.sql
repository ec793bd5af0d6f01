-- 007: a position's several take-profits (take_profits / targets_from_signal) as placed on
-- the venue after its entry filled, and its breakeven rule (breakeven_after_tp): JSON text,
-- {"qty": the qty it was made for, "levels": [[price, qty], ...] nearest the entry first,
-- "breakeven_after": N or null, "breakeven_price": price or null, "breakeven_moved": bool},
-- prices and qtys as exact decimal text. NULL: one take-profit (take_profit). How many TPs
-- have filled follows from qty against the plan's; "breakeven_moved" is stored with the part
-- that moved the stop-loss (stop_loss then holds the breakeven price), so a restart never
-- sends the move again.
ALTER TABLE positions ADD COLUMN take_profit_plan TEXT;
