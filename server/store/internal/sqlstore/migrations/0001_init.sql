-- Parley homeserver schema, version 1. Shared by SQLite and PostgreSQL:
-- @BLOB@ is BLOB or BYTEA, @SERIAL_PK@ an auto-assigned integer key.
-- Times are Unix nanoseconds; 0 means "not set".

CREATE TABLE accounts (
	account_id  TEXT PRIMARY KEY,
	account_pub @BLOB@ NOT NULL,
	created_at  BIGINT NOT NULL
);

CREATE TABLE devices (
	account_id  TEXT NOT NULL,
	device_id   @BLOB@ NOT NULL,
	certificate @BLOB@ NOT NULL,
	sig_pub     @BLOB@ NOT NULL,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT NOT NULL DEFAULT 0,
	mail_seq    BIGINT NOT NULL DEFAULT 0,
	mail_count  BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (account_id, device_id)
);

CREATE TABLE usernames (
	name       TEXT PRIMARY KEY,
	account_id TEXT NOT NULL UNIQUE,
	claim      @BLOB@ NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE invites (
	token      TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	used_at    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE key_packages (
	kp_id       @SERIAL_PK@,
	account_id  TEXT NOT NULL,
	device_id   @BLOB@ NOT NULL,
	last_resort INTEGER NOT NULL,
	data        @BLOB@ NOT NULL
);
CREATE INDEX key_packages_device ON key_packages (account_id, device_id, last_resort, kp_id);

CREATE TABLE mls_groups (
	group_id   @BLOB@ PRIMARY KEY,
	epoch      BIGINT NOT NULL,
	last_seq   BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
	group_id   @BLOB@ NOT NULL,
	account_id TEXT NOT NULL,
	device_id  @BLOB@ NOT NULL,
	joined_seq BIGINT NOT NULL,
	acked_seq  BIGINT NOT NULL,
	PRIMARY KEY (group_id, account_id, device_id)
);
CREATE INDEX group_members_device ON group_members (account_id, device_id);

CREATE TABLE group_log (
	group_id       @BLOB@ NOT NULL,
	seq            BIGINT NOT NULL,
	message_id     @BLOB@ NOT NULL,
	epoch          BIGINT NOT NULL,
	kind           INTEGER NOT NULL,
	sender_account TEXT NOT NULL,
	sender_device  @BLOB@ NOT NULL,
	created_at     BIGINT NOT NULL,
	data           @BLOB@ NOT NULL,
	PRIMARY KEY (group_id, seq)
);
CREATE UNIQUE INDEX group_log_message ON group_log (group_id, message_id);
CREATE INDEX group_log_created ON group_log (created_at);

CREATE TABLE mailbox (
	account_id TEXT NOT NULL,
	device_id  @BLOB@ NOT NULL,
	seq        BIGINT NOT NULL,
	message_id @BLOB@ NOT NULL,
	kind       INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	data       @BLOB@ NOT NULL,
	PRIMARY KEY (account_id, device_id, seq)
);
CREATE UNIQUE INDEX mailbox_message ON mailbox (account_id, device_id, message_id);
CREATE INDEX mailbox_created ON mailbox (created_at);
