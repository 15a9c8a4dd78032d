//! Every SMS text the service sends, in Russian, each from its own tested
//! function. Short on purpose: a UCS2 segment holds 70 characters, and the
//! operator bills every segment.

use std::borrow::Cow;

use crate::model::{Premises, Priority};
use crate::short_address;
use crate::time_fmt::{ServiceZone, DAY_AND_TIME_CHARS_MAX};
use crate::venue_code::VenueCode;
use chrono::{DateTime, Utc};

/// The short number visitors text.
pub const SHORT_NUMBER: &str = "7377";

/// One UCS2 short message: 140 octets, 70 UTF-16 units. Every reply naming a
/// place is Cyrillic, so UCS2 is the alphabet its length is counted in.
pub const UCS2_SEGMENT_UNITS: usize = 70;

/// A reply `head` + place + `, ` + day and time + `tail`: the two replies
/// every SMS visitor gets, kept to one segment.
struct Template {
    head: &'static str,
    tail: &'static str,
}

/// Between the place and the time.
const PLACE_TIME: &str = ", ";

/// The confirmation. Its opt-out tail is short («Отказ: СТОП», not «Отказ
/// от SMS: СТОП») so a place of [`SMS_LABEL_UNITS_MAX`] fits: the opt-out
/// word is answered to this very number, so it needs no number either.
const CONFIRMATION: Template = Template {
    head: "Вход отмечен: ",
    tail: ". Отказ: СТОП",
};

/// The repeat answer: it starts differently from the confirmation (the
/// metric tells them apart by it) and leaves the place as much room.
const REPEAT: Template = Template {
    head: "Уже отмечен: ",
    tail: ". Отказ: СТОП",
};

/// UTF-16 units of `s` in a `const` context: what a UCS2 segment counts (a
/// character beyond the BMP, four UTF-8 bytes, takes two).
const fn utf16_units_const(s: &str) -> usize {
    let bytes = s.as_bytes();
    let (mut i, mut units) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if b & 0xC0 != 0x80 {
            units += if b >= 0xF0 { 2 } else { 1 };
        }
        i += 1;
    }
    units
}

impl Template {
    /// Units left for the place in one UCS2 segment on the widest date
    /// (every date character is in the BMP: one unit each).
    const fn room(&self) -> usize {
        UCS2_SEGMENT_UNITS
            - (utf16_units_const(self.head)
                + utf16_units_const(PLACE_TIME)
                + DAY_AND_TIME_CHARS_MAX
                + utf16_units_const(self.tail))
    }

    fn render(&self, place: &str, day_and_time: &str) -> String {
        format!(
            "{}{place}{PLACE_TIME}{day_and_time}{}",
            self.head, self.tail
        )
    }

    fn made(&self, text: &str) -> bool {
        text.starts_with(self.head) && text.ends_with(self.tail)
    }
}

/// The longest SMS name (label) of premises, in UTF-16 units (characters; an
/// emoji counts two): what the confirmation and the repeat answer leave for
/// the place in one UCS2 segment on the widest date, computed from the
/// templates: 70 − (14 + 2 + 16 + 13) = 25 for the confirmation, 26 for the
/// repeat; the smaller holds. A shortened address never exceeds it either.
pub const SMS_LABEL_UNITS_MAX: usize = if CONFIRMATION.room() < REPEAT.room() {
    CONFIRMATION.room()
} else {
    REPEAT.room()
};

/// Why an SMS name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsLabelError {
    #[error("the SMS name is longer than {max} characters ({units} given)", max = SMS_LABEL_UNITS_MAX)]
    TooLong { units: usize },
    #[error("the SMS name contains control characters")]
    ControlCharacters,
}

