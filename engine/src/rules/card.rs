//! Payment card numbers: the issuer identification number (IIN) ranges and lengths of the
//! card networks, the way the digits are grouped when written, and the Luhn check digit.
//!
//! Ranges and lengths: ISO/IEC 7812-1 as published by the networks, collected in the
//! "Payment card number" IIN table (Wikipedia, 2024 revision), plus the 15-digit JCB ranges
//! 1800 and 2131 that older JCB cards and test generators still use, and JCB widened to all of
//! 35 as test-data generators (Faker) and several IIN lists give it. UATP (15 digits starting
//! with 1) is left out: any 15-digit id starting with 1 would pass a tenth of the time.

/// One IIN range: numbers whose first `digits` digits lie in `lo..=hi`, valid at lengths
/// `min_len..=max_len`.
struct Range {
    lo: u32,
    hi: u32,
    digits: u32,
    min_len: usize,
    max_len: usize,
}

const fn r(lo: u32, hi: u32, digits: u32, min_len: usize, max_len: usize) -> Range {
    Range {
        lo,
        hi,
        digits,
        min_len,
        max_len,
    }
}

/// Every range a card number may start with, by network.
const RANGES: &[Range] = &[
    // American Express
    r(34, 34, 2, 15, 15),
    r(37, 37, 2, 15, 15),
    // Diners Club International (and Carte Blanche 300-305)
    r(300, 305, 3, 14, 19),
    r(3095, 3095, 4, 14, 19),
    r(36, 36, 2, 14, 19),
    r(38, 39, 2, 14, 19),
    // JCB (assigned 3528-3589; card generators and some IIN lists give all of 35), and its
    // legacy 15-digit ranges
    r(35, 35, 2, 16, 19),
    r(1800, 1800, 4, 15, 15),
    r(2131, 2131, 4, 15, 15),
    // RuPay (353, 356 co-branded with JCB)
    r(353, 353, 3, 16, 16),
    r(356, 356, 3, 16, 16),
    // China T-Union
    r(31, 31, 2, 19, 19),
    // Visa (Visa Electron and Dankort co-branded share the range)
    r(4, 4, 1, 13, 13),
    r(4, 4, 1, 16, 16),
    r(4, 4, 1, 19, 19),
    // Mastercard
    r(51, 55, 2, 16, 16),
    r(2221, 2720, 4, 16, 16),
    // Mir, BORICA
    r(2200, 2205, 4, 16, 19),
    // Maestro (12 to 19 digits), Dankort 5019, Verve 506099-506198 and 507865-507964
    r(5018, 5020, 4, 12, 19),
    r(5038, 5038, 4, 12, 19),
    r(5893, 5893, 4, 12, 19),
    r(6304, 6304, 4, 12, 19),
    r(6759, 6759, 4, 12, 19),
    r(6761, 6763, 4, 12, 19),
    r(50, 50, 2, 16, 19),
    r(56, 58, 2, 12, 19),
    // UnionPay, Discover (6011, 622126-622925, 644-649, 65), RuPay 60 and 65, InterPayment
    // 636, InstaPayment 637-639, Troy 65
    r(60, 69, 2, 16, 19),
    // RuPay 81, 82; UzCard 8600; Troy 9792; Humo 9860
    r(81, 82, 2, 16, 16),
    r(8600, 8600, 4, 16, 16),
    r(9792, 9792, 4, 16, 16),
    r(9860, 9860, 4, 16, 16),
];

/// True when `span` is a payment card number as people write one: 12 to 19 digits, either
/// contiguous or grouped by one kind of separator (space or dash) into groups of four with a
/// shorter last group, or 4-6-5 / 4-6-4 (American Express, Diners Club); starting with a
/// network's IIN at a length that network issues; with a valid Luhn check digit.
pub fn payment_card(span: &[u8]) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut groups = [0usize; 8];
    let mut g = 0;
    let mut sep = None;
    for &b in span {
        if b.is_ascii_digit() {
            if n == digits.len() {
                return false;
            }
            digits[n] = b;
            n += 1;
            groups[g] += 1;
        } else if (b == b' ' || b == b'-') && sep.is_none_or(|s| s == b) && groups[g] > 0 {
            sep = Some(b);
            g += 1;
            if g == groups.len() {
                return false;
            }
        } else {
            return false;
        }
    }
    let groups = &groups[..=g];
    let digits = &digits[..n];
    (12..=19).contains(&n)
        && groups_as_written(groups)
        && in_a_network(digits)
        && super::validate::luhn(digits)
}

/// Contiguous, or fours with a last group of 1-4, or 4-6-5 / 4-6-4.
fn groups_as_written(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 4] | [4, 6, 5] => true,
        [body @ .., last] => body.len() >= 2 && body.iter().all(|&l| l == 4) && *last <= 4,
        [] => false,
    }
}

fn in_a_network(digits: &[u8]) -> bool {
    let prefix = |k: u32| {
        digits[..k as usize]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    RANGES.iter().any(|r| {
        (r.min_len..=r.max_len).contains(&digits.len()) && (r.lo..=r.hi).contains(&prefix(r.digits))
    })
}

#[cfg(test)]
mod tests {
    use super::payment_card;

    /// Numbers built here from each network's IIN with a computed check digit.
    fn with_check_digit(body: &str) -> String {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|s| crate::rules::validate::luhn(s.as_bytes()))
            .unwrap()
    }

    #[test]
    fn every_network_at_its_lengths() {
        for body in [
            "411111111111111",    // Visa 16
            "411111111111",       // Visa 13
            "411111111111111111", // Visa 19
            "222300000000000",    // Mastercard 2-series
            "545454545454545",    // Mastercard 51-55
            "37828224631000",     // Amex 15
            "3056930902590",      // Diners 14
            "353011133330000",    // JCB 16
            "18001234567890",     // JCB legacy 15
            "601111111111111",    // Discover
            "62212600000000000",  // UnionPay 18
            "50381234567",        // Maestro 12
            "22001234567890123",  // Mir 18
        ] {
            let card = with_check_digit(body);
            assert!(payment_card(card.as_bytes()), "{card}");
        }
    }

    #[test]
    fn grouping_must_look_written_by_a_person() {
        assert!(payment_card(b"4111 1111 1111 1111"));
        assert!(payment_card(b"4111-1111-1111-1111"));
        assert!(payment_card(b"3782 822463 10005"));
        assert!(!payment_card(b"4111 1111-1111 1111"), "mixed separators");
        assert!(!payment_card(b"41111 11111 111111"), "groups of five");
        assert!(!payment_card(b"4111111 111111111"), "two groups");
    }

    #[test]
    fn wrong_network_length_or_check_digit() {
        assert!(!payment_card(b"4111111111111112"), "Luhn");
        assert!(
            !payment_card(b"41111111111116"),
            "Visa has no 14-digit cards"
        );
        assert!(!payment_card(b"7111111111111117"), "7 is no card network");
        assert!(!payment_card(b"1234567812345670"), "IIN 12");
        assert!(!payment_card(b"41111111111111111111"), "20 digits");
    }
}
