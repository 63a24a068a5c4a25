//! Post-match validators: checks a regular expression cannot express (checksums, entropy).

use std::fmt;
use std::str::FromStr;

/// A check on a match that a regular expression cannot express. Rules files name them
/// `luhn`, `card`, `phone`, `iban`, `ssn`, `jwt`, `not-sequential`, `not-placeholder`,
/// `entropy>=N` and `not-after=CHARS`.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    /// Luhn checksum over the digits of the span, of which there must be at least 12
    /// (payment card numbers).
    Luhn,
    /// A payment card number: network IIN range and length, grouping, Luhn (see
    /// [`super::card::payment_card`]).
    PaymentCard,
    /// A phone number valid in a numbering plan (see [`super::phone::phone_number`]).
    PhoneNumber,
    /// An IBAN: a known country code, that country's length and the ISO 7064 mod-97-10
    /// check (ISO 13616). Spaces and dashes are ignored.
    Iban,
    /// Minimum Shannon entropy in bits per byte of the span.
    MinEntropy(f64),
    /// US SSN structure: area not 000, 666 or 9xx; group not 00; serial not 0000.
    Ssn,
    /// The first dot-separated part is base64url of a JSON object with an `alg` member.
    JwtHeader,
    /// The span is not one character repeated, nor a run such as 0123456789 / abcdef.
    NotSequential,
    /// The byte before the match is none of these (e.g. `:` keeps `user:pass@host` from
    /// reading as an email address).
    NotAfter(Vec<u8>),
    /// The span is no template, variable reference or filler value (`xxxx`, `dummy`, `test`):
    /// see [`super::placeholder::is_filler`]. For rules that take any value after a key name.
    NotPlaceholder,
}

impl Validator {
    /// Whether `span`, the rule's capture, passes. `before` is the byte preceding the whole
    /// match in the same string, if any.
    pub fn check(&self, span: &[u8], before: Option<u8>) -> bool {
        match *self {
            Validator::NotAfter(ref set) => before.is_none_or(|b| !set.contains(&b)),
            Validator::Luhn => luhn(span),
            Validator::PaymentCard => super::card::payment_card(span),
            Validator::PhoneNumber => super::phone::phone_number(span),
            Validator::Iban => iban_mod97(span),
            Validator::MinEntropy(min) => shannon_entropy(span) >= min,
            Validator::Ssn => ssn(span),
            Validator::JwtHeader => jwt_header(span),
            Validator::NotSequential => !sequential(span),
            Validator::NotPlaceholder => !super::placeholder::is_filler(span),
        }
    }
}

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Luhn => f.write_str("luhn"),
            Validator::PaymentCard => f.write_str("card"),
            Validator::PhoneNumber => f.write_str("phone"),
            Validator::Iban => f.write_str("iban"),
            Validator::MinEntropy(v) => write!(f, "entropy>={v}"),
            Validator::Ssn => f.write_str("ssn"),
            Validator::JwtHeader => f.write_str("jwt"),
            Validator::NotSequential => f.write_str("not-sequential"),
            Validator::NotPlaceholder => f.write_str("not-placeholder"),
            Validator::NotAfter(set) => write!(f, "not-after={}", String::from_utf8_lossy(set)),
        }
    }
}

impl FromStr for Validator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(v) = s.strip_prefix("entropy>=") {
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("validator `{s}`: `{v}` is not a number"))?;
            if !(0.0..=8.0).contains(&v) {
                return Err(format!(
                    "validator `{s}`: entropy is measured in bits per byte, 0 to 8"
                ));
            }
            return Ok(Validator::MinEntropy(v));
        }
        if let Some(set) = s.strip_prefix("not-after=") {
            if set.is_empty() || !set.is_ascii() {
                return Err(format!(
                    "validator `{s}`: name one or more ASCII characters"
                ));
            }
            return Ok(Validator::NotAfter(set.as_bytes().to_vec()));
        }
        match s {
            "luhn" => Ok(Validator::Luhn),
            "card" => Ok(Validator::PaymentCard),
            "phone" => Ok(Validator::PhoneNumber),
            "iban" => Ok(Validator::Iban),
            "ssn" => Ok(Validator::Ssn),
            "jwt" => Ok(Validator::JwtHeader),
            "not-sequential" => Ok(Validator::NotSequential),
            "not-placeholder" => Ok(Validator::NotPlaceholder),
            _ => Err(format!(
                "unknown validator `{s}` (expected luhn, card, phone, iban, ssn, jwt, not-sequential, not-placeholder, entropy>=N or not-after=CHARS)"
            )),
        }
    }
}

