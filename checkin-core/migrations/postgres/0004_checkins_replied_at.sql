-- When a visit was last answered because its code was sent again: a repeat is
-- answered at most once a minute (store::REPEAT_REPLY_INTERVAL_MS). NULL: only
-- the confirmation answered it, at checked_in_at_ms.
ALTER TABLE checkins ADD COLUMN replied_at_ms BIGINT;
