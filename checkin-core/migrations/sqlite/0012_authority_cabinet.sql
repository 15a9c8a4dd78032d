-- The health authority's cabinet (issue 21): its people (argon2id
-- passwords), their log-in sessions, API tokens for machines (several per
-- authority, revocable; the one `checkin authority create` printed is
-- carried over), and the audit log of what each person did. Secrets are
-- random and stored only as SHA-256 (hex).
CREATE TABLE authority_users (
    id            INTEGER PRIMARY KEY,
    authority_id  INTEGER NOT NULL REFERENCES authorities (id),
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX authority_users_authority ON authority_users (authority_id);

CREATE TABLE authority_sessions (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES authority_users (id),
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX authority_sessions_expires ON authority_sessions (expires_at_ms);

CREATE TABLE authority_tokens (
    id            INTEGER PRIMARY KEY,
    authority_id  INTEGER NOT NULL REFERENCES authorities (id),
    label         TEXT    NOT NULL,
    prefix        TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX authority_tokens_authority ON authority_tokens (authority_id);

INSERT INTO authority_tokens (authority_id, label, prefix, token_hash, created_at_ms)
SELECT id, 'checkin authority create', '', token_hash, created_at_ms FROM authorities;

-- `user_email` is kept as text: the entry outlives nothing it names.
CREATE TABLE authority_audit (
    id           INTEGER PRIMARY KEY,
    authority_id INTEGER NOT NULL REFERENCES authorities (id),
    user_email   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    at_ms        INTEGER NOT NULL
);
CREATE INDEX authority_audit_authority ON authority_audit (authority_id, id);
CREATE INDEX authority_audit_at ON authority_audit (at_ms);
