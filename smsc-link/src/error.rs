//! The one error type of the crate; each variant names the calls that
//! return it.

use rusmpp::CommandStatus;

/// Errors of `smsc-link`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range (`Link::start`, `LinkConfig::validate`).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The destination is not 1..=20 digits, optionally after `+` (`Link::submit`).
    #[error("invalid destination address")]
    InvalidAddress,
    /// The text needs more than 255 segments (`Link::submit`).
    #[error("text needs {segments} segments, more than 255")]
    TextTooLong {
        /// Segments the text would need.
        segments: usize,
    },
    /// The link is shutting down; the message was never sent (`Link::submit`).
    #[error("the link is shut down; message not sent")]
    ShutDown,
    /// `send_within` passed before any segment was written; the message
    /// was not sent and never will be (`Link::submit`, `Link::enqueue`).
    #[error("not sent within the time allowed")]
    Expired,
    /// The caller withdrew the message (`SubmitOptions::withdraw` was
    /// cancelled) before any segment was written; it was not sent
    /// (`Link::submit`).
    #[error("withdrawn before it was sent")]
    Withdrawn,
    /// The SMSC refused the bind (`bind`, reported through the link state and logs).
    #[error("bind refused with status {0:?}")]
    BindRefused(CommandStatus),
    /// No response in time (`bind`, sessions).
    #[error("no response within the timeout")]
    Timeout,
    /// The SMSC broke the protocol (`bind`, sessions).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The SMSC stalled the stream for `response_timeout_ms`: it stopped
    /// reading the link's writes, or sent a PDU only in part (`bind`,
    /// sessions).
    #[error("the smsc stalled: {0}")]
    Stalled(&'static str),
    /// Socket I/O failed (`bind`, sessions).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