pub fn luhn(span: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for &b in span.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    n >= 12 && sum.is_multiple_of(10)
}

/// IBAN length by country: the SWIFT IBAN Registry (release 98, 2024), then the national
/// formats in IBAN form that registry does not list but banks in those countries print
/// (Algeria, Angola, Benin, Burkina Faso, Cameroon, Cape Verde, Ivory Coast, Congo, Gabon,
/// Equatorial Guinea, Guinea-Bissau, Honduras, Iran, Comoros, Morocco, Madagascar, Mali,
/// Mozambique, Niger, Senegal, Chad, Togo).
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20), (b"BE", 16),
    (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28), (b"CH", 21), (b"CR", 22),
    (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27), (b"DK", 18), (b"DO", 28), (b"EE", 20),
    (b"EG", 29), (b"ES", 24), (b"FI", 18), (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22),
    (b"GE", 22), (b"GI", 23), (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HR", 21), (b"HU", 28),
    (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30), (b"KW", 30),
    (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20), (b"LU", 20), (b"LV", 21),
    (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22), (b"MK", 19), (b"MN", 20), (b"MR", 27),
    (b"MT", 31), (b"MU", 30), (b"NI", 28), (b"NL", 18), (b"NO", 15), (b"OM", 23), (b"PK", 24),
    (b"PL", 28), (b"PS", 29), (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33),
    (b"SA", 24), (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27),
    (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"TR", 26), (b"UA", 29),
    (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
    (b"DZ", 26), (b"AO", 25), (b"BJ", 28), (b"BF", 28), (b"CM", 27), (b"CV", 25), (b"CI", 28),
    (b"CG", 27), (b"GA", 27), (b"GQ", 27), (b"GW", 25), (b"HN", 28), (b"IR", 26), (b"KM", 27),
    (b"MA", 28), (b"MG", 27), (b"ML", 28), (b"MZ", 25), (b"NE", 28), (b"SN", 28), (b"TD", 27),
    (b"TG", 28),
];

fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, len)| len)
}

/// An IBAN: a registry country's code, that country's length, and the ISO 7064 mod-97-10
/// check (ISO 13616). Spaces and dashes are ignored; either case is read.
pub fn iban_mod97(span: &[u8]) -> bool {
    // On the stack: every candidate of the IBAN pattern comes through here.
    let mut buf = [0u8; 34];
    let mut len = 0;
    for b in span
        .iter()
        .filter(|b| !b.is_ascii_whitespace() && **b != b'-')
    {
        if len == buf.len() || !b.is_ascii_alphanumeric() {
            return false;
        }
        buf[len] = b.to_ascii_uppercase();
        len += 1;
    }
    let chars = &buf[..len];
    if len < 15 {
        return false;
    }
    if iban_length(&chars[..2]) != Some(chars.len()) {
        return false;
    }
    mod97_is_one(chars)
}

