//! Drains the outbox through an `SmsSender` it owns: priority order
//! (OTP > confirmation > alert), a rate limit, retries and receipts.
//!
//! Owned by the SMS check-in and exposure issues. Speaks to a sender trait, never to
//! `smsc_link` directly; only the `checkin` binary connects the two.
