//! One-time codes of the web check-in: six random digits (`OtpCode`), hashed
//! under a key derived from the service keys (`OtpKey`) before they are stored,
//! and the limits every code lives under. Also `derive_key`, how the web's
//! other secrets (guard tokens, cookies, CSRF) come from the same two keys.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::Sha256;

use crate::privacy::{Keys, KEY_BYTES};

/// Digits in a one-time code.
pub const OTP_DIGITS: usize = 6;
/// How long a code may be entered, in seconds (5 minutes).
pub const OTP_LIFE_S_DEFAULT: u64 = 5 * 60;
/// Wrong entries a code survives; the next one needs a new code.
pub const OTP_ATTEMPTS_MAX: u32 = 5;
/// Bytes of random salt hashed with each code.
pub const OTP_SALT_BYTES: usize = 16;

/// A 32-byte key for one purpose, derived from the service's hash key by
/// HMAC-SHA256 over a label: one secret to keep, and a key leaked from one use
/// (say a cookie key in a crash dump) opens nothing else.
pub fn derive_key(keys: &Keys, label: &str) -> [u8; KEY_BYTES] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&keys.hash_key).expect("HMAC accepts any key length");
    mac.update(b"checkin/derive/v1/");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Why a text is not a one-time code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("a one-time code is {OTP_DIGITS} digits")]
    Malformed,
}

/// Six digits. `Debug` hides them, so a stray `{:?}` cannot log a code.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode([u8; OTP_DIGITS]);

impl OtpCode {
    /// A fresh uniform random code (from the OS's generator).
    pub fn generate() -> OtpCode {
        let mut rng = rand::rngs::OsRng;
        let mut digits = [0u8; OTP_DIGITS];
        for d in &mut digits {
            *d = b'0' + rng.gen_range(0..10u8);
        }
        OtpCode(digits)
    }

    /// Six digits; spaces and hyphens between them are ignored (`123 456`).
    pub fn parse(text: &str) -> Result<OtpCode, OtpError> {
        let mut digits = [0u8; OTP_DIGITS];
        let mut count = 0;
        for c in text.trim().chars() {
            match c {
                '0'..='9' if count < OTP_DIGITS => {
                    digits[count] = c as u8;
                    count += 1;
                }
                ' ' | '-' => {}
                _ => return Err(OtpError::Malformed),
            }
        }
        if count != OTP_DIGITS {
            return Err(OtpError::Malformed);
        }
        Ok(OtpCode(digits))
    }

    /// The digits, for the SMS text only.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits")
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

/// Hashes codes for storage (HMAC-SHA256 over salt and digits).
/// Holds the HMAC already keyed (the key's padded blocks hashed once).
#[derive(Clone)]
pub struct OtpKey(Hmac<Sha256>);

impl fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpKey(..)")
    }
}

impl OtpKey {
    pub fn new(keys: &Keys) -> OtpKey {
        let key = derive_key(keys, "otp");
        OtpKey(<Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts any key length"))
    }

    fn mac(&self, salt: &[u8], code: &OtpCode) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(salt);
        mac.update(&code.0);
        mac
    }

    /// A fresh salt and the code's hash under it.
    pub fn hash_new(&self, code: &OtpCode) -> ([u8; OTP_SALT_BYTES], [u8; 32]) {
        let mut salt = [0u8; OTP_SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        (salt, self.mac(&salt, code).finalize().into_bytes().into())
    }

    /// Whether `code` hashes to `hash` under `salt` (constant time).
    pub fn matches(&self, salt: &[u8], code: &OtpCode, hash: &[u8]) -> bool {
        self.mac(salt, code).verify_slice(hash).is_ok()
    }
}

/// The SMS that carries a code (kept here, beside the code, rather than in
/// `texts.rs`, so the web's text has one home with its limits). One segment.
pub fn sms_text(code: &OtpCode) -> String {
    format!("Код для входа: {}. Никому не сообщайте", code.as_str())
}

/// A stored code as an entry sees it, with what the entries of one group did
/// to it (the effects storage writes back: attempts added, spent when).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeState {
    /// The premises the code was issued for.
    pub premises_id: i64,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub attempts: u32,
    pub expires_at_ms: i64,
    pub used: bool,
    /// Entries of this group counted against it (wrong ones and the right one).
    pub attempts_added: u32,
    /// Set when an entry of this group spent it.
    pub used_at_ms: Option<i64>,
}

