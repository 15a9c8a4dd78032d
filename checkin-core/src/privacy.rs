//! Phone numbers are never stored in clear: a keyed hash (HMAC-SHA256) finds a
//! visitor's rows, an authenticated encryption (XChaCha20-Poly1305) lets the
//! service send to them. Both keys come from configuration or a key file.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, AeadInPlace, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::msisdn::Msisdn;

/// Length of each key in bytes.
pub const KEY_BYTES: usize = 32;
/// Nonce length of XChaCha20-Poly1305; random nonces of this size never repeat in practice.
const NONCE_BYTES: usize = 24;
/// Poly1305 tag appended to every sealed number.
const TAG_BYTES: usize = 16;
/// Binds ciphertexts to their purpose (and format version).
const ASSOCIATED_DATA: &[u8] = b"checkin/msisdn/v1";

/// Why keys could not be loaded or a stored number not decrypted.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("a key must be {KEY_BYTES} bytes written as {} hex digits", KEY_BYTES * 2)]
    BadKey,
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is malformed: {reason}")]
    KeyFileFormat { path: String, reason: String },
    #[error("a stored phone number failed to decrypt (wrong key or corrupted row)")]
    Decrypt,
}

/// The two secret keys. `Debug` never prints them.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// HMAC key for look-up hashes.
    pub hash_key: [u8; KEY_BYTES],
    /// XChaCha20-Poly1305 key for the numbers the service sends to.
    pub encryption_key: [u8; KEY_BYTES],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// Parses a hex key.
