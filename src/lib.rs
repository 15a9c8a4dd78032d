//! The `checkin` gateway as a library: configuration and the wiring of the
//! crates into a running service. `main.rs` is the command line over it; the
//! end-to-end tests in `tests/` start the same [`gateway::Gateway`] on port 0.

pub mod config;
pub mod gateway;
mod operators;
mod pipeline;
mod segments;
mod sender;
mod ussd;

pub use pipeline::PipelineConfig;
pub use ussd::{SessionKey, UssdConfig};
