//! Inputs written to slip a secret past the scanner: sluice's own redaction marker, a
//! stand-in word inside a token, a token rejected whole. Every secret here is fabricated.

mod common;

use sluice_engine::{Action, Direction, Inspector, Policy, Verdict};

fn tool_result(text: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": text}]}})
        .to_string()
}

fn forwarded(text: &str) -> Option<String> {
    let mut insp = Inspector::new(common::default_rules()).unwrap();
    let policy = Policy::with_mode(Action::Redact);
    let msg = tool_result(text);
    let res = insp
        .inspect(msg.as_bytes(), Direction::ServerToClient, None, &policy)
        .unwrap();
    match res.verdict {
        Verdict::Forward => Some(msg),
        Verdict::Redacted(b) => Some(String::from_utf8(b).unwrap()),
        Verdict::Block { .. } => None,
    }
}

#[test]
fn an_unclosed_redaction_marker_hides_nothing() {
    let secret = "ghp_Q7rT2mXk9LpB4vN8cZ1dF6hJ3wY5sA0eG2uK";
    for prefix in ["[REDACTED: ", "[REDACTED:note ", "[REDACTED:aws.x "] {
        let out = forwarded(&format!("{prefix}{secret} AKIAQ3ZRT7XZ4MNPB2WK")).unwrap();
        assert!(!out.contains(secret), "{prefix}: {out}");
        assert!(!out.contains("AKIAQ3ZRT7XZ4MNPB2WK"), "{prefix}: {out}");
    }
}

#[test]
fn a_stand_in_word_inside_a_token_does_not_hide_it() {
    let token = "X7Fe4ZMR9JFx4oTTvZyBEXAMPLEP0iEVdAVwomhkxKSnSve";
    let out = forwarded(&format!("Authorization: Bearer {token}")).unwrap();
    assert!(!out.contains("P0iEVdAVwomhkxKSnSve"), "{out}");
}

#[test]
fn a_token_rejected_whole_is_not_redacted_in_part() {
    // Ends in EXAMPLE like AWS's documentation keys: a stand-in, left as it is.
    let text = "Authorization: Bearer X7Fe4ZMR9JFx4oTTvZyBP0iEVdAVwomEXAMPLE";
    assert_eq!(forwarded(text).unwrap(), tool_result(text));
}

#[test]
fn invisible_characters_and_fullwidth_letters_do_not_hide_a_secret() {
    let token = "ghp_Q7rT2mXk9LpB4vN8cZ1dF6hJ3wY5sA0eG2uK";
    // A zero-width space and a soft hyphen inside the token; the token in fullwidth forms.
    let split = format!(
        "{}\u{200B}{}\u{AD}{}",
        &token[..10],
        &token[10..25],
        &token[25..]
    );
    let fullwidth: String = token
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
        .collect();
    // Musical-notation and deprecated format controls, and a combining mark on a letter.
    let odd = format!(
        "{}\u{1D173}{}\u{206A}{}\u{20D0}{}",
        &token[..8],
        &token[8..20],
        &token[20..30],
        &token[30..]
    );
    for text in [split, fullwidth, odd] {
        let out = forwarded(&format!("token: {text}")).unwrap();
        assert!(out.contains("[REDACTED"), "{out}");
        assert!(!out.contains(&text[6..]), "{out}");
    }
}

#[test]
fn a_card_number_in_fullwidth_digits_is_found() {
    let card: String = "4111 1111 1111 1111"
        .chars()
        .map(|c| match c {
            ' ' => ' ',
            d => char::from_u32(d as u32 - 0x30 + 0xFF10).unwrap(),
        })
        .collect();
    let out = forwarded(&format!("card on file: {card}")).unwrap();
    assert!(!out.contains(&card[3..]), "{out}");
}

#[test]
fn base64_and_hex_broken_up_by_zero_width_spaces_are_decoded() {
    use base64::Engine as _;
    let token = "ghp_Q7rT2mXk9LpB4vN8cZ1dF6hJ3wY5sA0eG2uK";
    let plain = format!("export GITHUB_TOKEN={token}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&plain);
    let hex: String = plain.bytes().map(|b| format!("{b:02x}")).collect();
    for enc in [b64, hex] {
        let broken: Vec<String> = enc
            .as_bytes()
            .chunks(8)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let text = format!("blob: {}", broken.join("\u{200B}"));
        let out = forwarded(&text).unwrap();
        assert!(!out.contains(&broken[3]), "{out}");
    }
}

#[test]
fn base64_and_hex_of_utf16_and_latin1_text_are_decoded() {
    use base64::Engine as _;
    let token = "ghp_Wb3nR8tK1qZ6yH2mV9cX4pL7sD0fJ5gA3eU1";
    // PowerShell -EncodedCommand: base64 of UTF-16LE; a Latin-1 config file with an accent.
    let utf16: Vec<u8> = format!("$env:GITHUB_TOKEN = \"{token}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let latin1: Vec<u8> = format!("# Configuraci\u{f3}n\nGITHUB_TOKEN={token}\n")
        .chars()
        .map(|c| c as u8)
        .collect();
    for bytes in [utf16, latin1] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        for enc in [b64, hex] {
            let text = format!("powershell -EncodedCommand {enc}");
            let out = forwarded(&text).unwrap();
            assert!(!out.contains(&enc), "{out}");
            assert!(out.contains("REDACTED:github.pat-classic"), "{out}");
        }
    }
}

#[test]
fn grouped_hex_dumps_are_decoded() {
    let token = "ghp_Hc5vT9qW2nL8rB4xK7mZ1pD6sF3gJ0yE8aU2";
    let bytes = format!("GITHUB_TOKEN={token}").into_bytes();
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let quads: Vec<String> = pairs.chunks(2).map(|c| c.concat()).collect();
    for dump in [pairs.join(" "), pairs.join(":"), quads.join(" ")] {
        let text = format!("memory at 0x7ffe: {dump}\n(end of dump)");
        let out = forwarded(&text).unwrap();
        assert!(!out.contains(&pairs[20..30].join(" ")), "{out}");
        assert!(out.contains("REDACTED:github.pat-classic"), "{out}");
    }
}

#[test]
fn tag_characters_written_as_escapes_in_nested_json_are_found() {
    // ASCII smuggling inside JSON text nested in a result: the tag characters arrive as
    // `\udb40\udcXX` escapes, which the escapes view must keep for the unicode rules.
    let nested =
        r#"{"note":"ok\udb40\udc49\udb40\udc67\udb40\udc6e\udb40\udc6f\udb40\udc72\udb40\udc65"}"#;
    let out = forwarded(nested).unwrap();
    assert!(out.contains("REDACTED:unicode.tag-characters"), "{out}");
}
