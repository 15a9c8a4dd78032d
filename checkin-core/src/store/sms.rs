//! An SMS to the short number, handled in one transaction with its reply: the
//! check-in (or opt-out) and the answer commit together or not at all, so the
//! SMPP layer can acknowledge the SMSC only after both are safe.

use chrono::{DateTime, Utc};
use parser::Command;

use super::checkins::{lock_phones, PremisesCache};
use super::{Backend, Store, StoreError};
use crate::model::{NewCheckIn, NewMessage, Priority};
use crate::privacy::PhoneHash;
use crate::{texts, Channel, CodeError, Msisdn, ServiceZone, VenueCode};

/// Largest batch of SMS one transaction takes (group commit bound).
pub const SMS_BATCH_MAX: usize = 1024;

/// An SMS a visitor sent to the short number, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub from: Msisdn,
    pub text: String,
    pub received_at: DateTime<Utc>,
}

/// What the service did with one SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsOutcome {
    /// A new check-in; the confirmation is queued.
    CheckedIn { checkin_id: i64 },
    /// The same visit again inside the dedupe window (a redelivery or a repeat):
    /// nothing new recorded, no second confirmation.
    Duplicate { checkin_id: i64 },
    /// Consent withdrawn for this number; the confirmation is queued.
    OptedOut,
    /// Nothing recorded; the reply explains why (`reason`).
    Rejected { reason: Rejection },
}

/// Why an SMS did not check anybody in; each has its own reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    UnknownCode,
    Typo,
    TemplateCopied,
    WrongLength,
    InactivePremises,
    Help,
    Unrecognized,
}

impl Store {
    /// Handles a batch of SMS in one transaction: check-ins, opt-outs and every
    /// reply are committed together. On error nothing is committed and the caller
    /// should answer the SMSC with a temporary error so it redelivers.
    pub async fn handle_sms_batch(
        &self,
        batch: &[InboundSms],
        zone: &ServiceZone,
        now: DateTime<Utc>,
    ) -> Result<Vec<SmsOutcome>, StoreError> {
        if batch.len() > SMS_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {SMS_BATCH_MAX} messages"
            )));
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<PhoneHash> = batch.iter().map(|m| self.vault().hash(&m.from)).collect();
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            lock_phones(&mut tx, &hashes).await?;
        }
        let mut premises = PremisesCache::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for (sms, hash) in batch.iter().zip(&hashes) {
            let (outcome, reply) = match parser::parse(&sms.text) {
                Command::CheckIn { digits } => match VenueCode::from_digits(&digits.values()) {
                    Err(CodeError::CheckDigit) => {
                        (Rejection::Typo.into(), Some(texts::code_typo()))
                    }
                    Err(CodeError::WrongLength { digits }) => (
                        Rejection::WrongLength.into(),
                        Some(texts::wrong_length(digits)),
                    ),
                    Err(CodeError::InvalidCharacter) => {
                        (Rejection::Unrecognized.into(), Some(texts::unrecognized()))
                    }
                    Ok(code) => match premises.get(&mut tx, &code).await? {
                        None => (
                            Rejection::UnknownCode.into(),
                            Some(texts::code_not_found(&code)),
                        ),
                        Some(p) if !p.active => (
                            Rejection::InactivePremises.into(),
                            Some(texts::premises_inactive(&p)),
                        ),
                        Some(p) => {
                            let new = NewCheckIn {
                                phone: sms.from.clone(),
                                code,
                                channel: Channel::Sms,
                                at: sms.received_at,
                                // Texting a code is consenting to alerts (the poster says so).
                                consent: true,
                            };
                            let recorded = self.insert_if_new(&mut tx, &new, hash, p).await?;
                            let id = recorded.checkin.id;
                            if recorded.duplicate {
                                (SmsOutcome::Duplicate { checkin_id: id }, None)
                            } else {
                                let text = texts::confirmation(
                                    &recorded.premises,
                                    recorded.checkin.at,
                                    zone,
                                );
                                (SmsOutcome::CheckedIn { checkin_id: id }, Some(text))
                            }
                        }
                    },
                },
                Command::TemplateCopied => (
                    Rejection::TemplateCopied.into(),
                    Some(texts::template_copied()),
                ),
                Command::WrongLength { digits } => (
                    Rejection::WrongLength.into(),
                    Some(texts::wrong_length(digits)),
                ),
                Command::Help => (Rejection::Help.into(), Some(texts::help())),
                Command::OptOut => {
                    sqlx::query("UPDATE checkins SET consent = 0 WHERE phone_hash = $1")
                        .bind(&hash.0[..])
                        .execute(&mut *tx)
                        .await?;
                    (SmsOutcome::OptedOut, Some(texts::opted_out()))
                }
                Command::Unrecognized => {
                    (Rejection::Unrecognized.into(), Some(texts::unrecognized()))
                }
            };
            if let Some(text) = reply {
                let message = NewMessage {
                    recipient: sms.from.clone(),
                    text,
                    priority: Priority::Confirmation,
                };
                self.enqueue_in(&mut tx, &message, now).await?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl From<Rejection> for SmsOutcome {
    fn from(reason: Rejection) -> Self {
        SmsOutcome::Rejected { reason }
    }
}
