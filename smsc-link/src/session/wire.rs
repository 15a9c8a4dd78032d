//! What both halves of a session use on the wire: writing a command,
//! the session's sequence numbers, and a map keyed by counters.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use futures::SinkExt;
use rusmpp::Command;
use tokio_util::codec::Framed;

use crate::{codec::LinkCodec, Error};

/// Largest sequence number before wrapping back to 1.
const SEQUENCE_MAX: u32 = 0x7fff_ffff;

/// Writes one command (responses, enquire_link, bind, unbind).
pub(crate) async fn write<IO>(
    framed: &mut Framed<IO, LinkCodec>,
    command: Command,
) -> Result<(), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    framed.send(command).await.map_err(Error::from)
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
