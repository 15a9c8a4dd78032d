//! The guard's token: what the confirmation's QR carries (`/c/{token}`). The
//! server signs (HMAC-SHA256, key derived from the service keys) the check-in
//! id, the premises id and the time of entry; no phone number inside. URL-safe
//! base64 without padding, 55 characters.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::otp::derive_key;
use crate::privacy::Keys;

/// Format version, the first byte signed.
const VERSION: u8 = 1;
/// Signed body: version, check-in id, premises id, time of entry (ms).
const BODY_BYTES: usize = 1 + 8 + 8 + 8;
/// Tag bytes kept of the HMAC: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;
const TOKEN_BYTES: usize = BODY_BYTES + TAG_BYTES;

/// What a token says: this check-in, at this premises, at this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardClaim {
    pub checkin_id: i64,
    pub premises_id: i64,
    pub at: DateTime<Utc>,
}

/// Why a token is not one we signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the token is not base64 of the right length")]
    Malformed,
    #[error("the token's signature does not match (altered or not ours)")]
    BadSignature,
}

/// Signs and opens guard tokens. Holds the HMAC already keyed (the key's
/// two padded blocks hashed once, not per token).
#[derive(Clone)]
pub struct GuardKey(Hmac<Sha256>);

impl fmt::Debug for GuardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardKey(..)")
    }
}

impl GuardKey {
    pub fn new(keys: &Keys) -> GuardKey {
        let key = derive_key(keys, "guard-token");
        GuardKey(<Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts any key length"))
    }

    fn tag(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(body);
        mac
    }

    /// The token for `claim`.
    pub fn sign(&self, claim: &GuardClaim) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&claim.checkin_id.to_be_bytes());
        bytes.extend_from_slice(&claim.premises_id.to_be_bytes());
        bytes.extend_from_slice(&claim.at.timestamp_millis().to_be_bytes());
        let tag = self.tag(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The claim a token we signed carries.
    pub fn open(&self, token: &str) -> Result<GuardClaim, GuardError> {
        if token.len() > 2 * TOKEN_BYTES {
            return Err(GuardError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| GuardError::Malformed)?;
        if bytes.len() != TOKEN_BYTES {
            return Err(GuardError::Malformed);
        }
        let (body, tag) = bytes.split_at(BODY_BYTES);
        self.tag(body)
            .verify_truncated_left(tag)
            .map_err(|_| GuardError::BadSignature)?;
        if body[0] != VERSION {
            return Err(GuardError::BadSignature);
        }
        let word = |k: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&body[1 + 8 * k..9 + 8 * k]);
            i64::from_be_bytes(w)
        };
        Ok(GuardClaim {
            checkin_id: word(0),
            premises_id: word(1),
            at: DateTime::from_timestamp_millis(word(2)).ok_or(GuardError::BadSignature)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> GuardClaim {
        GuardClaim {
            checkin_id: 42,
            premises_id: 7,
            at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn tokens_round_trip_and_any_altered_character_fails() {
        let key = GuardKey::new(&Keys::generate());
        let token = key.sign(&claim());
        assert_eq!(token.len(), 55);
        assert_eq!(key.open(&token), Ok(claim()));
        for i in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(key.open(&altered).is_err(), "position {i}");
        }
        assert_eq!(key.open("short"), Err(GuardError::Malformed));
        assert_eq!(key.open("не base64"), Err(GuardError::Malformed));
        let other = GuardKey::new(&Keys::generate());
        assert_eq!(other.open(&token), Err(GuardError::BadSignature));
    }
}
