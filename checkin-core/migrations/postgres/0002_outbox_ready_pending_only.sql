-- The claim looks only at pending rows; index only those. A reply handed to the
-- sender in memory is queued `sending` and then marked `sent`: with the index
-- on every row, each of those changes moved an index entry; now neither
-- touches it. Same order as the claim: priority, then the longest due.
DROP INDEX outbox_ready;
CREATE INDEX outbox_ready ON outbox (priority, next_attempt_at_ms) WHERE status = 'pending';
