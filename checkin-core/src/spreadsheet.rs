//! `csv_cell`: every cell of a CSV the service writes goes through it, so a
//! spreadsheet that opens the file never runs a cell as a formula (OWASP's
//! "CSV injection"): a cell starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is prefixed with `'`, which spreadsheets show as text.

use std::borrow::Cow;

/// The first characters a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` safe to put in a CSV cell (quoting is the CSV writer's job).
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formula_starts_are_neutralised_and_the_rest_kept() {
        let table = [
            ("=1+1", "'=1+1"),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+79161234567", "'+79161234567"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("", ""),
            ("ул. Тверская, 13", "ул. Тверская, 13"),
            ("not a phone number", "not a phone number"),
            ("1=1", "1=1"),
            (" =1", " =1"),
            ("'=1", "'=1"),
        ];
        for (cell, safe) in table {
            assert_eq!(csv_cell(cell), safe, "{cell:?}");
        }
    }
}
