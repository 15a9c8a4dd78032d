//! The decision for a group of inbound SMS (and the USSD check-ins riding
//! the same group commit), without I/O: what each message comes to, its reply,
//! and the rows storage writes. Storage reads the facts ([`SmsFacts`]) first,
//! calls [`decide`], writes the effects in a few statements, then [`resolve`]s
//! the new rows' ids into outcomes. One path for every group, opt-outs
//! included.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parser::{CodeDigits, Command};

use crate::model::{Channel, Premises};
use crate::texts;
use crate::time_fmt::ServiceZone;
use crate::venue_code::{CodeError, VenueCode};
use crate::visits::{Seen, Visits};

/// A visit is answered at most once in this interval: a repeat of its code
/// sooner after its confirmation (or its last answered repeat) gets no SMS,
/// so an SMSC that redelivers an MO a second later causes no second SMS.
pub const REPEAT_REPLY_INTERVAL_MS: i64 = 60_000;

/// The visit an outcome is about (check-in, repeat or duplicate): where and
/// when, for a USSD final screen, which cannot wait for the SMS. Given for
/// USSD check-ins only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsVisit {
    pub premises: Premises,
    /// When the visit was recorded (a repeat's: the first visit's time).
    pub at: DateTime<Utc>,
}

/// What the service did with one SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsOutcome {
    /// A new check-in; the confirmation is queued.
    CheckedIn { checkin_id: i64 },
    /// The same visit again inside the dedupe window (a redelivery or a repeat)
    /// less than [`REPEAT_REPLY_INTERVAL_MS`] after its last answer: nothing
    /// new recorded, no SMS.
    Duplicate { checkin_id: i64 },
    /// The same visit again, at least [`REPEAT_REPLY_INTERVAL_MS`] after its
    /// last answer: nothing new recorded; answered with the first visit's
    /// address and time (`texts::already_checked_in`).
    Repeat { checkin_id: i64 },
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

impl From<Rejection> for SmsOutcome {
    fn from(reason: Rejection) -> Self {
        SmsOutcome::Rejected { reason }
    }
}

/// What one message came to once its group committed: what the SMS inbox
/// answers its submitter, and what the USSD dialog reads (`ussd::Dialog::stored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub outcome: SmsOutcome,
    /// The visit, for a USSD check-in (see `InputDecision::visit`).
    pub visit: Option<SmsVisit>,
}

/// What the decision needs to know, read by storage beforehand (in the
/// group's transaction, so nothing changes in between).
#[derive(Debug, Clone, Default)]
pub struct SmsFacts {
    /// Premises by venue code, for the codes [`codes`] names; `None`: no
    /// premises has that code. A code missing from the map counts as unknown.
    pub premises: HashMap<VenueCode, Option<Premises>>,
    /// Stored visits of the group's phones, at least those [`known_window`]
    /// describes. More is harmless: the decision checks premises, phone and
    /// time itself.
    pub known: Vec<KnownVisit>,
}

/// A stored check-in an input of the group may repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVisit {
    pub id: i64,
    pub premises_id: i64,
    pub phone_hash: [u8; 32],
    pub at_ms: i64,
    /// When a repeat of it was last answered; `None`: only its confirmation.
    pub replied_at_ms: Option<i64>,
}

/// One message of the group, in arrival order.
#[derive(Debug, Clone, Copy)]
pub struct SmsInput<'a> {
    pub command: &'a Command,
    pub phone_hash: [u8; 32],
    /// When it arrived. The exact time rather than milliseconds: the
    /// confirmation and a USSD screen show it as received.
    pub at: DateTime<Utc>,
    /// `Sms`, or `Ussd` (which alone gets an [`SmsVisit`]).
    pub channel: Channel,
    /// Whether its reply goes out as an SMS (always for an SMS; for USSD,
    /// `ussd_confirm_by_sms`).
    pub reply_by_sms: bool,
}

/// The service's settings the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The same phone at the same premises less than this apart is one visit.
    pub dedupe_window_ms: i64,
    /// The zone the replies show times in.
    pub zone: ServiceZone,
}

/// The stored visits [`decide`] needs: those of `phones` checked in strictly
/// between `after_ms` and `before_ms` (any premises).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownWindow {
    pub after_ms: i64,
    pub before_ms: i64,
    /// Sorted, without repeats.
    pub phones: Vec<[u8; 32]>,
}

