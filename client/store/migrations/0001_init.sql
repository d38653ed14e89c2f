-- Parley client store, schema version 1.
-- Columns holding sealed values (XChaCha20-Poly1305, bound to table, column
-- and row key) are marked "sealed". Everything else is plaintext the store
-- needs to index, order or sweep.

CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE identity (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	account_key   BLOB NOT NULL, -- sealed
	device_id     BLOB NOT NULL, -- sealed
	device_signer BLOB NOT NULL, -- sealed
	certificate   BLOB NOT NULL, -- sealed
	server_url    BLOB NOT NULL, -- sealed
	address       BLOB NOT NULL, -- sealed
	username      BLOB NOT NULL, -- sealed
	created_at    INTEGER NOT NULL
);

CREATE TABLE conversations (
	chat          TEXT PRIMARY KEY,
	group_id      BLOB NOT NULL UNIQUE,
	kind          INTEGER NOT NULL,
	details       BLOB NOT NULL, -- sealed: name, members
	created_at    INTEGER NOT NULL,
	last_read_seq INTEGER NOT NULL DEFAULT 0,
	disappear_ns  INTEGER NOT NULL DEFAULT 0,
	archived      INTEGER NOT NULL DEFAULT 0,
	left_chat     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE messages (
	rid         INTEGER PRIMARY KEY,
	id          BLOB NOT NULL UNIQUE,
	chat        TEXT NOT NULL,
	pos         INTEGER NOT NULL, -- server seq, or a local position while pending
	kind        INTEGER NOT NULL,
	mine        INTEGER NOT NULL,
	target      BLOB,             -- reply-to / edited / deleted / reacted-to id
	content     BLOB,             -- sealed: sender, device, body; NULL once deleted
	sent_at     INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	state       INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL DEFAULT 0,
	edited_at   INTEGER NOT NULL DEFAULT 0,
	edit_pos    INTEGER NOT NULL DEFAULT 0,
	deleted_at  INTEGER NOT NULL DEFAULT 0, -- non-zero: tombstone
	change_seq  INTEGER NOT NULL            -- local change counter (change feed)
);
CREATE UNIQUE INDEX messages_chat_pos ON messages (chat, pos);
-- Queries by target name this index (INDEXED BY): without statistics the
-- planner would otherwise walk the whole conversation.
CREATE INDEX messages_target ON messages (target) WHERE target IS NOT NULL;
-- Pending messages of ours sit at positions from 2^62 up; this small index
-- finds the next free one.
CREATE INDEX messages_pending ON messages (pos) WHERE pos >= 4611686018427387904;
CREATE UNIQUE INDEX messages_change ON messages (change_seq);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at > 0;

CREATE TABLE group_state (
	group_id   BLOB PRIMARY KEY,
	state      BLOB NOT NULL, -- sealed
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cursors (
	group_id BLOB PRIMARY KEY, -- empty for the mailbox
	seq      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	chat            TEXT NOT NULL,
	message_id      BLOB,
	payload         BLOB NOT NULL, -- sealed
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_chat ON outbox (chat, id);

CREATE TABLE key_packages (
	ref        BLOB PRIMARY KEY,
	private    BLOB NOT NULL, -- sealed
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL -- sealed
) WITHOUT ROWID;

CREATE TABLE contacts (
	handle BLOB PRIMARY KEY, -- keyed hash of the account id
	record BLOB NOT NULL     -- sealed: account, verified, safety number, name
) WITHOUT ROWID;
