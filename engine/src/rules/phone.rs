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
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if !DIGITS.contains(&digits.len()) || looks_like_date(number) || looks_like_ipv4(number) {
        return false;
    }
    if text.starts_with("00") {
        return international(&digits[2..]);
    }
    if text.starts_with('+') {
        return international(&digits);
    }
    national_plans().iter().any(|plan| plan.is_valid(&digits))
}

/// A country code (1 to 3 digits, the shortest that exists) and a national number of a length
/// one of that country's plans allows, with or without its trunk prefix (`+41 (0)44 ...`).
fn international(digits: &str) -> bool {
    (1..=3).any(|k| {
        let Some(code) = digits.get(..k).and_then(|c| c.parse::<u16>().ok()) else {
            return false;
        };
        let national = &digits[k..];
        DATABASE.by_code(&code).is_some_and(|plans| {
            plans.iter().any(|m| {
                let fits = |n: &str| has_possible_length(m, n.len());
                fits(national)
                    || m.national_prefix()
                        .and_then(|p| national.strip_prefix(p))
                        .is_some_and(fits)
            })
        })
    })
}

/// The number types whose possible lengths a plan allows (the crate's metadata, from
/// libphonenumber's `PhoneNumberMetadata.xml`).
fn descriptors(
    m: &phonenumber::Metadata,
) -> impl Iterator<Item = &phonenumber::metadata::Descriptor> {
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
}

/// Whether a national number of `len` digits is a possible length in plan `m`; no allocation,
/// since it runs for every international candidate.
fn has_possible_length(m: &phonenumber::Metadata, len: usize) -> bool {
    descriptors(m).any(|d| d.possible_length().contains(&(len as u16)))
}

fn possible_lengths(m: &phonenumber::Metadata) -> Vec<u16> {
    descriptors(m)
        .flat_map(|d| d.possible_length().iter().copied())
        .collect()
}

/// One region's plan for national numbers: its trunk prefix, the lengths it allows, and the
/// national-number patterns of its number types (fixed line, mobile, toll free...), compiled
/// once: the crate's own matcher looks each pattern up in a shared cache by its source text
/// on every call, which costs more than the match.
struct NationalPlan {
    trunk: Option<String>,
    lengths: Vec<u16>,
    general: regex::Regex,
    types: regex::RegexSet,
}

impl NationalPlan {
    fn new(region: Id) -> Option<NationalPlan> {
        let meta = DATABASE.by_id(region.as_ref())?;
        let d = meta.descriptors();
        // The metadata's patterns keep the line breaks of libphonenumber's XML.
        let anchored = |desc: &phonenumber::metadata::Descriptor| {
            let source: String = desc
                .national_number()
                .as_str()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            format!("^(?:{source})$")
        };
        let types = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        Some(NationalPlan {
            trunk: meta.national_prefix().map(str::to_string),
            lengths: possible_lengths(meta),
            general: regex::Regex::new(&anchored(d.general())).ok()?,
            types: regex::RegexSet::new(types.into_iter().flatten().map(anchored)).ok()?,
        })
    }

    /// Valid as written, or once its trunk prefix (the leading `0` of `020 ...`) is dropped.
    fn is_valid(&self, digits: &str) -> bool {
        let stripped = self.trunk.as_deref().and_then(|t| digits.strip_prefix(t));
        [Some(digits), stripped].into_iter().flatten().any(|n| {
            self.lengths.contains(&(n.len() as u16))
                && self.general.is_match(n)
                && self.types.is_match(n)
        })
    }
}

fn national_plans() -> &'static [NationalPlan] {
    static PLANS: std::sync::OnceLock<Vec<NationalPlan>> = std::sync::OnceLock::new();
    PLANS.get_or_init(|| {
        NATIONAL_REGIONS
            .iter()
            .filter_map(|&r| NationalPlan::new(r))
            .collect()
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
