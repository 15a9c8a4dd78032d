//! The `checkin` binary: command line, configuration and the wiring of the crates.
fn main() {}
