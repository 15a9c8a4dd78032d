-- One-time codes of the web check-in (issue 10). The code itself is never
-- stored: code_hash is HMAC-SHA256 under a key derived from the service keys,
-- over code_salt and the six digits. The phone is hashed and sealed like
-- everywhere else; the sealed copy is what the check-in is recorded for.
CREATE TABLE otps (
    id            BIGSERIAL PRIMARY KEY,
    premises_id   BIGINT  NOT NULL REFERENCES premises (id),
    phone_hash    BYTEA   NOT NULL,
    phone_sealed  BYTEA   NOT NULL,
    code_salt     BYTEA   NOT NULL,
    code_hash     BYTEA   NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX otps_expires ON otps (expires_at_ms);
