//! The bundled SMSC simulator: an SMPP 3.4 server with a control API, a virtual
//! phone page, receipts, fault injection and a load generator.
//!
//! Owned by the simulator issue. Independent of `checkin-core`.