/// A visit an outcome is about: a stored one, or one the group inserts (its
/// id is known only after the insert; see [`resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitRef {
    /// A stored check-in, by id.
    Known(i64),
    /// The new check-in at this index of [`SmsDecision::new_visits`].
    New(usize),
}

/// A check-in row to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVisit {
    /// The input it comes from (its phone, channel and time).
    pub input: usize,
    pub premises_id: i64,
    /// Texting a code is consenting to alerts (the poster says so), unless
    /// the same phone opts out later in the group: the in-order path's
    /// opt-out reached the rows inserted before it.
    pub consent: bool,
}

/// What one input comes to, before the new rows have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOutcome {
    /// A new visit (always a [`VisitRef::New`]); confirmed.
    CheckedIn(VisitRef),
    /// The same visit again, answered (see [`REPEAT_REPLY_INTERVAL_MS`]).
    Repeat(VisitRef),
    /// The same visit again, answered too recently: no reply.
    Duplicate(VisitRef),
    OptedOut,
    Rejected(Rejection),
}

/// The decision about one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDecision {
    pub outcome: InputOutcome,
    /// The SMS to queue to its sender; `None` when there is none or it is
    /// not sent by SMS (`reply_by_sms`).
    pub reply: Option<String>,
    /// For a USSD check-in, repeat or duplicate: the visit, for its screen.
    pub visit: Option<SmsVisit>,
}

/// What a group comes to, as effects storage applies in this order:
/// `opt_outs`, then `new_visits` (one insert), then `replied` and the replies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsDecision {
    /// One per input, in the group's order.
    pub inputs: Vec<InputDecision>,
    /// Rows to insert, in arrival order.
    pub new_visits: Vec<NewVisit>,
    /// Phones whose stored check-ins lose consent (before the insert, so the
    /// new rows keep their own `consent`); no phone twice.
    pub opt_outs: Vec<[u8; 32]>,
    /// Answered repeats: (visit, when). Storage keeps each visit's latest.
    pub replied: Vec<(VisitRef, i64)>,
}

/// A decision with the new rows' ids filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// One per input, in the group's order.
    pub outcomes: Vec<SmsOutcome>,
    /// One per input: [`InputDecision::visit`].
    pub visits: Vec<Option<SmsVisit>>,
    /// (input index, text) of the SMS replies to queue, in the group's order.
    pub replies: Vec<(usize, String)>,
    /// Answered repeats: (check-in id, when) for `replied_at_ms`.
    pub replied: Vec<(i64, i64)>,
}

/// Facts that cannot be right: storage reports them as corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("a stored check-in's time {0} ms is out of range")]
    TimeOutOfRange(i64),
    #[error("{got} ids for {expected} new check-ins")]
    IdCount { expected: usize, got: usize },
}

