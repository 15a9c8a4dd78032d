//! The USSD check-in dialog as a state machine, with no I/O and no SMPP:
//! what the visitor dialled or answered goes in, a screen (a question, or a
//! final screen) or a check-in to record comes out. The gateway's handler
//! keeps one [`Dialog`] per open USSD session and speaks SMPP around it.
//!
//! * One-shot: `*7377*123456789#` (also `*7377*123*456*789#`,
//!   `*7377*123-456-789#`) → the check-in → a final screen with the address
//!   and time.
//! * Menu: `*7377#` → «Введите 9 цифр кода с плаката» → the answer → the
//!   check-in → a final screen.
//! * A typo, a wrong length, letters or an unknown code ask again with the
//!   reason, at most [`RETRIES_MAX`] times; `0` ends the dialog.

use parser::CodeDigits;

use crate::sms_decision::{Committed, Rejection, SmsOutcome};
use crate::texts::ussd as screens;
use crate::time_fmt::ServiceZone;
use crate::venue_code::{CodeError, VenueCode};

/// How many times a dialog asks again after a wrong code; the next wrong
/// code ends it.
pub const RETRIES_MAX: u8 = 3;

/// What the menu needs besides the dialog: the service code dialled and how
/// screens are written.
#[derive(Debug, Clone)]
pub struct Menu {
    /// The USSD service code without `*` and `#` (e.g. `7377`).
    pub short_code: String,
    /// The zone times are shown in.
    pub zone: ServiceZone,
    /// Whether the usual SMS confirmation is queued after a USSD check-in.
    pub confirm_by_sms: bool,
}

impl Menu {
    /// What the visitor dials for the menu: `*7377#`.
    pub fn dial(&self) -> String {
        format!("*{}#", self.short_code)
    }
}

/// What the dialog does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Show this question; the dialog waits for the answer.
    Ask(String),
    /// Show this final screen; the dialog is over.
    End(String, Ending),
    /// Record a check-in at this code, then call [`Dialog::stored`].
    CheckIn(CodeDigits),
}

/// How a dialog ended (the metric's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    CheckedIn,
    AlreadyCheckedIn,
    Inactive,
    TooManyAttempts,
    Cancelled,
    /// A request we cannot read (another service code).
    NotUnderstood,
}

impl Ending {
    /// The label of `checkin_ussd_dialogs_total{outcome}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::CheckedIn => "checked_in",
            Ending::AlreadyCheckedIn => "already_checked_in",
            Ending::Inactive => "inactive",
            Ending::TooManyAttempts => "too_many_attempts",
            Ending::Cancelled => "cancelled",
            Ending::NotUnderstood => "not_understood",
        }
    }
}

/// What was dialled, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialled {
    /// `*7377#`: the menu.
    Menu,
    /// `*7377*…#`: a code (maybe mistyped).
    Code(CodeInput),
    /// Another service code, or not a USSD string at all.
    Other,
}

/// A code as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeInput {
    /// Nine digits with the right check digit.
    Valid(CodeDigits),
    /// Nine digits whose check digit fails.
    Typo,
    /// Not nine digits.
    WrongLength(usize),
    /// Something other than digits and separators.
    NotDigits,
    /// `0`: leave the menu (only as an answer).
    Exit,
}

/// Reads a dialled string such as `*7377*123-456-789#` against the service
/// code `short_code`. The `#` is optional (some gateways drop it); `*`, `-`
/// and spaces may separate the digit groups.
pub fn read_dialled(dialled: &str, short_code: &str) -> Dialled {
    let text = dialled.trim();
    let text = text.strip_suffix('#').unwrap_or(text);
    let Some(rest) = text.strip_prefix('*') else {
        return Dialled::Other;
    };
    let Some(rest) = rest.strip_prefix(short_code) else {
        return Dialled::Other;
    };
    if rest.is_empty() {
        return Dialled::Menu;
    }
    match rest.strip_prefix('*') {
        Some(code) => match read_code(code) {
            CodeInput::Exit => Dialled::Code(CodeInput::WrongLength(1)),
            input => Dialled::Code(input),
        },
        // `*73770#`: another service code.
        None => Dialled::Other,
    }
}

/// Reads an answer to the question: nine digits (separated by `-`, `*`,
/// `.` or spaces), or `0` to leave.
pub fn read_code(text: &str) -> CodeInput {
    let text = text.trim();
    let text = text.strip_suffix('#').unwrap_or(text).trim();
    if text == "0" {
        return CodeInput::Exit;
    }
    let mut digits = Vec::with_capacity(CodeDigits::LEN);
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c as u8),
            '-' | '*' | '.' | ' ' => {}
            _ => return CodeInput::NotDigits,
        }
    }
    let Ok(ascii) = <[u8; CodeDigits::LEN]>::try_from(digits.as_slice()) else {
        return CodeInput::WrongLength(digits.len());
    };
    let Some(code) = CodeDigits::from_ascii(ascii) else {
        return CodeInput::NotDigits;
    };
    match VenueCode::from_digits(&code.values()) {
        Ok(_) => CodeInput::Valid(code),
        Err(CodeError::CheckDigit) => CodeInput::Typo,
        Err(CodeError::WrongLength { digits }) => CodeInput::WrongLength(digits),
        Err(CodeError::InvalidCharacter) => CodeInput::NotDigits,
    }
}

