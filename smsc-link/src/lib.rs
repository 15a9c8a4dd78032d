//! SMPP 3.4 ESME sessions to the operator's SMSC: binds, enquire_link, windowed
//! `submit_sm`, inbound `deliver_sm` (MO and receipts), reconnects.
//!
//! Owned by the smsc-link issue. Moves messages and reports what happened; knows
//! nothing of check-ins (it never depends on `checkin-core`).
