-- The TTL sweep walks each group log and mailbox from its front in
-- primary-key order (mailbox.go, Expire), so the indexes on created_at are
-- no longer read. Dropping them saves one B-tree insert per appended
-- message and per mailbox entry.
DROP INDEX group_log_created;
DROP INDEX mailbox_created;
