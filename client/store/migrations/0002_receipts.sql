-- Parley client store, schema version 2: receipts for our messages.
-- One row per (message of ours, recipient account): how far that account
-- has got with it. A message's own state (messages.state) moves to
-- delivered or read once every recipient account has reached that state.
CREATE TABLE receipts (
	message BLOB NOT NULL,    -- id of our message
	chat    TEXT NOT NULL,
	reader  BLOB NOT NULL,    -- keyed hash of the recipient account's id
	state   INTEGER NOT NULL, -- 3 delivered, 4 read
	PRIMARY KEY (message, reader)
) WITHOUT ROWID;
CREATE INDEX receipts_chat ON receipts (chat);
