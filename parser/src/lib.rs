//! MO text → typed command: turns what a visitor texted to 7377 (`ВХОД*123-456-789`
//! and the sloppy variants real people type) into a command the core understands.
//!
//! Owned by the SMS check-in issue; pure `nom`, no I/O, no tokio, no dependency on
//! any other crate of this workspace.
