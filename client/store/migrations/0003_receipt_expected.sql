-- Parley client store, schema version 3: the recipients a message of ours
-- was sent to. A group message's receipt rows are written when it is sent
-- (expected = 1, state 0), so members added later are not waited for.
ALTER TABLE receipts ADD COLUMN expected INTEGER NOT NULL DEFAULT 0;
