-- Records of the blob service (server/blob), shared by every server process
-- on the database. "stored" is the durably stored offset (OFFSET is a
-- reserved word). blob_usage keeps each owner's totals; its row is locked
-- while a blob is created, so quota checks are atomic across processes.

CREATE TABLE blobs (
	blob_id     @BLOB@ PRIMARY KEY,
	owner       TEXT NOT NULL,
	size        BIGINT NOT NULL,
	stored      BIGINT NOT NULL,
	checksum    @BLOB@ NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	finished_at BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX blobs_expiry ON blobs (finished_at, updated_at);

CREATE TABLE blob_usage (
	owner TEXT PRIMARY KEY,
	bytes BIGINT NOT NULL,
	blobs BIGINT NOT NULL
);