/// One visitor's dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    /// Questions asked again after a wrong code so far.
    retries: u8,
    /// The code being recorded (between [`Step::CheckIn`] and `stored`).
    pending: Option<CodeDigits>,
}

impl Dialog {
    /// A dialog opened by dialling `dialled`, and its first step.
    pub fn begin(menu: &Menu, dialled: &str) -> (Dialog, Step) {
        let mut dialog = Dialog::default();
        let step = match read_dialled(dialled, &menu.short_code) {
            Dialled::Menu => Step::Ask(screens::ask()),
            Dialled::Code(input) => dialog.take(menu, input),
            Dialled::Other => {
                Step::End(screens::not_understood(&menu.dial()), Ending::NotUnderstood)
            }
        };
        (dialog, step)
    }

    /// The visitor answered the question with `text`.
    pub fn answer(&mut self, menu: &Menu, text: &str) -> Step {
        self.take(menu, read_code(text))
    }

    /// What the check-in asked for by [`Step::CheckIn`] came to.
    pub fn stored(&mut self, menu: &Menu, committed: &Committed) -> Step {
        let pending = self.pending.take();
        let visit = committed.visit.as_ref();
        match (committed.outcome, visit) {
            (SmsOutcome::CheckedIn { .. }, Some(v)) => Step::End(
                screens::checked_in(&v.premises, v.at, &menu.zone, menu.confirm_by_sms),
                Ending::CheckedIn,
            ),
            (SmsOutcome::Repeat { .. } | SmsOutcome::Duplicate { .. }, Some(v)) => Step::End(
                screens::already_checked_in(&v.premises, v.at, &menu.zone),
                Ending::AlreadyCheckedIn,
            ),
            (SmsOutcome::Rejected { reason }, _) => match reason {
                Rejection::UnknownCode => {
                    match pending.and_then(|d| VenueCode::from_digits(&d.values()).ok()) {
                        Some(code) => self.again(menu, screens::ask_unknown(&code)),
                        None => self.again(menu, screens::ask()),
                    }
                }
                Rejection::InactivePremises => Step::End(screens::inactive(), Ending::Inactive),
                Rejection::Typo => self.again(menu, screens::ask_typo()),
                Rejection::WrongLength => self.again(menu, screens::ask_wrong_length(0)),
                _ => self.again(menu, screens::ask_digits_only()),
            },
            // A check-in's outcome always comes with its visit; should one
            // not, the visitor still learns the code was taken.
            _ => Step::End(screens::not_understood(&menu.dial()), Ending::NotUnderstood),
        }
    }

    fn take(&mut self, menu: &Menu, input: CodeInput) -> Step {
        match input {
            CodeInput::Valid(digits) => {
                self.pending = Some(digits);
                Step::CheckIn(digits)
            }
            CodeInput::Exit => Step::End(screens::cancelled(&menu.dial()), Ending::Cancelled),
            CodeInput::Typo => self.again(menu, screens::ask_typo()),
            CodeInput::WrongLength(n) => self.again(menu, screens::ask_wrong_length(n)),
            CodeInput::NotDigits => self.again(menu, screens::ask_digits_only()),
        }
    }

