//! The domain and its storage: venues, check-ins, cases, exposure matching, the
//! outbox and the message texts. No network.
