//! Reading a user data header: the concatenation elements (IE 0x00 with an
//! 8-bit reference, IE 0x08 with a 16-bit one) among any others.
//!
//! By hand because `rusmpp`'s `Udh` decodes a header of exactly one element;
//! the UDHs written are `rusmpp`'s ([`crate::parts`]).

use crate::Error;

/// Where a part sits in a concatenated message (from a UDH or SAR TLVs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartInfo {
    /// Reference shared by all parts (8- or 16-bit).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub number: u8,
}

/// Reads the UDH at the start of `message`: its concatenation info (`None`
/// when it has none, or an impossible one: no parts, or a number outside
/// 1..=total) and the number of header octets, where the text begins.
pub fn parse_udh(message: &[u8]) -> Result<(Option<PartInfo>, usize), Error> {
    let udhl = usize::from(*message.first().ok_or(Error::UdhTooLong)?);
    let header = message.get(1..1 + udhl).ok_or(Error::UdhTooLong)?;
    let mut part = None;
    let mut rest = header;
    while let [iei, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let data = tail.get(..len).ok_or(Error::UdhElementTooLong)?;
        match (iei, data) {
            (0x00, &[reference, total, number]) => {
                part = Some(PartInfo {
                    reference: u16::from(reference),
                    total,
                    number,
                });
            }
            (0x08, &[hi, lo, total, number]) => {
                part = Some(PartInfo {
                    reference: u16::from_be_bytes([hi, lo]),
                    total,
                    number,
                });
            }
            _ => {}
        }
        rest = &tail[len..];
    }
    let part = part.filter(|p| p.total >= 1 && p.number >= 1 && p.number <= p.total);
    Ok((part, 1 + udhl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udh_8_and_16_bit() {
        let (part, len) = parse_udh(&[0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'x']).unwrap();
        assert_eq!(
            part,
            Some(PartInfo {
                reference: 0x2A,
                total: 3,
                number: 2
            })
        );
        assert_eq!(len, 6);
        let (part, len) = parse_udh(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'x']).unwrap();
        assert_eq!(
            part,
            Some(PartInfo {
                reference: 0x1234,
                total: 2,
                number: 1
            })
        );
        assert_eq!(len, 7);
        assert_eq!(parse_udh(&[0x09, 0x00]), Err(Error::UdhTooLong));
        assert_eq!(parse_udh(&[9, 0, 3]), Err(Error::UdhTooLong));
        assert_eq!(parse_udh(&[]), Err(Error::UdhTooLong));
    }

    #[test]
    fn udh_with_8_and_16_bit_references() {
        let eight = [5, 0, 3, 9, 3, 2, b'x'];
        assert_eq!(
            parse_udh(&eight),
            Ok((
                Some(PartInfo {
                    reference: 9,
                    total: 3,
                    number: 2
                }),
                6
            ))
        );
        let sixteen = [6, 8, 4, 0x12, 0x34, 3, 1, b'x'];
        assert_eq!(
            parse_udh(&sixteen),
            Ok((
                Some(PartInfo {
                    reference: 0x1234,
                    total: 3,
                    number: 1
                }),
                7
            ))
        );
    }

    #[test]
    fn other_elements_are_skipped_and_broken_ones_refused() {
        // A port-address element (IE 0x05) before the concatenation element.
        let ports = [
            11, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x00, 0x03, 7, 2, 2, b'x',
        ];
        let (part, len) = parse_udh(&ports).unwrap();
        assert_eq!(part.map(|p| (p.reference, p.number)), Some((7, 2)));
        assert_eq!(len, 12);
        // An element whose length runs past the header.
        assert_eq!(
            parse_udh(&[3, 0x00, 0x03, 1, b'x']),
            Err(Error::UdhElementTooLong)
        );
        // Part 3 of 2 is no part.
        assert_eq!(parse_udh(&[5, 0, 3, 1, 2, 3]), Ok((None, 6)));
    }

    proptest::proptest! {
        #[test]
        fn any_octets_parse_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok((_, len)) = parse_udh(&bytes) {
                proptest::prop_assert!(len <= bytes.len());
            }
        }
    }
}