/// An SMS name as stored: trimmed, inner runs of spaces made one; `None`
/// when empty (no label: the address, shortened). Refused when longer than
/// [`SMS_LABEL_UNITS_MAX`] or holding control characters (a line break would
/// break the one-line text).
pub fn sms_label(text: &str) -> Result<Option<String>, SmsLabelError> {
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) || text.contains(['\n', '\r']) {
        return Err(SmsLabelError::ControlCharacters);
    }
    let label = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let units = short_address::utf16_units(&label);
    if units > SMS_LABEL_UNITS_MAX {
        return Err(SmsLabelError::TooLong { units });
    }
    Ok((!label.is_empty()).then_some(label))
}

/// What SMS texts call the premises: its label, else its address shortened
/// to [`SMS_LABEL_UNITS_MAX`] by [`short_address::shorten`].
pub fn sms_place(premises: &Premises) -> Cow<'_, str> {
    match premises.sms_label.as_deref() {
        Some(label) if !label.is_empty() => Cow::Borrowed(label),
        _ => short_address::shorten(&premises.address, SMS_LABEL_UNITS_MAX),
    }
}

/// [`sms_place`] of an address and label not stored yet (the cabinet's
/// preview of a form).
pub fn sms_place_of(address: &str, label: Option<&str>) -> String {
    match label.map(str::trim) {
        Some(label) if !label.is_empty() => label.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => short_address::shorten(address, SMS_LABEL_UNITS_MAX).into_owned(),
    }
}

/// The check-in is recorded: the place ([`sms_place`]) and the time, in one
/// UCS2 segment for every accepted label and every address: the reply every
/// SMS visitor gets is the one the operator bills most.
pub fn confirmation(premises: &Premises, at: DateTime<Utc>, zone: &ServiceZone) -> String {
    confirmation_at(&sms_place(premises), at, zone)
}

/// [`confirmation`] with the place already chosen (the cabinet's preview).
pub fn confirmation_at(place: &str, at: DateTime<Utc>, zone: &ServiceZone) -> String {
    CONFIRMATION.render(place, &zone.day_and_time(at))
}

/// The same code again while the visit is recorded (see
/// `store::REPEAT_REPLY_INTERVAL_MS`): the first visit's place and time, so
/// a visitor whose confirmation went missing gets it by asking again. One
/// UCS2 segment, like the confirmation.
pub fn already_checked_in(
    premises: &Premises,
    first_at: DateTime<Utc>,
    zone: &ServiceZone,
) -> String {
    REPEAT.render(&sms_place(premises), &zone.day_and_time(first_at))
}

/// What a message is, for the segments metric (`checkin_sms_segments_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsKind {
    Confirmation,
    Repeat,
    Otp,
    Alert,
    /// Every other reply (errors, help, opt-out).
    Other,
}

impl SmsKind {
    pub const ALL: [SmsKind; 5] = [
        SmsKind::Confirmation,
        SmsKind::Repeat,
        SmsKind::Otp,
        SmsKind::Alert,
        SmsKind::Other,
    ];

    /// The metric's `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Confirmation => "confirmation",
            SmsKind::Repeat => "repeat",
            SmsKind::Otp => "otp",
            SmsKind::Alert => "alert",
            SmsKind::Other => "other",
        }
    }

    /// A queued message's kind: its priority says OTP or alert; among the
    /// replies (one priority) the templates tell the confirmation and the
    /// repeat from the rest, so the outbox needs no column for it.
    pub fn of(priority: Priority, text: &str) -> SmsKind {
        match priority {
            Priority::Otp => SmsKind::Otp,
            Priority::Alert => SmsKind::Alert,
            Priority::Confirmation if CONFIRMATION.made(text) => SmsKind::Confirmation,
            Priority::Confirmation if REPEAT.made(text) => SmsKind::Repeat,
            Priority::Confirmation => SmsKind::Other,
        }
    }
}

/// A valid code nobody registered.
pub fn code_not_found(code: &VenueCode) -> String {
    format!("Код {code} не найден. Проверьте код на плакате у входа и отправьте ВХОД*код на {SHORT_NUMBER}")
}

