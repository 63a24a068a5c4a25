//! The forms of a path that servers behind the proxy resolve differently from RFC 3986, checked
//! on the path with every escape decoded once (why each is refused: the parent module's doc).

use super::PathError;

/// Errors: the path decoded once is not UTF-8, holds a dot segment with parameters, or holds
/// an escape that a second decoding would turn into a dot, a separator or a non-ASCII byte.
pub(super) fn check(once: &[u8]) -> Result<(), PathError> {
    if std::str::from_utf8(once).is_err() {
        return Err(PathError::NotUtf8);
    }
    if once.split(|b| *b == b'/').any(dot_with_params) {
        return Err(PathError::DotParams);
    }
    if second_escapes(once).any(|b| !harmless_twice(b)) {
        return Err(PathError::DoubleEncoded);
    }
    Ok(())
}

/// `..;x`, `.;`, ...: what is left once a servlet container strips `;` parameters is a dot
/// segment, and there were parameters to strip.
fn dot_with_params(segment: &[u8]) -> bool {
    let name = segment.split(|b| *b == b';').next().unwrap_or_default();
    (name == b"." || name == b"..") && name.len() < segment.len()
}

/// The bytes a second decoding would produce: a `%` (which can only have come from `%25`)
/// followed by two hex digits.
fn second_escapes(once: &[u8]) -> impl Iterator<Item = u8> + '_ {
    once.windows(3).filter_map(|w| match w {
        [b'%', hi, lo] => Some((hex(*hi)? << 4) | hex(*lo)?),
        _ => None,
    })
}

fn hex(d: u8) -> Option<u8> {
    char::from(d)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// Bytes that mean nothing to a path when decoded twice: printable ASCII other than a dot,
/// `%`, a backslash and RFC 3986's reserved characters (section 2.2), and the space (a
/// literal `%20` in a name is the one double encoding people write on purpose).
fn harmless_twice(b: u8) -> bool {
    const RESERVED: &[u8] = b":/?#[]@!$&'()*+,;=";
    (b.is_ascii_graphic() || b == b' ') && !RESERVED.contains(&b) && !b".%\\".contains(&b)
}
