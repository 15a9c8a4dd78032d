//! An address shortened to fit an SMS (issue 23): the confirmation must stay
//! one UCS2 segment, so premises without an SMS name are called by their
//! address cut to `texts::SMS_LABEL_UNITS_MAX` units, keeping what a visitor
//! recognises — the street's start and the house number.
//!
//! The rule, step by step; the first form that fits is taken:
//! 1. the address as written (spaces made single);
//! 2. the street and the house as written, without the city, the postal
//!    code and everything after the house (ТЦ «…», подъезд, этаж, офис…);
//! 3. the same abbreviated: улица → ул., проспект → пр-т, Большая → Б., …,
//!    and the house compact: `д. 30, корп. 2, стр. 1` → `30к2с1`,
//!    `влд. 5` → `вл5`;
//! 4. the street type dropped (`Маршала Жукова, 12к3с1`);
//! 5. the street name cut with «…», the house kept whole
//!    (`Ниж. Сыромятниче…, 10к2с9`).
//!
//! An address with no recognisable house (`Кафе «Ромашка»`) is cut at its
//! end with «…». `docs/sms-texts.md` shows examples; the corpus test
//! (`tests/sms_texts.rs`) holds the rule on a thousand Moscow addresses.

use std::borrow::Cow;

/// UTF-16 units of `s`: what a UCS2 segment counts.
pub fn utf16_units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `address` in at most `max` UTF-16 units (see the module's rule).
pub fn shorten(address: &str, max: usize) -> Cow<'_, str> {
    if utf16_units(address) <= max && !address.contains("  ") && address.trim() == address {
        return Cow::Borrowed(address);
    }
    let address = address.split_whitespace().collect::<Vec<_>>().join(" ");
    if utf16_units(&address) <= max {
        return Cow::Owned(address);
    }
    let Some(parsed) = Parsed::read(&address) else {
        return Cow::Owned(cut_end(&address, max));
    };
    let compact_street = abbreviate(&parsed.street);
    let compact_house = parsed.house.compact();
    let bare_street = drop_type(&compact_street);
    let candidates = [
        format!("{}, {}", parsed.street, parsed.written),
        format!("{compact_street}, {compact_house}"),
        format!("{bare_street}, {compact_house}"),
    ];
    if let Some(fits) = candidates.into_iter().find(|c| utf16_units(c) <= max) {
        return Cow::Owned(fits);
    }
    let room = max.saturating_sub(utf16_units(", ") + utf16_units(&compact_house));
    // Fewer than a few letters of the street would not name it: cut the
    // compact form at its end instead (never seen on the corpus).
    if room < 6 {
        return Cow::Owned(cut_end(&format!("{bare_street}, {compact_house}"), max));
    }
    Cow::Owned(format!("{}, {compact_house}", cut_end(&bare_street, room)))
}