/// Nine digits whose check digit fails: a typo.
pub fn code_typo() -> String {
    "В коде ошибка. Сверьте 9 цифр с плакатом у входа и отправьте ВХОД*код ещё раз".to_owned()
}

/// The poster's template sent as is.
pub fn template_copied() -> String {
    format!("Вместо ХХХ-ХХХ-ХХХ впишите 9 цифр кода с плаката у входа, например ВХОД*572-094-130, и отправьте на {SHORT_NUMBER}")
}

/// Not nine digits.
pub fn wrong_length(digits: usize) -> String {
    format!("В коде должно быть 9 цифр, а у вас {digits}. Проверьте код на плакате у входа")
}

/// The premises exists but does not take check-ins now (named as every SMS
/// names it, [`sms_place`]).
pub fn premises_inactive(premises: &Premises) -> String {
    format!(
        "{}: отметка по этому коду сейчас не принимается. Обратитесь к охране",
        sms_place(premises)
    )
}

/// `?`, `ПОМОЩЬ`…
pub fn help() -> String {
    format!("Чтобы отметить вход, отправьте на {SHORT_NUMBER} ВХОД* и 9 цифр кода с плаката, например ВХОД*572-094-130. СТОП - отказ от уведомлений")
}

/// `СТОП` done.
pub fn opted_out() -> String {
    "Вы отказались от уведомлений о возможном контакте с заболевшим. Новая отметка входа снова включит их".to_owned()
}

/// Anything else.
pub fn unrecognized() -> String {
    "Не удалось разобрать сообщение. Для отметки отправьте ВХОД*код с плаката, например ВХОД*572-094-130".to_owned()
}

/// The seed's alert, with the recipient's own visit date and time.
pub fn exposure_alert(visit_at: DateTime<Utc>, zone: &ServiceZone) -> String {
    format!(
        "В организации, которую вы посетили {}, находился посетитель с подтвержденным COVID-19. \
         Поскольку вы могли с ним контактировать, рекомендуем сдать анализ на коронавирус и ограничить контакты.",
        zone.day_and_time(visit_at)
    )
}

/// The USSD screens (the dialog's): each at most [`ussd::SCREEN_CHARS_MAX`]
/// characters, what a network shows of a UCS2 (Cyrillic) screen. An address
/// is shortened with `…` to fit; `dial` is what the visitor dials (`*7377#`).
pub mod ussd {
    use super::*;

    /// Longest screen: 80 UCS2 characters (182 GSM 7-bit ones would fit, but
    /// every screen is Cyrillic).
    pub const SCREEN_CHARS_MAX: usize = 80;

    /// The menu's question (also after `*7377#`).
    pub fn ask() -> String {
        "Введите 9 цифр кода с плаката".to_owned()
    }

    /// Asked again: not nine digits.
    pub fn ask_wrong_length(digits: usize) -> String {
        format!("В коде 9 цифр, а введено {digits}. Введите 9 цифр кода с плаката")
    }

    /// Asked again: nine digits whose check digit fails.
    pub fn ask_typo() -> String {
        "В коде ошибка. Сверьте с плакатом и введите 9 цифр кода".to_owned()
    }

    /// Asked again: a valid code nobody registered.
    pub fn ask_unknown(code: &VenueCode) -> String {
        format!("Код {code} не найден. Введите 9 цифр кода с плаката")
    }

    /// Asked again: letters or signs instead of digits.
    pub fn ask_digits_only() -> String {
        "Нужны только цифры. Введите 9 цифр кода с плаката, 0 - выход".to_owned()
    }

    /// The check-in is recorded: where and when; `sms` when the usual SMS
    /// confirmation follows (the screen vanishes, the guard needs the SMS).
    pub fn checked_in(
        premises: &Premises,
        at: DateTime<Utc>,
        zone: &ServiceZone,
        sms: bool,
    ) -> String {
        let tail = format!(
            ", {}.{}",
            zone.day_and_time(at),
            if sms { " SMS придёт" } else { "" }
        );
        fit("Вход отмечен: ", &premises.address, &tail)
    }

