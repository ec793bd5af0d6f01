-- 008: the parts of positions closed in parts (take-profits, partial exits) by signal. A
-- part is a trades row with no position_id; the position's last part has it. Stats count a
-- position as one trade at its last part, whose result adds up its parts: this finds them.
CREATE INDEX trades_parts ON trades (signal_id) WHERE position_id IS NULL;
