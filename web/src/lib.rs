//! The HTTP face of the service (axum): the visitor's QR check-in flow, the guard's
//! check, the organization cabinet, the health-authority API and metrics. Russian UI.
//!
//! Owned by the web issues. Speaks to an SMS-sender trait, never to `smsc_link`.
