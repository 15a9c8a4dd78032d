-- What the SMSC's delivery receipt said about a sent message (`delivered`,
-- `undeliverable`, `expired`, …; NULL until a receipt arrives) and when. The
-- gateway ties receipts to rows through an in-memory map of recent SMSC ids,
-- so no index on the ids is needed (nor written on every send).
ALTER TABLE outbox ADD COLUMN delivery_state TEXT;
ALTER TABLE outbox ADD COLUMN receipt_at_ms INTEGER;
