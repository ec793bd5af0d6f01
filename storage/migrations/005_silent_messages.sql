-- 005: a notification the trader set to "silent" (/notify) is sent without sound
-- (Telegram's disable_notification). It is decided when the message is stored, and kept
-- with it, so a message that waits out an outage or a restart is still sent as it was meant.
ALTER TABLE outbox ADD COLUMN silent INTEGER NOT NULL DEFAULT 0 CHECK (silent IN (0, 1));