    /// The same visit again: the first visit's place and time.
    pub fn already_checked_in(
        premises: &Premises,
        first_at: DateTime<Utc>,
        zone: &ServiceZone,
    ) -> String {
        let tail = format!(", {}", zone.day_and_time(first_at));
        fit("Вход уже отмечен: ", &premises.address, &tail)
    }

    /// The premises does not take check-ins now.
    pub fn inactive() -> String {
        "Отметка по этому коду сейчас не принимается. Обратитесь к охране".to_owned()
    }

    /// Too many wrong codes: the dialog ends.
    pub fn too_many_attempts(dial: &str) -> String {
        format!("Код не принят. Сверьте код с плакатом и наберите {dial} снова")
    }

    /// `0`: the visitor left the menu.
    pub fn cancelled(dial: &str) -> String {
        format!("Отметка отменена. Чтобы отметиться, наберите {dial}")
    }

    /// An answer to a dialog that timed out (or was lost in a restart).
    pub fn expired(dial: &str) -> String {
        format!("Сеанс истёк. Наберите {dial} снова")
    }

    /// A request we cannot read (another service code, an unknown operation).
    pub fn not_understood(dial: &str) -> String {
        format!("Запрос не распознан. Для отметки входа наберите {dial}")
    }

    /// A number the service does not serve (`MsisdnPolicy`).
    pub fn number_refused() -> String {
        "Отметка по USSD доступна только с российских номеров".to_owned()
    }