/// What one entry of a code comes to, before any visit is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryVerdict {
    /// The right code, now spent: record the visit.
    Right,
    /// Wrong; this many tries remain.
    Wrong {
        attempts_left: u32,
    },
    Expired,
    AttemptsExhausted,
    Used,
    /// No such code here (another premises' code counts as none).
    Unknown,
    /// The right code, but the premises stopped taking check-ins after it
    /// was sent: nothing spent, no try counted.
    InactivePremises,
    /// The right code for premises that no longer exist: a broken row.
    NoPremises,
}

/// The rule of a code entry, once: the code must be this premises', unused,
/// with tries left, alive at `at_ms`, and match; a wrong entry costs a try,
/// the right one spends the code (and counts as a try) if its premises
/// (`premises_open`: `None` when it has no row) still takes check-ins.
/// Updates `code` as the entry leaves it, so a later entry of the group sees it.
pub fn enter_code(
    code: &mut CodeState,
    premises_id: i64,
    premises_open: Option<bool>,
    entered: &OtpCode,
    at_ms: i64,
    key: &OtpKey,
) -> EntryVerdict {
    if code.premises_id != premises_id {
        return EntryVerdict::Unknown;
    }
    if code.used {
        return EntryVerdict::Used;
    }
    if code.attempts >= OTP_ATTEMPTS_MAX {
        return EntryVerdict::AttemptsExhausted;
    }
    if code.expires_at_ms <= at_ms {
        return EntryVerdict::Expired;
    }
    if !key.matches(&code.salt, entered, &code.hash) {
        code.attempts += 1;
        code.attempts_added += 1;
        return EntryVerdict::Wrong {
            attempts_left: OTP_ATTEMPTS_MAX - code.attempts,
        };
    }
    match premises_open {
        None => return EntryVerdict::NoPremises,
        Some(false) => return EntryVerdict::InactivePremises,
        Some(true) => {}
    }
    code.attempts += 1;
    code.attempts_added += 1;
    code.used = true;
    code.used_at_ms = Some(at_ms);
    EntryVerdict::Right
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sms_fits_one_segment() {
        let text = sms_text(&OtpCode::parse("123456").unwrap());
        assert_eq!(text, "Код для входа: 123456. Никому не сообщайте");
        assert!(text.chars().count() <= 70);
    }

    #[test]
    fn codes_parse_and_hide() {
        assert_eq!(OtpCode::parse(" 123-456 ").unwrap().as_str(), "123456");
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(OtpCode::parse(bad), Err(OtpError::Malformed), "{bad:?}");
        }
        let code = OtpCode::generate();
        assert_eq!(code.as_str().len(), OTP_DIGITS);
        assert!(!format!("{code:?}").contains(code.as_str()));
    }

    #[test]
    fn hashes_are_salted_and_keyed() {
        let keys = Keys::generate();
        let key = OtpKey::new(&keys);
        let code = OtpCode::parse("123456").unwrap();
        let (salt, hash) = key.hash_new(&code);
        assert!(key.matches(&salt, &code, &hash));
        assert!(!key.matches(&salt, &OtpCode::parse("123457").unwrap(), &hash));
        assert_ne!(key.hash_new(&code).1, hash, "a fresh salt each time");
        assert!(!OtpKey::new(&Keys::generate()).matches(&salt, &code, &hash));
        assert_ne!(derive_key(&keys, "a"), derive_key(&keys, "b"));
    }

    #[test]
    fn each_entry_comes_to_what_the_code_rule_says() {
        let key = OtpKey::new(&Keys {
            hash_key: [3; KEY_BYTES],
            encryption_key: [4; KEY_BYTES],
        });
        let right = OtpCode::parse("123456").unwrap();
        let wrong = OtpCode::parse("654321").unwrap();
        let (salt, hash) = key.hash_new(&right);
        let fresh = CodeState {
            premises_id: 1,
            salt: salt.to_vec(),
            hash: hash.to_vec(),
            attempts: 0,
            expires_at_ms: 1_000,
            used: false,
            attempts_added: 0,
            used_at_ms: None,
        };
        let with = |f: &dyn Fn(&mut CodeState)| {
            let mut c = fresh.clone();
            f(&mut c);
            c
        };
        let open = Some(true);
        // (name, code, premises, open, entered, at, verdict, attempts after, spent)
        let cases = [
            (
                "right",
                fresh.clone(),
                1,
                open,
                &right,
                10,
                EntryVerdict::Right,
                1,
                true,
            ),
            (
                "another premises' code",
                fresh.clone(),
                2,
                open,
                &right,
                10,
                EntryVerdict::Unknown,
                0,
                false,
            ),
            (
                "wrong",
                fresh.clone(),
                1,
                open,
                &wrong,
                10,
                EntryVerdict::Wrong {
                    attempts_left: OTP_ATTEMPTS_MAX - 1,
                },
                1,
                false,
            ),
            (
                "last try wrong",
                with(&|c| c.attempts = OTP_ATTEMPTS_MAX - 1),
                1,
                open,
                &wrong,
                10,
                EntryVerdict::Wrong { attempts_left: 0 },
                OTP_ATTEMPTS_MAX,
                false,
            ),
            (
                "no try left",
                with(&|c| c.attempts = OTP_ATTEMPTS_MAX),
                1,
                open,
                &right,
                10,
                EntryVerdict::AttemptsExhausted,
                OTP_ATTEMPTS_MAX,
                false,
            ),
            (
                "expired at its expiry",
                fresh.clone(),
                1,
                open,
                &right,
                1_000,
                EntryVerdict::Expired,
                0,
                false,
            ),
            (
                "used",
                with(&|c| c.used = true),
                1,
                open,
                &right,
                10,
                EntryVerdict::Used,
                0,
                true,
            ),
            (
                "premises closed: nothing spent",
                fresh.clone(),
                1,
                Some(false),
                &right,
                10,
                EntryVerdict::InactivePremises,
                0,
                false,
            ),
            (
                "premises closed, wrong code: a try",
                fresh.clone(),
                1,
                Some(false),
                &wrong,
                10,
                EntryVerdict::Wrong {
                    attempts_left: OTP_ATTEMPTS_MAX - 1,
                },
                1,
                false,
            ),
            (
                "premises gone",
                fresh.clone(),
                1,
                None,
                &right,
                10,
                EntryVerdict::NoPremises,
                0,
                false,
            ),
        ];
        for (name, mut code, premises, open, entered, at, verdict, attempts, spent) in cases {
            assert_eq!(
                enter_code(&mut code, premises, open, entered, at, &key),
                verdict,
                "{name}"
            );
            assert_eq!(code.attempts, attempts, "{name}: attempts");
            assert_eq!(code.used, spent, "{name}: spent");
        }
    }

    #[test]
    fn a_code_entered_twice_in_a_group_passes_once() {
        let key = OtpKey::new(&Keys {
            hash_key: [3; KEY_BYTES],
            encryption_key: [4; KEY_BYTES],
        });
        let right = OtpCode::parse("123456").unwrap();
        let (salt, hash) = key.hash_new(&right);
        let mut code = CodeState {
            premises_id: 1,
            salt: salt.to_vec(),
            hash: hash.to_vec(),
            attempts: 0,
            expires_at_ms: 1_000,
            used: false,
            attempts_added: 0,
            used_at_ms: None,
        };
        assert_eq!(
            enter_code(&mut code, 1, Some(true), &right, 5, &key),
            EntryVerdict::Right
        );
        assert_eq!(
            enter_code(&mut code, 1, Some(true), &right, 6, &key),
            EntryVerdict::Used
        );
        assert_eq!((code.attempts_added, code.used_at_ms), (1, Some(5)));
    }
}