/// ISO 7064 mod-97-10 over upper-case alphanumerics, the first four moved to the end.
fn mod97_is_one(chars: &[u8]) -> bool {
    let rotated = chars[4..].iter().chain(chars[..4].iter());
    let mut rem: u32 = 0;
    for &c in rotated {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            let v = u32::from(c - b'A') + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    rem == 1
}

/// Shannon entropy of `span` in bits per byte (0 to 8); 0 for an empty span.
pub fn shannon_entropy(span: &[u8]) -> f64 {
    if span.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in span {
        counts[b as usize] += 1;
    }
    let len = span.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

fn ssn(span: &[u8]) -> bool {
    let digits: Vec<u8> = span
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    if digits.len() != 9 {
        return false;
    }
    let area = u32::from(digits[0]) * 100 + u32::from(digits[1]) * 10 + u32::from(digits[2]);
    let group = digits[3] * 10 + digits[4];
    let serial = digits[5..].iter().fold(0u32, |a, d| a * 10 + u32::from(*d));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A JWT (RFC 7519 section 3: base64url header `.` payload `.` signature): the header decodes
/// to a JSON object with `alg`; or, when the header does not decode to JSON at all (a token
/// damaged in a copy, or edited by hand), the payload decodes to a JSON object.
fn jwt_header(span: &[u8]) -> bool {
    let mut parts = span.split(|b| *b == b'.');
    let head = parts.next().unwrap_or_default();
    match json_segment(head) {
        Some(v) => v.get("alg").is_some(),
        None => json_segment(parts.next().unwrap_or_default()).is_some_and(|v| v.is_object()),
    }
}

fn json_segment(segment: &[u8]) -> Option<serde_json::Value> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()?;
    serde_json::from_slice(&decoded).ok()
}

fn sequential(span: &[u8]) -> bool {
    let bytes: Vec<u8> = span
        .iter()
        .copied()
        .filter(u8::is_ascii_alphanumeric)
        .collect();
    if bytes.len() < 2 {
        return true;
    }
    let same = bytes.iter().all(|b| *b == bytes[0]);
    let up = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    let down = bytes.windows(2).all(|w| w[1] == w[0].wrapping_sub(1));
    same || up || down
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_card_and_rejects_off_by_one() {
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(!luhn(b"4111 1111 1111 1112"));
    }

    #[test]
    fn iban_mod97_matches_reference_examples() {
        assert!(iban_mod97(b"GB82 WEST 1234 5698 7654 32"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(!iban_mod97(b"DE89370400440532013001"));
        assert!(iban_mod97(b"gb82 west 1234 5698 7654 32"), "lower case");
    }

    /// Check digits are searched for here (ISO 13616), so only the length table rejects.
    #[test]
    fn iban_length_must_be_the_countrys() {
        // Germany: 22 characters. One digit more or less fails even with valid check digits.
        assert!(iban_mod97(b"DE89370400440532013000"));
        for bban in ["3704004405320130001", "37040044053201300"] {
            let wrong = (0..100)
                .map(|d| format!("DE{d:02}{bban}"))
                .find(|s| mod97_is_one(s.as_bytes()));
            let wrong = wrong.unwrap();
            assert!(!iban_mod97(wrong.as_bytes()), "{wrong}");
        }
        // A country with no IBAN.
        let us = (0..100)
            .map(|d| format!("US{d:02}370400440532013000"))
            .find(|s| mod97_is_one(s.as_bytes()))
            .unwrap();
        assert!(!iban_mod97(us.as_bytes()), "{us}");
    }

    #[test]
    fn entropy_orders_random_above_repetitive() {
        assert!(shannon_entropy(b"aaaaaaaaaaaaaaaa") < 0.1);
        assert!(shannon_entropy(b"q8Zr2LmX0vB7nKp4") > 3.5);
    }

    #[test]
    fn jwt_needs_alg_or_a_json_payload_behind_a_damaged_header() {
        // {"alg":"HS256"} . {"sub":"x"} . signature
        assert!(jwt_header(
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        ));
        // {"not":"jwt"}: JSON, but no algorithm.
        assert!(!jwt_header(
            b"eyJub3QiOiJqd3QifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        ));
        // One character of the header changed: it no longer decodes to JSON.
        assert!(jwt_header(
            b"eyJhbGciOiJIUzI1NiX9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        ));
        assert!(!jwt_header(
            b"eyJhbGciOiJIUzI1NiX9.eyJzdWIiOiJ4In0X.c2lnbmF0dXJl"
        ));
    }

    #[test]
    fn ssn_structure() {
        assert!(ssn(b"123-45-6789"));
        assert!(!ssn(b"000-45-6789"));
        assert!(!ssn(b"666-45-6789"));
        assert!(!ssn(b"923-45-6789"));
        assert!(!ssn(b"123-00-6789"));
    }

    #[test]
    fn parse_validators() {
        assert_eq!("luhn".parse::<Validator>(), Ok(Validator::Luhn));
        assert_eq!(
            "entropy>=3.5".parse::<Validator>(),
            Ok(Validator::MinEntropy(3.5))
        );
        assert!("entropy>=9".parse::<Validator>().is_err());
        assert!("crc".parse::<Validator>().is_err());
    }
}
