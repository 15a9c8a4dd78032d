//! What both halves of a session use on the wire: writing a command
//! within a deadline, the session's sequence numbers, and a map keyed by
//! counters.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use futures::SinkExt;
use rusmpp::Command;
use tokio::time::Duration;
use tokio_util::codec::Framed;

use crate::{codec::LinkCodec, telemetry::Refused, Error};

/// Largest sequence number before wrapping back to 1.
const SEQUENCE_MAX: u32 = 0x7fff_ffff;

/// Writes one command (responses, enquire_link, bind, unbind), giving up
/// when the SMSC has not taken it all within `limit`: one that stops reading
/// would otherwise hold the session in this write for good (TCP pushes
/// back, and nothing else of the session runs meanwhile).
pub(crate) async fn write<IO>(
    framed: &mut Framed<IO, LinkCodec>,
    command: Command,
    limit: Duration,
) -> Result<(), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    within(limit, framed.send(command)).await
}

/// `write` (one command, or the pump's batch) bounded by `limit`.
pub(crate) async fn within<T, E>(
    limit: Duration,
    write: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Error>
where
    Error: From<E>,
{
    match tokio::time::timeout(limit, write).await {
        Ok(written) => written.map_err(Error::from),
        Err(_) => {
            Refused::StalledWrite.count();
            Err(Error::Stalled("it stopped reading what the link writes"))
        }
    }
}

/// The sequence numbers of one session's requests (the bind took 1).
#[derive(Debug)]
pub(crate) struct Sequence(u32);

impl Default for Sequence {
    fn default() -> Self {
        Self(1)
    }
}

impl Sequence {
    /// The next number, wrapping back to 1 after [`SEQUENCE_MAX`].
    pub(crate) fn next(&mut self) -> u32 {
        self.0 = if self.0 >= SEQUENCE_MAX {
            1
        } else {
            self.0 + 1
        };
        self.0
    }
}

/// Hashes the session's integer keys (job ids, sequence numbers) with one
/// multiplication instead of SipHash: the keys are counters, and the maps
/// hold at most a window's worth of them.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;
