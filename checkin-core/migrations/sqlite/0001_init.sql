-- The first schema. Times are UTC milliseconds since the Unix epoch (*_at_ms).
-- Phone numbers never appear in clear: *_hash is HMAC-SHA256 under the service's
-- hash key (for look-ups), *_sealed is XChaCha20-Poly1305 under its encryption key.

CREATE TABLE organizations (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    email          TEXT    NOT NULL UNIQUE,
    password_hash  TEXT,
    api_token_hash TEXT    NOT NULL UNIQUE,
    created_at_ms  INTEGER NOT NULL
);

CREATE TABLE premises (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    code          TEXT    NOT NULL UNIQUE,
    address       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    stay_minutes  INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX premises_org ON premises (org_id);

CREATE TABLE checkins (
    id               INTEGER PRIMARY KEY,
    premises_id      INTEGER NOT NULL REFERENCES premises (id),
    phone_hash       BLOB    NOT NULL,
    phone_sealed     BLOB    NOT NULL,
    channel          TEXT    NOT NULL,
    consent          INTEGER NOT NULL,
    checked_in_at_ms INTEGER NOT NULL
);
CREATE INDEX checkins_premises_at ON checkins (premises_id, checked_in_at_ms);
CREATE INDEX checkins_phone_at ON checkins (phone_hash, checked_in_at_ms);
CREATE INDEX checkins_at ON checkins (checked_in_at_ms);

CREATE TABLE authorities (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE cases (
    id                 INTEGER PRIMARY KEY,
    authority_id       INTEGER REFERENCES authorities (id),
    phone_hash         BLOB    NOT NULL,
    confirmed_at_ms    INTEGER NOT NULL,
    contagious_from_ms INTEGER NOT NULL,
    contagious_to_ms   INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL
);
CREATE INDEX cases_created ON cases (created_at_ms);

CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    recipient_hash     BLOB    NOT NULL,
    recipient_sealed   BLOB    NOT NULL,
    body               TEXT    NOT NULL,
    priority           INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    smsc_message_ids   TEXT    NOT NULL DEFAULT '',
    last_error         TEXT,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    next_attempt_at_ms INTEGER NOT NULL
);
CREATE INDEX outbox_ready ON outbox (status, priority, next_attempt_at_ms);
CREATE INDEX outbox_created ON outbox (created_at_ms);
