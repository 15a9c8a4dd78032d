-- Delivery under the operator's limits (issue 13).
-- Copies of a message written to the SMSC whose answer was lost (in doubt),
-- over every run: a restart continues the count instead of starting again, so
-- a recipient gets at most two copies across restarts too.
ALTER TABLE outbox ADD COLUMN copies_in_doubt INTEGER NOT NULL DEFAULT 0;
-- The SMSC ids of each sent segment, so a receipt finds its message through
-- the primary key (also after a restart), not a text search of
-- outbox.smsc_message_ids. Purged with the outbox.
CREATE TABLE outbox_smsc_ids (
    smsc_id       TEXT    NOT NULL PRIMARY KEY,
    outbox_id     INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX outbox_smsc_ids_created ON outbox_smsc_ids (created_at_ms);
-- Alerts sent to one recipient per UTC day (`recipient_daily_max`), counted
-- in storage so a restart or a second instance does not reset the cap.
CREATE TABLE recipient_days (
    recipient_hash BLOB    NOT NULL,
    day            INTEGER NOT NULL,
    messages       INTEGER NOT NULL,
    PRIMARY KEY (recipient_hash, day)
);
-- Service-wide switches (`alerts_paused`: the kill switch), 0 or 1.
CREATE TABLE flags (
    name          TEXT    NOT NULL PRIMARY KEY,
    value         INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
