-- The organization cabinet (issue 12): log-in sessions and API tokens. Both
-- secrets are random and stored only as SHA-256 (hex); a session's expiry is
-- fixed at log-in. An organization may hold several API tokens; the one
-- `checkin org create` printed before this migration is carried over.
CREATE TABLE org_sessions (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX org_sessions_expires ON org_sessions (expires_at_ms);

CREATE TABLE org_tokens (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    label         TEXT    NOT NULL,
    prefix        TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX org_tokens_org ON org_tokens (org_id);

INSERT INTO org_tokens (org_id, label, prefix, token_hash, created_at_ms)
SELECT id, 'checkin org create', '', api_token_hash, created_at_ms FROM organizations;