pub fn parse_key(hex_text: &str) -> Result<[u8; KEY_BYTES], PrivacyError> {
    let bytes = hex::decode(hex_text.trim()).map_err(|_| PrivacyError::BadKey)?;
    bytes.try_into().map_err(|_| PrivacyError::BadKey)
}

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Keys {
        let mut keys = Keys {
            hash_key: [0; KEY_BYTES],
            encryption_key: [0; KEY_BYTES],
        };
        OsRng.fill_bytes(&mut keys.hash_key);
        OsRng.fill_bytes(&mut keys.encryption_key);
        keys
    }

    /// Reads `path` (two lines, `hash_key = "<hex>"` and `encryption_key = "<hex>"`), or
    /// creates it with fresh keys and 0600 permissions when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Keys, PrivacyError> {
        let shown = path.display().to_string();
        let io_err = |source| PrivacyError::KeyFile {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse_file(&text).map_err(|reason| PrivacyError::KeyFileFormat {
                path: shown.clone(),
                reason,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Keys::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(io_err)?;
                let text = format!(
                    "# checkin's phone-number keys: losing them makes stored numbers unreadable.\n\
                     hash_key = \"{}\"\nencryption_key = \"{}\"\n",
                    hex::encode(keys.hash_key),
                    hex::encode(keys.encryption_key)
                );
                file.write_all(text.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(keys)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    fn parse_file(text: &str) -> Result<Keys, String> {
        let mut hash_key = None;
        let mut encryption_key = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("expected `name = \"hex\"`, got {line:?}"))?;
            let value = value.trim().trim_matches('"');
            let key = parse_key(value).map_err(|e| e.to_string())?;
            match name.trim() {
                "hash_key" => hash_key = Some(key),
                "encryption_key" => encryption_key = Some(key),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        Ok(Keys {
            hash_key: hash_key.ok_or("hash_key is missing")?,
            encryption_key: encryption_key.ok_or("encryption_key is missing")?,
        })
    }
}

/// The keyed look-up hash of a phone number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneHash(pub [u8; 32]);

impl fmt::Debug for PhoneHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A phone number as stored: sealed by [`PhoneVault::seal`], readable only
/// through [`PhoneVault::open_phone`]. What a claimed outbox message carries,
/// so a claimed batch holds no number in clear; the sender opens each one
/// right before it is submitted. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPhone(Vec<u8>);

impl SealedPhone {
    /// Bytes read from a `*_sealed` column.
    pub fn from_stored(sealed: Vec<u8>) -> SealedPhone {
        SealedPhone(sealed)
    }

    /// The bytes to store (`nonce || ciphertext+tag`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedPhone(..)")
    }
}

/// Hashes and seals phone numbers with the service's keys.
#[derive(Clone)]
pub struct PhoneVault {
    /// The look-up hash's HMAC, already keyed (once, not per number).
    hash_mac: Hmac<Sha256>,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for PhoneVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneVault(..)")
    }
}

impl PhoneVault {
    pub fn new(keys: &Keys) -> PhoneVault {
        PhoneVault {
            hash_mac: <Hmac<Sha256> as Mac>::new_from_slice(&keys.hash_key)
                .expect("HMAC accepts any key length"),
            cipher: XChaCha20Poly1305::new((&keys.encryption_key).into()),
        }
    }

    /// The same number always gives the same hash (under the same key).
    pub fn hash(&self, phone: &Msisdn) -> PhoneHash {
        let mut mac = self.hash_mac.clone();
        mac.update(phone.as_str().as_bytes());
        PhoneHash(mac.finalize().into_bytes().into())
    }

    /// `nonce || ciphertext+tag`; a fresh random nonce each time.
    ///
    /// The nonce comes from the thread's CSPRNG (ChaCha, seeded and reseeded
    /// from the OS), not a system call per seal: a group commit seals two
    /// numbers per check-in. 192-bit random nonces do not collide in practice.
    pub fn seal(&self, phone: &Msisdn) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut rand::thread_rng());
        let msg = phone.as_str().as_bytes();
        let mut out = Vec::with_capacity(NONCE_BYTES + msg.len() + TAG_BYTES);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(msg);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, ASSOCIATED_DATA, &mut out[NONCE_BYTES..])
            .expect("encrypting a short buffer in memory cannot fail");
        out.extend_from_slice(&tag);
        out
    }

    /// The number sealed by [`PhoneVault::seal`].
    pub fn open(&self, sealed: &[u8]) -> Result<Msisdn, PrivacyError> {
        if sealed.len() < NONCE_BYTES {
            return Err(PrivacyError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: ASSOCIATED_DATA,
        };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| PrivacyError::Decrypt)?;
        let text = String::from_utf8(plain).map_err(|_| PrivacyError::Decrypt)?;
        // Sealed numbers were valid when sealed; accept whatever E.164 they hold.
        let policy = crate::msisdn::MsisdnPolicy {
            allow_international: true,
        };
        Msisdn::parse_with(&text, &policy).map_err(|_| PrivacyError::Decrypt)
    }

    /// The number inside a [`SealedPhone`]; open it where it is used and
    /// drop it after.
    pub fn open_phone(&self, sealed: &SealedPhone) -> Result<Msisdn, PrivacyError> {
        self.open(&sealed.0)
    }

    /// `phone` sealed as a [`SealedPhone`].
    pub fn seal_phone(&self, phone: &Msisdn) -> SealedPhone {
        SealedPhone(self.seal(phone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Msisdn {
        Msisdn::parse("+79161234567").unwrap()
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let a = PhoneVault::new(&Keys::generate());
        let b = PhoneVault::new(&Keys::generate());
        assert_eq!(a.hash(&phone()), a.hash(&phone()));
        assert_ne!(a.hash(&phone()), b.hash(&phone()));
    }

    #[test]
    fn seal_round_trips_and_hides_the_number() {
        let vault = PhoneVault::new(&Keys::generate());
        let sealed = vault.seal(&phone());
        assert_ne!(sealed, vault.seal(&phone()), "nonces must differ");
        assert!(!String::from_utf8_lossy(&sealed).contains("9161234567"));
        assert_eq!(vault.open(&sealed).unwrap(), phone());
    }

    #[test]
    fn a_sealed_phone_shows_nothing_and_opens_only_with_its_vault() {
        let vault = PhoneVault::new(&Keys::generate());
        let sealed = vault.seal_phone(&phone());
        assert_eq!(format!("{sealed:?}"), "SealedPhone(..)");
        assert_eq!(vault.open_phone(&sealed).unwrap(), phone());
        let stored = SealedPhone::from_stored(sealed.as_bytes().to_vec());
        assert_eq!(vault.open_phone(&stored).unwrap(), phone());
        let other = PhoneVault::new(&Keys::generate());
        assert!(matches!(
            other.open_phone(&sealed),
            Err(PrivacyError::Decrypt)
        ));
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let vault = PhoneVault::new(&Keys::generate());
        let mut sealed = vault.seal(&phone());
        let other = PhoneVault::new(&Keys::generate());
        assert!(matches!(other.open(&sealed), Err(PrivacyError::Decrypt)));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(vault.open(&sealed), Err(PrivacyError::Decrypt)));
        assert!(matches!(vault.open(&[1, 2, 3]), Err(PrivacyError::Decrypt)));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let created = Keys::load_or_create(&path).unwrap();
        let loaded = Keys::load_or_create(&path).unwrap();
        assert_eq!(created, loaded);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "hash_key = \"zz\"\n").unwrap();
        assert!(matches!(
            Keys::load_or_create(&path),
            Err(PrivacyError::KeyFileFormat { .. })
        ));
    }
}