    /// Asks again with `question`, unless the retries are spent.
    fn again(&mut self, menu: &Menu, question: String) -> Step {
        if self.retries >= RETRIES_MAX {
            return Step::End(
                screens::too_many_attempts(&menu.dial()),
                Ending::TooManyAttempts,
            );
        }
        self.retries += 1;
        Step::Ask(question)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Premises;
    use crate::sms_decision::SmsVisit;
    use chrono::{TimeZone, Utc};

    const CODE: &str = "572094130";

    fn menu() -> Menu {
        Menu {
            short_code: "7377".into(),
            zone: ServiceZone::default(),
            confirm_by_sms: true,
        }
    }

    fn digits(text: &str) -> CodeDigits {
        CodeDigits::from_ascii(text.as_bytes().try_into().unwrap()).unwrap()
    }

    fn visit() -> SmsVisit {
        SmsVisit {
            premises: Premises {
                id: 1,
                org_id: 1,
                code: VenueCode::parse(CODE).unwrap(),
                address: "ул. Тверская, 13".into(),
                sms_label: None,
                kind: "кафе".into(),
                stay_minutes: 60,
                active: true,
                created_at: Utc.with_ymd_and_hms(2020, 10, 1, 0, 0, 0).unwrap(),
            },
            at: Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap(),
        }
    }

    fn committed(outcome: SmsOutcome, visit: Option<SmsVisit>) -> Committed {
        Committed { outcome, visit }
    }

    #[test]
    fn dialled_strings_are_read() {
        let valid = Dialled::Code(CodeInput::Valid(digits(CODE)));
        for (text, want) in [
            ("*7377#", Dialled::Menu),
            ("*7377", Dialled::Menu),
            (" *7377# ", Dialled::Menu),
            ("*7377*572094130#", valid),
            ("*7377*572*094*130#", valid),
            ("*7377*572-094-130#", valid),
            ("*7377*572 094 130", valid),
            ("*7377*572094131#", Dialled::Code(CodeInput::Typo)),
            ("*7377*57209413#", Dialled::Code(CodeInput::WrongLength(8))),
            (
                "*7377*5720941300#",
                Dialled::Code(CodeInput::WrongLength(10)),
            ),
            ("*7377*0#", Dialled::Code(CodeInput::WrongLength(1))),
            ("*7377*#", Dialled::Code(CodeInput::WrongLength(0))),
            ("*7377*abc#", Dialled::Code(CodeInput::NotDigits)),
            ("*4006#", Dialled::Other),
            ("*73770#", Dialled::Other),
            ("7377", Dialled::Other),
            ("", Dialled::Other),
            ("#", Dialled::Other),
        ] {
            assert_eq!(read_dialled(text, "7377"), want, "{text:?}");
        }
        assert_eq!(read_dialled("*4006#", "4006"), Dialled::Menu);
    }

    #[test]
    fn one_shot_records_then_shows_the_address_and_time() {
        let (mut dialog, step) = Dialog::begin(&menu(), "*7377*572-094-130#");
        assert_eq!(step, Step::CheckIn(digits(CODE)));
        let step = dialog.stored(
            &menu(),
            &committed(SmsOutcome::CheckedIn { checkin_id: 1 }, Some(visit())),
        );
        assert_eq!(
            step,
            Step::End(
                "Вход отмечен: ул. Тверская, 13, 18 окт. в 20:13. SMS придёт".into(),
                Ending::CheckedIn
            )
        );
        let quiet = Menu {
            confirm_by_sms: false,
            ..menu()
        };
        let step = dialog.stored(
            &quiet,
            &committed(SmsOutcome::Repeat { checkin_id: 1 }, Some(visit())),
        );
        assert_eq!(
            step,
            Step::End(
                "Вход уже отмечен: ул. Тверская, 13, 18 окт. в 20:13".into(),
                Ending::AlreadyCheckedIn
            )
        );
    }

    #[test]
    fn menu_asks_then_records() {
        let (mut dialog, step) = Dialog::begin(&menu(), "*7377#");
        assert_eq!(step, Step::Ask("Введите 9 цифр кода с плаката".into()));
        assert_eq!(
            dialog.answer(&menu(), "572 094 130"),
            Step::CheckIn(digits(CODE))
        );
    }

    #[test]
    fn wrong_codes_ask_again_three_times_then_end() {
        let (mut dialog, _) = Dialog::begin(&menu(), "*7377#");
        let Step::Ask(text) = dialog.answer(&menu(), "572094131") else {
            panic!("a typo asks again")
        };
        assert!(text.contains("ошибка"), "{text}");
        let Step::Ask(text) = dialog.answer(&menu(), "12345") else {
            panic!("a wrong length asks again")
        };
        assert!(text.contains("введено 5"), "{text}");
        assert_eq!(
            dialog.answer(&menu(), "572094130"),
            Step::CheckIn(digits(CODE))
        );
        let Step::Ask(text) = dialog.stored(
            &menu(),
            &committed(
                SmsOutcome::Rejected {
                    reason: Rejection::UnknownCode,
                },
                None,
            ),
        ) else {
            panic!("an unknown code asks again")
        };
        assert!(text.contains("572-094-130 не найден"), "{text}");
        let Step::End(text, Ending::TooManyAttempts) = dialog.answer(&menu(), "abc") else {
            panic!("the fourth wrong code ends the dialog")
        };
        assert!(text.contains("*7377#"), "{text}");
    }

    #[test]
    fn zero_cancels_and_other_codes_are_not_understood() {
        let (mut dialog, _) = Dialog::begin(&menu(), "*7377#");
        assert!(matches!(
            dialog.answer(&menu(), "0"),
            Step::End(_, Ending::Cancelled)
        ));
        let (_, step) = Dialog::begin(&menu(), "*4006#");
        assert!(matches!(step, Step::End(_, Ending::NotUnderstood)));
        let (mut dialog, step) = Dialog::begin(&menu(), "*7377*572094130#");
        assert_eq!(step, Step::CheckIn(digits(CODE)));
        let step = dialog.stored(
            &menu(),
            &committed(
                SmsOutcome::Rejected {
                    reason: Rejection::InactivePremises,
                },
                None,
            ),
        );
        assert!(matches!(step, Step::End(_, Ending::Inactive)));
    }
}
