//! Phone numbers, validated against libphonenumber's numbering plans (the `phonenumber` crate,
//! metadata 9.0.x): the country code, and the length and leading digits of a number type in
//! that country's plan.
//!
//! A number written with its country code (`+44 ...`, `0044 ...`) is checked against that
//! country alone and passes when its length is one the plan allows (the way libphonenumber's
//! "possible number" test reads it: test and fictional ranges keep their lengths). A number in
//! national format says nothing of its country, so it passes when it is a valid number in one
//! of [`NATIONAL_REGIONS`]; rules that take national numbers also require a context word.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

/// Regions a national-format number is tried in: North America, Europe, and the largest
/// other markets, as libphonenumber region codes.
pub const NATIONAL_REGIONS: &[Id] = &[
    Id::US,
    Id::GB,
    Id::DE,
    Id::FR,
    Id::IT,
    Id::ES,
    Id::NL,
    Id::BE,
    Id::CH,
    Id::AT,
    Id::SE,
    Id::NO,
    Id::DK,
    Id::FI,
    Id::PL,
    Id::PT,
    Id::IE,
    Id::CZ,
    Id::HU,
    Id::GR,
    Id::CY,
    Id::AU,
    Id::NZ,
    Id::CA,
    Id::IN,
    Id::BR,
    Id::MX,
    Id::JP,
    Id::CN,
    Id::ZA,
    Id::IL,
    Id::RU,
    Id::TR,
    Id::KR,
];

/// Digits a subscriber number has at least (short codes aside) and an E.164 number at most.
const DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// True when `span` reads as a phone number: 7 to 15 digits before any extension, not a date
/// or a dotted IPv4 address, and valid (or, with a country code, of a possible length) in a
/// numbering plan.
pub fn phone_number(span: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(span) else {
        return false;
    };
    let text = text.trim();
    let number = without_extension(text);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    if !DIGITS.contains(&digits) || looks_like_date(number) || looks_like_ipv4(number) {
        return false;
    }
    if let Some(rest) = text.strip_prefix("00") {
        return international(&format!("+{rest}"));
    }
    if text.starts_with('+') {
        return international(text);
    }
    NATIONAL_REGIONS.iter().any(|&region| {
        phonenumber::parse(Some(region), text).is_ok_and(|n| phonenumber::is_valid(&n))
    })
}

fn international(text: &str) -> bool {
    let Ok(n) = phonenumber::parse(None, text) else {
        return false;
    };
    if phonenumber::is_valid(&n) {
        return true;
    }
    let national_len = n.national().to_string().len() as u16;
    DATABASE.by_code(&n.code().value()).is_some_and(|plans| {
        plans.iter().any(|m| {
            let d = m.descriptors();
            [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.voip(),
                d.personal_number(),
            ]
            .into_iter()
            .flatten()
            .any(|desc| desc.possible_length().contains(&national_len))
        })
    })
}

/// The number without a trailing `x123`, `ext. 123` or `#123`.
fn without_extension(text: &str) -> &str {
    let cut = text
        .find(['x', 'X', '#'])
        .or_else(|| text.to_ascii_lowercase().find("ext"));
    cut.map_or(text, |i| text[..i].trim_end())
}

/// `2024-05-01` or `2024/05/01` at the start: a timestamp, not a number to call.
fn looks_like_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && matches!(b[4], b'-' | b'/')
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b[4]
}

fn looks_like_ipv4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.parse::<u16>().is_ok_and(|v| v <= 255))
}

#[cfg(test)]
mod tests {
    use super::phone_number;

    #[test]
    fn international_numbers_by_country_plan() {
        for n in [
            "+44 20 7946 0958",
            "+49 30 901820",
            "+1-646-555-0100",
            "+33 1 23 45 67 89",
            "0044 20 7946 0958",
            "+61 2 9876 5432",
        ] {
            assert!(phone_number(n.as_bytes()), "{n}");
        }
        assert!(!phone_number(b"+999 123 4567"), "no such country code");
        assert!(!phone_number(b"+44 12"), "too short");
        // Fictional and unassigned ranges keep the plan's length: still a number.
        assert!(phone_number(b"+1-903-140-4508"));
    }

    #[test]
    fn national_numbers_valid_somewhere() {
        for n in [
            "020 7946 0958",
            "(415) 555-2671",
            "030 901820",
            "06 12 34 56 78",
        ] {
            assert!(phone_number(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn dates_addresses_and_versions_are_not_numbers() {
        for n in [
            "2024-05-01 13",
            "192.168.10.20",
            "1.2.3",
            "12 34",
            "0000 000 000",
        ] {
            assert!(!phone_number(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn extensions_do_not_count_as_digits() {
        assert!(phone_number(b"+1-646-555-0100x42"));
        assert!(phone_number(b"+1 646 555 0100 ext. 42"));
    }
}
