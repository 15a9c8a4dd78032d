-- One-time codes of the web check-in (issue 10). The code itself is never
-- stored: code_hash is HMAC-SHA256 under a key derived from the service keys,
-- over code_salt and the six digits. The phone is hashed and sealed like
-- everywhere else; the sealed copy is what the check-in is recorded for.
CREATE TABLE otps (
    id            INTEGER PRIMARY KEY,
    premises_id   INTEGER NOT NULL REFERENCES premises (id),
    phone_hash    BLOB    NOT NULL,
    phone_sealed  BLOB    NOT NULL,
    code_salt     BLOB    NOT NULL,
    code_hash     BLOB    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
);
CREATE INDEX otps_expires ON otps (expires_at_ms);