    /// `head` + `middle` + `tail` within [`SCREEN_CHARS_MAX`]: `middle` (an
    /// address) is cut and ends with `…` when it does not fit.
    fn fit(head: &str, middle: &str, tail: &str) -> String {
        let room = SCREEN_CHARS_MAX.saturating_sub(head.chars().count() + tail.chars().count());
        let middle: String = if middle.chars().count() <= room {
            middle.to_owned()
        } else {
            let mut cut: String = middle.chars().take(room.saturating_sub(1)).collect();
            cut.push('…');
            cut
        };
        format!("{head}{middle}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The longest a reply without an address may be: three UCS2 segments.
    const REPLY_CHARS_MAX: usize = 3 * 67;

    fn premises() -> Premises {
        Premises {
            id: 1,
            org_id: 1,
            code: VenueCode::parse("572-094-130").unwrap(),
            address: "ул. Тверская, 13".into(),
            sms_label: None,
            kind: "кафе".into(),
            stay_minutes: 60,
            active: true,
            created_at: Utc.with_ymd_and_hms(2020, 10, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_alert_is_the_seed_sentence_with_the_visit_time() {
        let visit = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        assert_eq!(
            exposure_alert(visit, &ServiceZone::default()),
            "В организации, которую вы посетили 18 окт. в 20:13, находился посетитель с \
             подтвержденным COVID-19. Поскольку вы могли с ним контактировать, рекомендуем \
             сдать анализ на коронавирус и ограничить контакты."
        );
    }

    #[test]
    fn confirmation_names_the_address_the_time_and_the_opt_out() {
        let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        let text = confirmation(&premises(), at, &ServiceZone::default());
        assert_eq!(
            text,
            "Вход отмечен: ул. Тверская, 13, 18 окт. в 20:13. Отказ: СТОП"
        );
        // One UCS2 segment, even on the longest date ("28 февр. в 23:59").
        let long_date = Utc.with_ymd_and_hms(2021, 2, 28, 20, 59, 0).unwrap();
        let text = confirmation(&premises(), long_date, &ServiceZone::default());
        assert!(text.contains("28 февр. в 23:59"), "{text}");
        assert!(
            text.chars().count() <= 70,
            "{} chars: {text}",
            text.chars().count()
        );
    }

    #[test]
    fn a_repeat_names_the_first_visit_in_one_segment() {
        let first = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        let text = already_checked_in(&premises(), first, &ServiceZone::default());
        assert_eq!(
            text,
            "Уже отмечен: ул. Тверская, 13, 18 окт. в 20:13. Отказ: СТОП"
        );
        // One UCS2 segment, even on the longest date ("28 февр. в 23:59").
        let long_date = Utc.with_ymd_and_hms(2021, 2, 28, 20, 59, 0).unwrap();
        let text = already_checked_in(&premises(), long_date, &ServiceZone::default());
        assert!(text.contains("28 февр. в 23:59"), "{text}");
        assert!(
            text.chars().count() <= 70,
            "{} chars: {text}",
            text.chars().count()
        );
        assert_ne!(
            text,
            confirmation(&premises(), long_date, &ServiceZone::default())
        );
    }

    #[test]
    fn every_reply_is_distinct_and_short() {
        let code = VenueCode::parse("572-094-130").unwrap();
        let replies = [
            code_not_found(&code),
            code_typo(),
            template_copied(),
            wrong_length(8),
            premises_inactive(&premises()),
            help(),
            opted_out(),
            unrecognized(),
        ];
        for (i, a) in replies.iter().enumerate() {
            assert!(a.chars().count() <= REPLY_CHARS_MAX, "{a}");
            for b in &replies[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(code_not_found(&code).contains("572-094-130"));
        assert!(wrong_length(8).contains('8'));
        assert!(premises_inactive(&premises()).contains("Тверская"));
        // The example code in the instructions is itself a valid code.
        assert!(VenueCode::parse("572-094-130").is_ok());
        assert!(help().contains("572-094-130"));
    }

    /// The limit is what the templates leave on the widest date: a label of
    /// exactly the limit makes a 70-unit text, one more unit is refused.
    #[test]
    fn a_label_of_the_limit_fills_one_segment_and_one_more_is_refused() {
        assert_eq!(SMS_LABEL_UNITS_MAX, 25);
        let long_date = Utc.with_ymd_and_hms(2021, 2, 28, 20, 59, 0).unwrap();
        let zone = ServiceZone::default();
        let mut p = premises();
        let longest = "Ж".repeat(SMS_LABEL_UNITS_MAX);
        p.sms_label = sms_label(&longest).unwrap();
        let confirmation = confirmation(&p, long_date, &zone);
        let repeat = already_checked_in(&p, long_date, &zone);
        assert_eq!(confirmation.encode_utf16().count(), UCS2_SEGMENT_UNITS);
        assert!(repeat.encode_utf16().count() <= UCS2_SEGMENT_UNITS);
        assert!(confirmation.contains(&longest) && repeat.contains(&longest));
        let refused = sms_label(&"Ж".repeat(SMS_LABEL_UNITS_MAX + 1)).unwrap_err();
        assert_eq!(refused, SmsLabelError::TooLong { units: 26 });
        assert!(refused.to_string().contains("25"), "{refused}");
        // An emoji is two UCS2 units: 24 letters and one emoji are 26.
        let emoji = format!("{}🙂", "Ж".repeat(SMS_LABEL_UNITS_MAX - 1));
        assert!(sms_label(&emoji).is_err());
        assert_eq!(
            sms_label("  Кафе   «Ромашка» ").unwrap().as_deref(),
            Some("Кафе «Ромашка»")
        );
        assert_eq!(sms_label("   ").unwrap(), None);
        assert_eq!(
            sms_label("Кафе\nРомашка"),
            Err(SmsLabelError::ControlCharacters)
        );
    }

    #[test]
    fn the_label_replaces_the_address_in_sms_only() {
        let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        let zone = ServiceZone::default();
        let mut p = premises();
        p.address = "Кутузовский пр., д. 57, ТРЦ «Океания», 3 этаж".into();
        p.sms_label = Some("Океания, фудкорт".into());
        assert_eq!(
            confirmation(&p, at, &zone),
            "Вход отмечен: Океания, фудкорт, 18 окт. в 20:13. Отказ: СТОП"
        );
        assert!(already_checked_in(&p, at, &zone).contains("Океания, фудкорт"));
        assert!(premises_inactive(&p).starts_with("Океания, фудкорт:"));
        p.sms_label = None;
        assert_eq!(
            confirmation(&p, at, &zone),
            "Вход отмечен: Кутузовский пр., д. 57, 18 окт. в 20:13. Отказ: СТОП"
        );
        assert_eq!(
            sms_place_of(&p.address, Some(" ")),
            "Кутузовский пр., д. 57"
        );
        assert_eq!(sms_place_of(&p.address, Some("Океания")), "Океания");
    }

    #[test]
    fn kinds_are_told_by_priority_and_template() {
        let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        let zone = ServiceZone::default();
        let p = premises();
        let cases = [
            (
                Priority::Confirmation,
                confirmation(&p, at, &zone),
                SmsKind::Confirmation,
            ),
            (
                Priority::Confirmation,
                already_checked_in(&p, at, &zone),
                SmsKind::Repeat,
            ),
            (Priority::Confirmation, help(), SmsKind::Other),
            (Priority::Confirmation, code_typo(), SmsKind::Other),
            (
                Priority::Confirmation,
                premises_inactive(&p),
                SmsKind::Other,
            ),
            (
                Priority::Otp,
                "Код для входа: 123456".to_owned(),
                SmsKind::Otp,
            ),
            (Priority::Alert, exposure_alert(at, &zone), SmsKind::Alert),
        ];
        for (priority, text, kind) in cases {
            assert_eq!(SmsKind::of(priority, &text), kind, "{text}");
        }
    }

    /// Every USSD screen, with short and very long addresses and the longest
    /// date, fits 80 UCS2 characters; the questions and ends are distinct.
    #[test]
    fn every_ussd_screen_fits_80_characters() {
        let code = VenueCode::parse("572-094-130").unwrap();
        let zone = ServiceZone::default();
        let long_date = Utc.with_ymd_and_hms(2021, 2, 28, 20, 59, 0).unwrap();
        let mut long = premises();
        long.address = "г. Москва, Большая Семёновская улица, дом 38, строение 2, подъезд 4".into();
        let mut screens = vec![
            ussd::ask(),
            ussd::ask_wrong_length(8),
            ussd::ask_wrong_length(1234),
            ussd::ask_typo(),
            ussd::ask_unknown(&code),
            ussd::ask_digits_only(),
            ussd::inactive(),
            ussd::too_many_attempts("*7377#"),
            ussd::cancelled("*7377#"),
            ussd::expired("*7377#"),
            ussd::not_understood("*7377#"),
            ussd::number_refused(),
        ];
        let distinct = screens.clone();
        for p in [premises(), long.clone()] {
            for sms in [true, false] {
                screens.push(ussd::checked_in(&p, long_date, &zone, sms));
            }
            screens.push(ussd::already_checked_in(&p, long_date, &zone));
        }
        for screen in &screens {
            let n = screen.chars().count();
            assert!(n <= ussd::SCREEN_CHARS_MAX, "{n} chars: {screen}");
            assert!(!screen.is_empty());
        }
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(ussd::ask(), "Введите 9 цифр кода с плаката");
        let short = ussd::checked_in(&premises(), long_date, &zone, true);
        assert_eq!(
            short,
            "Вход отмечен: ул. Тверская, 13, 28 февр. в 23:59. SMS придёт"
        );
        let cut = ussd::checked_in(&long, long_date, &zone, true);
        assert!(cut.starts_with("Вход отмечен: г. Москва"), "{cut}");
        assert!(
            cut.contains('…') && cut.ends_with("28 февр. в 23:59. SMS придёт"),
            "{cut}"
        );
        assert_eq!(cut.chars().count(), ussd::SCREEN_CHARS_MAX);
    }
}
