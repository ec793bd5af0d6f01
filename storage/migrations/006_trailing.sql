-- 006: a position's trailing stop (trailing_stop_pct, trailing_activation_pct) as it was set
-- on the venue: its price distance and activation price (NULL: no trailing stop; an
-- activation price NULL with a distance: active at once). Paper mode simulates it and keeps
-- the best price it followed since it activated (NULL: not active yet), so that a restart
-- resumes it; Bybit holds a live one's itself. Exact decimal text, like every price here.
ALTER TABLE positions ADD COLUMN trailing_distance TEXT;
ALTER TABLE positions ADD COLUMN trailing_active_price TEXT;
ALTER TABLE positions ADD COLUMN trailing_best TEXT;