/// The valid venue codes the group names, sorted, without repeats: what
/// [`SmsFacts::premises`] must hold.
pub fn codes(inputs: &[SmsInput<'_>]) -> Vec<VenueCode> {
    let mut codes: Vec<VenueCode> = inputs
        .iter()
        .filter_map(|input| match input.command {
            Command::CheckIn { digits } => code_of(digits).ok(),
            _ => None,
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// The stored visits the group's check-ins may repeat (`None`: it has no
/// check-in at open premises, so none are needed).
pub fn known_window(
    premises: &HashMap<VenueCode, Option<Premises>>,
    inputs: &[SmsInput<'_>],
    rules: &Rules,
) -> Option<KnownWindow> {
    let candidates = || {
        inputs.iter().filter(|input| {
            matches!(input.command, Command::CheckIn { digits }
                if matches!(lookup(premises, digits), Ok(Lookup::Open(_))))
        })
    };
    let times = candidates().map(|input| input.at.timestamp_millis());
    let min_at = times.clone().min()?;
    let max_at = times.max()?;
    let mut phones: Vec<[u8; 32]> = candidates().map(|input| input.phone_hash).collect();
    phones.sort_unstable();
    phones.dedup();
    Some(KnownWindow {
        after_ms: min_at.saturating_sub(rules.dedupe_window_ms),
        before_ms: max_at.saturating_add(rules.dedupe_window_ms),
        phones,
    })
}

/// Decides the group in arrival order, as if each message were handled
/// alone after the ones before it: a later message sees the visits and the
/// opt-outs of the earlier ones. Visits are hashed by (premises, phone), so a
/// message looks only at its own phone's visits there, not the whole group.
pub fn decide(
    facts: &SmsFacts,
    inputs: &[SmsInput<'_>],
    rules: &Rules,
) -> Result<SmsDecision, DecisionError> {
    // Each phone's last opt-out: its new visits before it get no consent.
    let mut last_opt_out: HashMap<[u8; 32], usize> = HashMap::new();
    let mut opt_outs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if matches!(input.command, Command::OptOut)
            && last_opt_out.insert(input.phone_hash, i).is_none()
        {
            opt_outs.push(input.phone_hash);
        }
    }

    // The dedupe rule (`visits.rs`) over the stored visits.
    let mut visits = Visits::new(
        rules.dedupe_window_ms,
        facts
            .known
            .iter()
            .map(|v| (v.id, v.premises_id, v.phone_hash, v.at_ms)),
    );
    // When each visit was last answered (its confirmation, or its latest
    // answered repeat): the stored ones at 0.., the new ones appended.
    let mut last_answer: Vec<i64> = facts
        .known
        .iter()
        .map(|v| v.replied_at_ms.unwrap_or(v.at_ms))
        .collect();

    let mut new_visits: Vec<NewVisit> = Vec::new();
    let mut replied = Vec::new();
    let mut decided = Vec::with_capacity(inputs.len());

    for (i, input) in inputs.iter().enumerate() {
        let p = match intent(&facts.premises, input.command) {
            Intent::CheckIn(p) => p,
            Intent::Reply(reason, text) => {
                decided.push(InputDecision {
                    outcome: InputOutcome::Rejected(reason),
                    reply: Some(text).filter(|_| input.reply_by_sms),
                    visit: None,
                });
                continue;
            }
            Intent::OptOut => {
                decided.push(InputDecision {
                    outcome: InputOutcome::OptedOut,
                    reply: Some(texts::opted_out()).filter(|_| input.reply_by_sms),
                    visit: None,
                });
                continue;
            }
        };
        let at = input.at.timestamp_millis();
        // The visit this one repeats, if any: (visit, its last_answer slot,
        // its first time).
        let again = match visits.find(p.id, &input.phone_hash, at) {
            Some(Seen::Stored(k)) => Some((
                VisitRef::Known(facts.known[k].id),
                k,
                from_ms(facts.known[k].at_ms)?,
            )),
            Some(Seen::New(n)) => Some((
                VisitRef::New(n),
                facts.known.len() + n,
                inputs[new_visits[n].input].at,
            )),
            None => None,
        };
        let (outcome, first_at, text) = match again {
            // Answered when its last answer is old enough; it then moves here.
            Some((visit, slot, first_at)) => {
                if at.saturating_sub(last_answer[slot]) >= REPEAT_REPLY_INTERVAL_MS {
                    last_answer[slot] = at;
                    replied.push((visit, at));
                    let text = texts::already_checked_in(p, first_at, &rules.zone);
                    (InputOutcome::Repeat(visit), first_at, Some(text))
                } else {
                    (InputOutcome::Duplicate(visit), first_at, None)
                }
            }
            None => {
                let n = new_visits.len();
                new_visits.push(NewVisit {
                    input: i,
                    premises_id: p.id,
                    consent: last_opt_out.get(&input.phone_hash).is_none_or(|&o| o < i),
                });
                last_answer.push(at);
                visits.add(p.id, &input.phone_hash, at);
                let text = texts::confirmation(p, input.at, &rules.zone);
                (
                    InputOutcome::CheckedIn(VisitRef::New(n)),
                    input.at,
                    Some(text),
                )
            }
        };
        decided.push(InputDecision {
            outcome,
            reply: text.filter(|_| input.reply_by_sms),
            // Only a USSD screen needs it (an SMS's reply is its text).
            visit: (input.channel == Channel::Ussd).then(|| SmsVisit {
                premises: p.clone(),
                at: first_at,
            }),
        });
    }
    Ok(SmsDecision {
        inputs: decided,
        new_visits,
        opt_outs,
        replied,
    })
}

/// Turns the decision's visit refs into ids once the new rows are inserted:
/// `new_ids[k]` is the id of `decision.new_visits[k]`.
pub fn resolve(decision: SmsDecision, new_ids: &[i64]) -> Result<Resolved, DecisionError> {
    if new_ids.len() != decision.new_visits.len() {
        return Err(DecisionError::IdCount {
            expected: decision.new_visits.len(),
            got: new_ids.len(),
        });
    }
    let id = |visit: VisitRef| match visit {
        VisitRef::Known(id) => id,
        VisitRef::New(n) => new_ids[n],
    };
    let mut resolved = Resolved {
        outcomes: Vec::with_capacity(decision.inputs.len()),
        visits: Vec::with_capacity(decision.inputs.len()),
        replies: Vec::new(),
        replied: decision
            .replied
            .iter()
            .map(|&(visit, at)| (id(visit), at))
            .collect(),
    };
    for (i, input) in decision.inputs.into_iter().enumerate() {
        resolved.outcomes.push(match input.outcome {
            InputOutcome::CheckedIn(v) => SmsOutcome::CheckedIn { checkin_id: id(v) },
            InputOutcome::Repeat(v) => SmsOutcome::Repeat { checkin_id: id(v) },
            InputOutcome::Duplicate(v) => SmsOutcome::Duplicate { checkin_id: id(v) },
            InputOutcome::OptedOut => SmsOutcome::OptedOut,
            InputOutcome::Rejected(reason) => reason.into(),
        });
        resolved.visits.push(input.visit);
        if let Some(text) = input.reply {
            resolved.replies.push((i, text));
        }
    }
    Ok(resolved)
}

fn from_ms(ms: i64) -> Result<DateTime<Utc>, DecisionError> {
    DateTime::from_timestamp_millis(ms).ok_or(DecisionError::TimeOutOfRange(ms))
}

fn code_of(digits: &CodeDigits) -> Result<VenueCode, CodeError> {
    VenueCode::from_digits(&digits.values())
}

/// What a valid code names.
enum Lookup<'f> {
    Open(&'f Premises),
    Closed(&'f Premises),
    Unknown(VenueCode),
}

fn lookup<'f>(
    premises: &'f HashMap<VenueCode, Option<Premises>>,
    digits: &CodeDigits,
) -> Result<Lookup<'f>, CodeError> {
    let code = code_of(digits)?;
    Ok(match premises.get(&code).and_then(Option::as_ref) {
        None => Lookup::Unknown(code),
        Some(p) if !p.active => Lookup::Closed(p),
        Some(p) => Lookup::Open(p),
    })
}

/// What one message asks for, once its code (if any) is looked up.
enum Intent<'f> {
    /// Nothing to record; answer with this text.
    Reply(Rejection, String),
    /// A check-in at these open premises.
    CheckIn(&'f Premises),
    /// Withdraw consent.
    OptOut,
}

fn intent<'f>(premises: &'f HashMap<VenueCode, Option<Premises>>, command: &Command) -> Intent<'f> {
    match command {
        Command::CheckIn { digits } => match lookup(premises, digits) {
            Err(CodeError::CheckDigit) => Intent::Reply(Rejection::Typo, texts::code_typo()),
            Err(CodeError::WrongLength { digits }) => {
                Intent::Reply(Rejection::WrongLength, texts::wrong_length(digits))
            }
            Err(CodeError::InvalidCharacter) => {
                Intent::Reply(Rejection::Unrecognized, texts::unrecognized())
            }
            Ok(Lookup::Unknown(code)) => {
                Intent::Reply(Rejection::UnknownCode, texts::code_not_found(&code))
            }
            Ok(Lookup::Closed(p)) => {
                Intent::Reply(Rejection::InactivePremises, texts::premises_inactive(p))
            }
            Ok(Lookup::Open(p)) => Intent::CheckIn(p),
        },
        Command::TemplateCopied => {
            Intent::Reply(Rejection::TemplateCopied, texts::template_copied())
        }
        Command::WrongLength { digits } => {
            Intent::Reply(Rejection::WrongLength, texts::wrong_length(*digits))
        }
        Command::Help => Intent::Reply(Rejection::Help, texts::help()),
        Command::OptOut => Intent::OptOut,
        Command::Unrecognized => Intent::Reply(Rejection::Unrecognized, texts::unrecognized()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const WINDOW_MS: i64 = 10 * 60 * 1000;

    fn rules() -> Rules {
        Rules {
            dedupe_window_ms: WINDOW_MS,
            zone: ServiceZone::default(),
        }
    }

    /// `secs` after a fixed moment.
    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn ms(secs: i64) -> i64 {
        t(secs).timestamp_millis()
    }

    fn phone(n: u8) -> [u8; 32] {
        [n; 32]
    }

    /// The valid code beginning with these eight digits.
    fn code(body: &str) -> VenueCode {
        (0..=9)
            .find_map(|d| VenueCode::parse(&format!("{body}{d}")).ok())
            .unwrap()
    }

    fn premises(id: i64, body: &str, address: &str, active: bool) -> Premises {
        Premises {
            id,
            org_id: 1,
            code: code(body),
            address: address.into(),
            sms_label: None,
            kind: "кафе".into(),
            stay_minutes: 60,
            active,
            created_at: t(-86_400),
        }
    }

    struct Fixture {
        p: Premises,
        q: Premises,
        closed: Premises,
        unknown: VenueCode,
    }

    fn fixture() -> Fixture {
        Fixture {
            p: premises(1, "57209413", "ул. Тверская, 13", true),
            q: premises(2, "12345678", "пр. Мира, 1", true),
            closed: premises(3, "87654321", "ул. Закрытая, 2", false),
            unknown: code("11111111"),
        }
    }

    fn facts(f: &Fixture, known: Vec<KnownVisit>) -> SmsFacts {
        let mut premises = HashMap::new();
        for p in [&f.p, &f.q, &f.closed] {
            premises.insert(p.code, Some(p.clone()));
        }
        premises.insert(f.unknown, None);
        SmsFacts { premises, known }
    }

    fn known(id: i64, p: &Premises, who: u8, secs: i64, replied: Option<i64>) -> KnownVisit {
        KnownVisit {
            id,
            premises_id: p.id,
            phone_hash: phone(who),
            at_ms: ms(secs),
            replied_at_ms: replied.map(ms),
        }
    }

    /// A message of the table: who, what text, when, by which channel.
    struct In {
        who: u8,
        text: String,
        secs: i64,
        channel: Channel,
        reply_by_sms: bool,
    }

    fn sms(who: u8, text: impl Into<String>, secs: i64) -> In {
        In {
            who,
            text: text.into(),
            secs,
            channel: Channel::Sms,
            reply_by_sms: true,
        }
    }

    fn ussd(who: u8, p: &Premises, secs: i64, reply_by_sms: bool) -> In {
        In {
            who,
            text: p.code.digits(),
            secs,
            channel: Channel::Ussd,
            reply_by_sms,
        }
    }

    fn checkin(p: &Premises) -> String {
        format!("ВХОД*{}", p.code)
    }

    fn decided(outcome: InputOutcome, reply: Option<String>) -> InputDecision {
        InputDecision {
            outcome,
            reply,
            visit: None,
        }
    }

    fn rejected(reason: Rejection, reply: String) -> InputDecision {
        decided(InputOutcome::Rejected(reason), Some(reply))
    }

    fn new(input: usize, p: &Premises, consent: bool) -> NewVisit {
        NewVisit {
            input,
            premises_id: p.id,
            consent,
        }
    }

    struct Case {
        name: &'static str,
        known: Vec<KnownVisit>,
        inputs: Vec<In>,
        want: SmsDecision,
    }

    fn run(f: &Fixture, known: Vec<KnownVisit>, inputs: &[In]) -> SmsDecision {
        let commands: Vec<Command> = inputs.iter().map(|m| parser::parse(&m.text)).collect();
        let inputs: Vec<SmsInput<'_>> = inputs
            .iter()
            .zip(&commands)
            .map(|(m, command)| SmsInput {
                command,
                phone_hash: phone(m.who),
                at: t(m.secs),
                channel: m.channel,
                reply_by_sms: m.reply_by_sms,
            })
            .collect();
        decide(&facts(f, known), &inputs, &rules()).unwrap()
    }

    #[test]
    fn each_group_comes_to_its_decision() {
        let f = fixture();
        let (p, q, zone) = (&f.p, &f.q, &ServiceZone::default());
        let mut typo: Vec<char> = p.code.digits().chars().collect();
        typo[8] = if typo[8] == '0' { '1' } else { '0' };
        let typo: String = typo.into_iter().collect();
        let confirmed = |p: &Premises, secs: i64, n: usize| {
            decided(
                InputOutcome::CheckedIn(VisitRef::New(n)),
                Some(texts::confirmation(p, t(secs), zone)),
            )
        };
        let repeat = |p: &Premises, first_secs: i64, visit: VisitRef| {
            decided(
                InputOutcome::Repeat(visit),
                Some(texts::already_checked_in(p, t(first_secs), zone)),
            )
        };
        let duplicate = |visit: VisitRef| decided(InputOutcome::Duplicate(visit), None);
        let opted_out = || decided(InputOutcome::OptedOut, Some(texts::opted_out()));

        let cases = vec![
            Case {
                name: "new check-in",
                known: vec![],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![confirmed(p, 0, 0)],
                    new_visits: vec![new(0, p, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "unknown code",
                known: vec![],
                inputs: vec![sms(1, format!("ВХОД*{}", f.unknown), 0)],
                want: SmsDecision {
                    inputs: vec![rejected(
                        Rejection::UnknownCode,
                        texts::code_not_found(&f.unknown),
                    )],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "typo",
                known: vec![],
                inputs: vec![sms(1, format!("ВХОД*{typo}"), 0)],
                want: SmsDecision {
                    inputs: vec![rejected(Rejection::Typo, texts::code_typo())],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "wrong length",
                known: vec![],
                inputs: vec![sms(1, "ВХОД*123-456-78", 0)],
                want: SmsDecision {
                    inputs: vec![rejected(Rejection::WrongLength, texts::wrong_length(8))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "template copied",
                known: vec![],
                inputs: vec![sms(1, "ВХОД*ХХХ-ХХХ-ХХХ", 0)],
                want: SmsDecision {
                    inputs: vec![rejected(
                        Rejection::TemplateCopied,
                        texts::template_copied(),
                    )],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "help",
                known: vec![],
                inputs: vec![sms(1, "помощь", 0)],
                want: SmsDecision {
                    inputs: vec![rejected(Rejection::Help, texts::help())],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "unrecognized",
                known: vec![],
                inputs: vec![sms(1, "привет", 0)],
                want: SmsDecision {
                    inputs: vec![rejected(Rejection::Unrecognized, texts::unrecognized())],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "inactive premises",
                known: vec![],
                inputs: vec![sms(1, checkin(&f.closed), 0)],
                want: SmsDecision {
                    inputs: vec![rejected(
                        Rejection::InactivePremises,
                        texts::premises_inactive(&f.closed),
                    )],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "duplicate within the window and the repeat interval is silent",
                known: vec![known(7, p, 1, -30, None)],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![duplicate(VisitRef::Known(7))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "repeat 60 s after the confirmation is answered with the first time",
                known: vec![known(7, p, 1, -60, None)],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![repeat(p, -60, VisitRef::Known(7))],
                    replied: vec![(VisitRef::Known(7), ms(0))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "repeat soon after an answered repeat is silent",
                known: vec![known(7, p, 1, -300, Some(-30))],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![duplicate(VisitRef::Known(7))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "the earliest stored visit wins, ties by id",
                known: vec![
                    known(5, p, 1, -100, None),
                    known(9, p, 1, -300, None),
                    known(8, p, 1, -300, None),
                    // Another phone, other premises: not the same visit.
                    known(2, p, 2, -400, None),
                    known(3, q, 1, -400, None),
                ],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![repeat(p, -300, VisitRef::Known(8))],
                    replied: vec![(VisitRef::Known(8), ms(0))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "repeats inside the group are the earlier new visit",
                known: vec![],
                inputs: vec![
                    sms(1, checkin(p), 0),
                    sms(1, checkin(p), 10),
                    sms(1, checkin(p), 70),
                    // 30 s after the answered repeat: silent again.
                    sms(1, checkin(p), 100),
                ],
                want: SmsDecision {
                    inputs: vec![
                        confirmed(p, 0, 0),
                        duplicate(VisitRef::New(0)),
                        repeat(p, 0, VisitRef::New(0)),
                        duplicate(VisitRef::New(0)),
                    ],
                    new_visits: vec![new(0, p, true)],
                    replied: vec![(VisitRef::New(0), ms(70))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "a stored visit a whole window before is another visit",
                known: vec![known(7, p, 1, -WINDOW_MS / 1000, None)],
                inputs: vec![sms(1, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![confirmed(p, 0, 0)],
                    new_visits: vec![new(0, p, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "a new visit a whole window later in the group is another visit",
                known: vec![],
                inputs: vec![sms(1, checkin(p), 0), sms(1, checkin(p), WINDOW_MS / 1000)],
                want: SmsDecision {
                    inputs: vec![confirmed(p, 0, 0), confirmed(p, WINDOW_MS / 1000, 1)],
                    new_visits: vec![new(0, p, true), new(1, p, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "two premises, same phone: two visits",
                known: vec![],
                inputs: vec![sms(1, checkin(p), 0), sms(1, checkin(q), 10)],
                want: SmsDecision {
                    inputs: vec![confirmed(p, 0, 0), confirmed(q, 10, 1)],
                    new_visits: vec![new(0, p, true), new(1, q, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "two phones, same premises: two visits",
                known: vec![],
                inputs: vec![sms(1, checkin(p), 0), sms(2, checkin(p), 0)],
                want: SmsDecision {
                    inputs: vec![confirmed(p, 0, 0), confirmed(p, 0, 1)],
                    new_visits: vec![new(0, p, true), new(1, p, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "an opt-out withdraws the consent of the check-ins before it only",
                known: vec![],
                inputs: vec![
                    sms(1, checkin(p), 0),
                    sms(2, checkin(p), 0),
                    sms(1, "СТОП", 10),
                    sms(1, checkin(q), 20),
                ],
                want: SmsDecision {
                    inputs: vec![
                        confirmed(p, 0, 0),
                        confirmed(p, 0, 1),
                        opted_out(),
                        confirmed(q, 20, 2),
                    ],
                    new_visits: vec![new(0, p, false), new(1, p, true), new(3, q, true)],
                    opt_outs: vec![phone(1)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "a check-in after an opt-out keeps its consent",
                known: vec![known(7, q, 1, -3600, None)],
                inputs: vec![sms(1, "стоп", 0), sms(1, checkin(p), 10)],
                want: SmsDecision {
                    inputs: vec![opted_out(), confirmed(p, 10, 0)],
                    new_visits: vec![new(1, p, true)],
                    opt_outs: vec![phone(1)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "the last of two opt-outs counts; each phone is opted out once",
                known: vec![],
                inputs: vec![
                    sms(1, "СТОП", 0),
                    sms(1, checkin(p), 10),
                    sms(1, "СТОП", 20),
                    sms(1, checkin(p), 30),
                ],
                want: SmsDecision {
                    inputs: vec![
                        opted_out(),
                        confirmed(p, 10, 0),
                        opted_out(),
                        duplicate(VisitRef::New(0)),
                    ],
                    new_visits: vec![new(1, p, false)],
                    opt_outs: vec![phone(1)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "USSD without SMS confirmation: its visit, no reply",
                known: vec![],
                inputs: vec![ussd(1, p, 0, false)],
                want: SmsDecision {
                    inputs: vec![InputDecision {
                        outcome: InputOutcome::CheckedIn(VisitRef::New(0)),
                        reply: None,
                        visit: Some(SmsVisit {
                            premises: p.clone(),
                            at: t(0),
                        }),
                    }],
                    new_visits: vec![new(0, p, true)],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "USSD repeat: the first visit's time, on screen and by SMS",
                known: vec![known(7, p, 1, -120, None)],
                inputs: vec![ussd(1, p, 0, true)],
                want: SmsDecision {
                    inputs: vec![InputDecision {
                        visit: Some(SmsVisit {
                            premises: p.clone(),
                            at: t(-120),
                        }),
                        ..repeat(p, -120, VisitRef::Known(7))
                    }],
                    replied: vec![(VisitRef::Known(7), ms(0))],
                    ..SmsDecision::default()
                },
            },
            Case {
                name: "USSD duplicate of an SMS check-in in the group: that visit",
                known: vec![],
                inputs: vec![sms(1, checkin(p), 0), ussd(1, p, 5, false)],
                want: SmsDecision {
                    inputs: vec![
                        confirmed(p, 0, 0),
                        InputDecision {
                            visit: Some(SmsVisit {
                                premises: p.clone(),
                                at: t(0),
                            }),
                            ..duplicate(VisitRef::New(0))
                        },
                    ],
                    new_visits: vec![new(0, p, true)],
                    ..SmsDecision::default()
                },
            },
        ];
        for case in cases {
            let got = run(&f, case.known, &case.inputs);
            assert_eq!(got.inputs, case.want.inputs, "{}: per input", case.name);
            assert_eq!(got.new_visits, case.want.new_visits, "{}: new", case.name);
            assert_eq!(got.opt_outs, case.want.opt_outs, "{}: opt-outs", case.name);
            assert_eq!(got.replied, case.want.replied, "{}: replied", case.name);
        }
    }

    #[test]
    fn resolve_puts_the_new_ids_in() {
        let f = fixture();
        let decision = run(
            &f,
            vec![known(7, &f.q, 1, -120, None)],
            &[
                sms(1, checkin(&f.p), 0),
                sms(1, checkin(&f.p), 70),
                sms(1, checkin(&f.q), 75),
                sms(1, "СТОП", 80),
                ussd(2, &f.p, 90, false),
                sms(2, "?", 95),
            ],
        );
        let visits: Vec<_> = decision.inputs.iter().map(|d| d.visit.clone()).collect();
        let texts: Vec<_> = decision.inputs.iter().map(|d| d.reply.clone()).collect();
        assert_eq!(
            resolve(decision.clone(), &[41]),
            Err(DecisionError::IdCount {
                expected: 2,
                got: 1
            })
        );
        let resolved = resolve(decision, &[41, 42]).unwrap();
        assert_eq!(
            resolved.outcomes,
            vec![
                SmsOutcome::CheckedIn { checkin_id: 41 },
                SmsOutcome::Repeat { checkin_id: 41 },
                SmsOutcome::Repeat { checkin_id: 7 },
                SmsOutcome::OptedOut,
                SmsOutcome::CheckedIn { checkin_id: 42 },
                Rejection::Help.into(),
            ]
        );
        assert_eq!(resolved.replied, vec![(41, ms(70)), (7, ms(75))]);
        assert_eq!(resolved.visits, visits);
        // The USSD check-in is not confirmed by SMS: no reply for input 4.
        let want: Vec<(usize, String)> = texts
            .into_iter()
            .enumerate()
            .filter_map(|(i, text)| text.map(|text| (i, text)))
            .collect();
        assert_eq!(
            want.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 5]
        );
        assert_eq!(resolved.replies, want);
    }

    #[test]
    fn storage_is_told_what_to_read() {
        let f = fixture();
        let texts = [
            checkin(&f.q),
            checkin(&f.p),
            format!("ВХОД*{}", f.unknown),
            checkin(&f.closed),
            checkin(&f.p),
            "СТОП".into(),
        ];
        let commands: Vec<Command> = texts.iter().map(|text| parser::parse(text)).collect();
        let inputs: Vec<SmsInput<'_>> = commands
            .iter()
            .enumerate()
            .map(|(i, command)| SmsInput {
                command,
                phone_hash: phone(i as u8 % 3),
                at: t(i as i64 * 10),
                channel: Channel::Sms,
                reply_by_sms: true,
            })
            .collect();
        let mut want = vec![f.p.code, f.q.code, f.unknown, f.closed.code];
        want.sort_unstable();
        assert_eq!(codes(&inputs), want);
        // Only check-ins at open premises (inputs 0, 1 and 4) need stored visits.
        assert_eq!(
            known_window(&facts(&f, vec![]).premises, &inputs, &rules()),
            Some(KnownWindow {
                after_ms: ms(0) - WINDOW_MS,
                before_ms: ms(40) + WINDOW_MS,
                phones: vec![phone(0), phone(1)],
            })
        );
        assert_eq!(
            known_window(&facts(&f, vec![]).premises, &inputs[2..4], &rules()),
            None
        );
    }

    #[test]
    fn a_stored_time_out_of_range_is_an_error() {
        let f = fixture();
        let command = parser::parse(&checkin(&f.p));
        let input = SmsInput {
            command: &command,
            phone_hash: phone(1),
            at: t(0),
            channel: Channel::Sms,
            reply_by_sms: true,
        };
        let mut visit = known(7, &f.p, 1, 0, None);
        visit.at_ms = i64::MAX;
        let rules = Rules {
            dedupe_window_ms: i64::MAX,
            ..rules()
        };
        assert_eq!(
            decide(&facts(&f, vec![visit]), &[input], &rules),
            Err(DecisionError::TimeOutOfRange(i64::MAX))
        );
    }

    /// A big group: each phone's repeats find its one visit (every 20 s over
    /// 400 s, all inside the window), answered once a minute.
    #[test]
    fn a_large_group_of_many_phones() {
        let f = fixture();
        let inputs: Vec<In> = (0..4000)
            .map(|i| sms((i % 200) as u8, checkin(&f.p), i64::from(i / 200) * 20))
            .collect();
        let decision = run(&f, vec![], &inputs);
        assert_eq!(decision.new_visits.len(), 200);
        // Per phone: new at 0 s, answered at 60, 120, ..., 360 s.
        assert_eq!(decision.replied.len(), 200 * 6);
        let silent = decision
            .inputs
            .iter()
            .filter(|d| matches!(d.outcome, InputOutcome::Duplicate(VisitRef::New(_))))
            .count();
        assert_eq!(silent, 4000 - 200 - 200 * 6);
    }
}
