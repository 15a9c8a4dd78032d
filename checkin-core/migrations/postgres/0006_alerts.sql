-- Exposure alerts (issue 13). One row per exposed visit, whatever the number
-- of cases that exposed it: the UNIQUE key on checkin_id is what makes a
-- second case, or the same case uploaded again, queue nothing new (an INSERT
-- … ON CONFLICT DO NOTHING, not a look-up). case_id is the case that queued
-- it, outbox_id its SMS. Purging a visit or a case takes its alerts along;
-- purging the SMS leaves the alert without it.
CREATE TABLE alerts (
    id            BIGSERIAL PRIMARY KEY,
    checkin_id    BIGINT  NOT NULL UNIQUE REFERENCES checkins (id) ON DELETE CASCADE,
    case_id       BIGINT  NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    outbox_id     BIGINT  REFERENCES outbox (id) ON DELETE SET NULL,
    created_at_ms BIGINT  NOT NULL
);
-- The case's report, and the purge's cascades (a foreign key without an index
-- scans the child table for every parent row deleted).
CREATE INDEX alerts_case ON alerts (case_id);
CREATE INDEX alerts_outbox ON alerts (outbox_id);
-- What the case exposed when it was recorded (the report's counts; the
-- visits themselves may be purged since).
ALTER TABLE cases ADD COLUMN exposed_visits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN exposed_people BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN unreachable BIGINT NOT NULL DEFAULT 0;
