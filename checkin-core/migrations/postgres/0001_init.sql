-- The first schema. Times are UTC milliseconds since the Unix epoch (*_at_ms).
-- Phone numbers never appear in clear: *_hash is HMAC-SHA256 under the service's
-- hash key (for look-ups), *_sealed is XChaCha20-Poly1305 under its encryption key.

CREATE TABLE organizations (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT    NOT NULL,
    email          TEXT    NOT NULL UNIQUE,
    password_hash  TEXT,
    api_token_hash TEXT    NOT NULL UNIQUE,
    created_at_ms  BIGINT  NOT NULL
);

CREATE TABLE premises (
    id            BIGSERIAL PRIMARY KEY,
    org_id        BIGINT  NOT NULL REFERENCES organizations (id),
    code          TEXT    NOT NULL UNIQUE,
    address       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    stay_minutes  BIGINT  NOT NULL,
    active        BIGINT  NOT NULL DEFAULT 1,
    created_at_ms BIGINT  NOT NULL
);
CREATE INDEX premises_org ON premises (org_id);

CREATE TABLE checkins (
    id               BIGSERIAL PRIMARY KEY,
    premises_id      BIGINT  NOT NULL REFERENCES premises (id),
    phone_hash       BYTEA   NOT NULL,
    phone_sealed     BYTEA   NOT NULL,
    channel          TEXT    NOT NULL,
    consent          BIGINT  NOT NULL,
    checked_in_at_ms BIGINT  NOT NULL
);
CREATE INDEX checkins_premises_at ON checkins (premises_id, checked_in_at_ms);
CREATE INDEX checkins_phone_at ON checkins (phone_hash, checked_in_at_ms);
CREATE INDEX checkins_at ON checkins (checked_in_at_ms);

CREATE TABLE authorities (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms BIGINT  NOT NULL
);

CREATE TABLE cases (
    id                 BIGSERIAL PRIMARY KEY,
    authority_id       BIGINT  REFERENCES authorities (id),
    phone_hash         BYTEA   NOT NULL,
    confirmed_at_ms    BIGINT  NOT NULL,
    contagious_from_ms BIGINT  NOT NULL,
    contagious_to_ms   BIGINT  NOT NULL,
    created_at_ms      BIGINT  NOT NULL
);
CREATE INDEX cases_created ON cases (created_at_ms);

CREATE TABLE outbox (
    id                 BIGSERIAL PRIMARY KEY,
    recipient_hash     BYTEA   NOT NULL,
    recipient_sealed   BYTEA   NOT NULL,
    body               TEXT    NOT NULL,
    priority           BIGINT  NOT NULL,
    status             TEXT    NOT NULL,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    smsc_message_ids   TEXT    NOT NULL DEFAULT '',
    last_error         TEXT,
    created_at_ms      BIGINT  NOT NULL,
    updated_at_ms      BIGINT  NOT NULL,
    next_attempt_at_ms BIGINT  NOT NULL
);
CREATE INDEX outbox_ready ON outbox (status, priority, next_attempt_at_ms);
CREATE INDEX outbox_created ON outbox (created_at_ms);
