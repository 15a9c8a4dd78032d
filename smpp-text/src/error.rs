//! What can go wrong reading, writing or framing a short message.

use crate::Alphabet;

/// Errors of `smpp-text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The user data header's length points past the end of the message.
    #[error("user data header longer than the message")]
    UdhTooLong,
    /// An element of the user data header runs past the header.
    #[error("user data header element longer than the header")]
    UdhElementTooLong,
    /// A UCS2 message with an odd number of octets.
    #[error("ucs2 message has an odd number of octets")]
    OddUcs2,
    /// The text has a character the chosen alphabet lacks.
    #[error("the text cannot be encoded as {0:?}")]
    Unencodable(Alphabet),
    /// The text needs more parts than a concatenated message may have.
    #[error("the text needs {segments} parts; a concatenated message has at most 255")]
    TooLong {
        /// Parts the text would need.
        segments: usize,
    },
    /// A `command_length` below the header's size or above the limit.
    #[error("command_length {command_length} out of range")]
    CommandLength {
        /// The length the header announced.
        command_length: usize,
    },
}
