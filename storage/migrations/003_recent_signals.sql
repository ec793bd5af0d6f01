-- 003: /signals lists the newest signals by their own time (a backlog's rows are stored
-- youngest chunk first, so insertion order is not time order); unparseable rows by when seen.
CREATE INDEX signals_recent ON signals (COALESCE(timestamp, seen_at));
