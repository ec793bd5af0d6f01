-- 002: a confirmation question goes to every allowed chat, so its messages get their own
-- table; a confirmation gets a short reference for the buttons (Telegram's callback data is
-- at most 64 bytes). The outbox is read as each chat's oldest unsent message.

CREATE TABLE confirmations_v2 (
    signal_id   TEXT PRIMARY KEY,
    ref         TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    resolved_at TEXT
);

INSERT INTO confirmations_v2 (signal_id, ref, status, created_at, expires_at, resolved_at)
    SELECT signal_id, signal_id, status, created_at, expires_at, resolved_at FROM confirmations;

CREATE TABLE confirmation_messages (
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    signal_id  TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);

INSERT INTO confirmation_messages (chat_id, message_id, signal_id)
    SELECT chat_id, message_id, signal_id FROM confirmations WHERE message_id IS NOT NULL;

DROP TABLE confirmations;

ALTER TABLE confirmations_v2 RENAME TO confirmations;

CREATE INDEX confirmations_pending ON confirmations (expires_at) WHERE status = 'pending';

CREATE INDEX confirmation_messages_signal ON confirmation_messages (signal_id);

CREATE INDEX outbox_unsent_by_chat ON outbox (chat_id, id) WHERE sent_at IS NULL;