/// `text` cut to `max` units, the last one «…» (spaces and commas before it
/// dropped).
fn cut_end(text: &str, max: usize) -> String {
    if utf16_units(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        if units + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    let trimmed = out.trim_end_matches([' ', ',', '.', '-']).len();
    out.truncate(trimmed);
    out.push('…');
    out
}

/// The house: its number (`12А`, `12/1`, `37к9`), `вл` for a владение, and
/// корпус and строение when given.
#[derive(Debug, Default)]
struct House {
    holding: bool,
    number: String,
    korpus: String,
    stroenie: String,
}

impl House {
    /// `30к2с1`, `вл5`, `к1106`.
    fn compact(&self) -> String {
        let mut out = String::new();
        if self.holding {
            out.push_str("вл");
        }
        out.push_str(&self.number);
        if !self.korpus.is_empty() {
            out.push('к');
            out.push_str(&self.korpus);
        }
        if !self.stroenie.is_empty() {
            out.push('с');
            out.push_str(&self.stroenie);
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.number.is_empty() && self.korpus.is_empty() && self.stroenie.is_empty()
    }
}

/// An address read as street + house.
#[derive(Debug)]
struct Parsed {
    street: String,
    /// The house as written (`д. 30, корп. 2`), qualifiers after it dropped.
    written: String,
    house: House,
}

/// What a house-part token is.
enum Mark {
    Number,
    Holding,
    Korpus,
    Stroenie,
}

fn mark(token: &str) -> Option<Mark> {
    let t = token.trim_end_matches('.').to_lowercase();
    match t.as_str() {
        "д" | "дом" => Some(Mark::Number),
        "вл" | "влд" | "владение" => Some(Mark::Holding),
        "к" | "корп" | "корпус" => Some(Mark::Korpus),
        "с" | "стр" | "строение" => Some(Mark::Stroenie),
        _ => None,
    }
}

/// A house number: starts with a digit and is not an ordinal (`1-я`).
fn is_number(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit()) && !token.contains('-')
}

/// The city, the country or a postal code: dropped from an SMS.
fn is_city(part: &str) -> bool {
    let p = part.to_lowercase().replace(['.', ' '], "");
    matches!(
        p.as_str(),
        "москва" | "гмосква" | "городмосква" | "россия" | "рф"
    ) || (p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `д.30` → `д. 30`, so a mark and its number are two tokens.
fn tokens(part: &str) -> Vec<String> {
    part.replace('.', ". ")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn starts_house(part: &str) -> bool {
    tokens(part)
        .first()
        .is_some_and(|t| mark(t).is_some() || is_number(t))
}

impl Parsed {
    fn read(address: &str) -> Option<Parsed> {
        let parts: Vec<&str> = address
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && !is_city(p))
            .collect();
        // The street comes before the house: the first house-like part after
        // at least one other; the part just before it is the street (a ТЦ or
        // district named before it is dropped).
        let at = (1..parts.len()).find(|&i| starts_house(parts[i]))?;
        let street = parts[at - 1].to_owned();
        let mut house = House::default();
        let mut written = Vec::new();
        'parts: for part in &parts[at..] {
            let toks = tokens(part);
            let mut i = 0;
            let mut used = Vec::new();
            while i < toks.len() {
                let t = &toks[i];
                let (slot, step) = match mark(t) {
                    Some(m)
                        if i + 1 < toks.len()
                            && toks[i + 1].starts_with(|c: char| c.is_ascii_digit()) =>
                    {
                        (m, 2)
                    }
                    None if is_number(t) && house.number.is_empty() => (Mark::Number, 1),
                    _ => {
                        if !used.is_empty() {
                            written.push(used.join(" "));
                        }
                        break 'parts;
                    }
                };
                let value = toks[i + step - 1].trim_end_matches('.').to_owned();
                match slot {
                    Mark::Number => house.number = value,
                    Mark::Holding => {
                        house.holding = true;
                        house.number = value;
                    }
                    Mark::Korpus => house.korpus = value,
                    Mark::Stroenie => house.stroenie = value,
                }
                used.extend(toks[i..i + step].iter().cloned());
                i += step;
            }
            written.push(part.to_string());
        }
        if house.is_empty() {
            return None;
        }
        Some(Parsed {
            street,
            written: written.join(", "),
            house,
        })
    }
}

/// Street words and their short forms (Moscow's usual abbreviations).
const SHORT_WORDS: &[(&str, &str)] = &[
    ("улица", "ул."),
    ("проспект", "пр-т"),
    ("просп.", "пр-т"),
    ("переулок", "пер."),
    ("шоссе", "ш."),
    ("бульвар", "б-р"),
    ("площадь", "пл."),
    ("набережная", "наб."),
    ("проезд", "пр-д"),
    ("тупик", "туп."),
    ("аллея", "ал."),
    ("большая", "Б."),
    ("большой", "Б."),
    ("большое", "Б."),
    ("малая", "М."),
    ("малый", "М."),
    ("малое", "М."),
    ("верхняя", "Верх."),
    ("верхний", "Верх."),
    ("нижняя", "Ниж."),
    ("нижний", "Ниж."),
    ("средняя", "Ср."),
    ("средний", "Ср."),
    ("старая", "Стар."),
    ("старый", "Стар."),
];

/// Street types (written in full or short): dropped in step 4.
const STREET_TYPES: &[&str] = &[
    "ул.",
    "ул",
    "пр.",
    "пр-т",
    "просп.",
    "пер.",
    "ш.",
    "б-р",
    "бул.",
    "пл.",
    "наб.",
    "пр-д",
    "туп.",
    "ал.",
    "улица",
    "проспект",
    "переулок",
    "шоссе",
    "бульвар",
    "площадь",
    "набережная",
    "проезд",
    "тупик",
    "аллея",
];

fn abbreviate(street: &str) -> String {
    street
        .split_whitespace()
        .map(|w| {
            let lower = w.to_lowercase();
            SHORT_WORDS
                .iter()
                .find(|(long, _)| *long == lower)
                .map_or(w, |(_, short)| *short)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn drop_type(street: &str) -> String {
    let kept: Vec<&str> = street
        .split_whitespace()
        .filter(|w| !STREET_TYPES.contains(&w.to_lowercase().as_str()))
        .collect();
    if kept.is_empty() {
        street.to_owned()
    } else {
        kept.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(address: &str, max: usize, expect: &str) {
        let short = shorten(address, max);
        assert_eq!(short, expect, "{address}");
        assert!(utf16_units(&short) <= max, "{short}");
    }

    #[test]
    fn each_step_of_the_rule() {
        // 1. fits as written.
        check("ул. Тверская, 13", 25, "ул. Тверская, 13");
        check("  ул.  Тверская,  13 ", 25, "ул. Тверская, 13");
        // 2. the city and the shopping centre go first.
        check(
            "г. Москва, Кутузовский пр., д. 57, ТРЦ «Океания»",
            25,
            "Кутузовский пр., д. 57",
        );
        check(
            "ТЦ «Атриум», ул. Земляной Вал, д. 33",
            25,
            "ул. Земляной Вал, д. 33",
        );
        // 3. abbreviated, the house compact.
        check(
            "улица Большая Никитская, дом 12, корпус 3, строение 1",
            25,
            "ул. Б. Никитская, 12к3с1",
        );
        check(
            "Варшавское шоссе, владение 5, строение 2",
            25,
            "Варшавское ш., вл5с2",
        );
        // 4. the type dropped.
        check(
            "пр. Маршала Жукова, д. 12, корп. 3, стр. 1",
            25,
            "Маршала Жукова, 12к3с1",
        );
        // 5. the street cut, the house whole.
        check(
            "ул. Нижняя Сыромятническая, д. 10, корп. 2, стр. 9",
            25,
            "Ниж. Сыромятниче…, 10к2с9",
        );
        // No house: cut at the end.
        check(
            "Кафе «Ромашка» у северного входа в парк",
            25,
            "Кафе «Ромашка» у северно…",
        );
        // An ordinal street is not a house number.
        check(
            "1-я Тверская-Ямская ул., д. 12, стр. 1, подъезд 3",
            25,
            "1-я Тверская-Ямская, 12с1",
        );
    }
}
