-- Several operators (issue 20).
-- The operator a phone last texted or dialled us through, by the phone's
-- keyed hash (never the number): where a message that starts with us goes
-- first. Refreshed at most daily while unchanged; purged with the rest once
-- not refreshed within the retention period.
CREATE TABLE phone_routes (
    phone_hash    BLOB   NOT NULL PRIMARY KEY,
    operator      TEXT    NOT NULL,
    learned_at_ms INTEGER NOT NULL
);
CREATE INDEX phone_routes_learned ON phone_routes (learned_at_ms);
-- The numbering plan (`checkin routes import FILE`): ranges (+7916, or
-- +79030000000-+79030999999) and their operator, replaced whole by each
-- import; `position` keeps the file's order (of two equally specific
-- ranges, the later wins). Its flags row `number_plan` (value: the ranges,
-- updated_at_ms: the import) tells a running gateway it changed.
CREATE TABLE number_plan (
    range    TEXT    NOT NULL PRIMARY KEY,
    operator TEXT    NOT NULL,
    position INTEGER NOT NULL
);
-- The operator a message must go through (a reply: its MO's); NULL: routed
-- at the claim (the phone's learned route, else the plan, else the default).
ALTER TABLE outbox ADD COLUMN operator TEXT;
