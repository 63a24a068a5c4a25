//! SSE inspection under arbitrary chunking, and events larger than the in-memory cap.

mod common;

use sluice_engine::sse::{EventOutcome, Flow, SseInspector};
use sluice_engine::{Action, Direction, Inspector, Policy};

const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

fn stream() -> Vec<u8> {
    let mut s = String::new();
    s.push_str("id: 0\ndata:\n\n"); // priming event
    s.push_str(": keep-alive\n\n");
    s.push_str("retry: 3000\n\n");
    s.push_str("event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"step 1 done\"}}\r\n\r\n");
    s.push_str(&format!("id: 2\ndata: {{\"jsonrpc\":\"2.0\",\"id\":7,\n: mid-event comment\ndata: \"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"key {AWS}\"}}]}}}}\n\n"));
    s.push_str("id: 3\rdata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\r\r");
    s.into_bytes()
}

fn run(chunks: &[&[u8]], policy: &Policy, cap: usize) -> (Vec<u8>, Vec<Flow>, usize) {
    let mut insp = Inspector::new(common::default_rules()).unwrap();
    let mut sse = SseInspector::new(Direction::ServerToClient, cap);
    let mut out = Vec::new();
    let mut decisions = Vec::new();
    let mut flows = Vec::new();
    for c in chunks {
        let f = sse
            .feed(c, &mut insp, policy, &mut out, &mut decisions)
            .unwrap();
        flows.push(f);
        if f == Flow::Abort {
            break;
        }
    }
    if flows.last() != Some(&Flow::Abort) {
        flows.push(sse.finish(&mut decisions));
    }
    (out, flows, decisions.len())
}

#[test]
fn events_pass_through_and_secret_event_is_redacted() {
    let input = stream();
    let (out, _, n) = run(&[&input], &Policy::with_mode(Action::Redact), 1 << 20);
    assert_eq!(n, 6);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(AWS));
    assert!(text
        .starts_with("id: 0\ndata:\n\n: keep-alive\n\nretry: 3000\n\nevent: message\r\nid: 1\r\n"));
    // Data lines are rewritten where the first one stood; the comment keeps its line.
    assert!(text.contains("id: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\ndata: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"key [REDACTED:aws.access-key-id]\"}]}}\n: mid-event comment\n\n"), "{text}");
    assert!(text.ends_with("id: 3\rdata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\r\r"));
}

#[test]
fn clean_stream_is_byte_identical_for_every_split() {
    let input = String::from_utf8(stream())
        .unwrap()
        .replace(AWS, "nothing-secret-here")
        .into_bytes();
    let policy = Policy::with_mode(Action::Block);
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        let (out, _, _) = run(&[a, b], &policy, 1 << 20);
        assert_eq!(out, input, "split at {split}");
    }
    let singles: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&singles, &policy, 1 << 20).0, input);
}

#[test]
fn redacted_output_is_the_same_for_every_split() {
    let input = stream();
    let policy = Policy::with_mode(Action::Redact);
    let (whole, _, _) = run(&[&input], &policy, 1 << 20);
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(run(&[a, b], &policy, 1 << 20).0, whole, "split at {split}");
    }
}

#[test]
fn blocked_response_event_becomes_error_with_same_id_field() {
    let input = stream();
    let (out, _, _) = run(&[&input], &Policy::with_mode(Action::Block), 1 << 20);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("id: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32001"),
        "{text}"
    );
    assert!(text.contains("\n: mid-event comment\n\nid: 3"), "{text}");
}

fn big_event(payload: &str) -> Vec<u8> {
    format!(
        "id: 9\ndata: {{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{payload}\"}}]}}}}\n\nid: 10\ndata: {{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{}}}}\n\n"
    )
    .into_bytes()
}

#[test]
fn oversized_clean_event_streams_through_unchanged() {
    let filler = "lorem ipsum dolor sit amet \\n ".repeat(40_000); // ~1.2 MB
    let input = big_event(&filler);
    let chunks: Vec<&[u8]> = input.chunks(7_919).collect();
    let (out, flows, n) = run(&chunks, &Policy::with_mode(Action::Block), 64 << 10);
    assert_eq!(n, 2);
    assert!(flows.iter().all(|f| *f == Flow::Continue));
    assert_eq!(out, input);
}

#[test]
fn oversized_event_with_secret_aborts_before_the_secret_is_sent() {
    let filler = "x ".repeat(200_000);
    let payload = format!("{filler} {AWS} {filler}");
    let input = big_event(&payload);
    let chunks: Vec<&[u8]> = input.chunks(4_096).collect();
    let (out, flows, _) = run(&chunks, &Policy::with_mode(Action::Redact), 64 << 10);
    assert_eq!(flows.last(), Some(&Flow::Abort));
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("AKIAQX7"), "secret prefix leaked");
    assert!(!text.contains("\n\n"), "the event must stay unterminated");
    // Monitor mode lets it through, reporting the finding.
    let mut insp = Inspector::new(common::default_rules()).unwrap();
    let mut sse = SseInspector::new(Direction::ServerToClient, 64 << 10);
    let (mut out, mut d) = (Vec::new(), Vec::new());
    let policy = Policy::with_mode(Action::Monitor);
    for c in &chunks {
        assert_eq!(
            sse.feed(c, &mut insp, &policy, &mut out, &mut d).unwrap(),
            Flow::Continue
        );
    }
    assert_eq!(out, input);
    match &d[0].outcome {
        EventOutcome::Streamed { findings, aborted } => {
            assert!(!aborted);
            assert!(findings.iter().any(|f| f.rule_id == "aws.access-key-id"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_event_data_is_dropped_unless_fail_open() {
    let input = b"id: 1\ndata: {not json\n\n";
    let (out, _, _) = run(&[input], &Policy::default(), 1 << 20);
    assert_eq!(out, b"id: 1\n\n");
    let open = Policy {
        fail_open: true,
        ..Policy::default()
    };
    let (out, _, _) = run(&[input], &open, 1 << 20);
    assert_eq!(out, input);
}

#[test]
fn oversized_event_with_a_bad_unicode_escape_aborts_unless_fail_open() {
    // `\u12"` used to swallow the quote as a digit: the decoder then took what follows for
    // text outside strings and never scanned it.
    let filler = "x ".repeat(100_000);
    let payload = format!(r#"{filler}\u12","more":"{filler}"#);
    let input = big_event(&payload);
    let chunks: Vec<&[u8]> = input.chunks(4_096).collect();
    let (out, flows, n) = run(&chunks, &Policy::default(), 64 << 10);
    assert_eq!(flows.last(), Some(&Flow::Abort));
    assert_eq!(
        n, 1,
        "the event is decided (aborted), the next one never read"
    );
    assert!(out.len() < input.len() / 2 + 4_096, "stopped at the escape");
    assert!(
        !String::from_utf8_lossy(&out).contains("\n\n"),
        "unterminated"
    );
    let open = Policy {
        fail_open: true,
        ..Policy::default()
    };
    let (out, flows, _) = run(&chunks, &open, 64 << 10);
    assert!(flows.iter().all(|f| *f == Flow::Continue));
    assert_eq!(out, input);
    // Lone surrogates are JSON: a big event with them streams through.
    let payload = format!(r"{filler}\ud800 \udc00{filler}");
    let input = big_event(&payload);
    let chunks: Vec<&[u8]> = input.chunks(4_096).collect();
    let (out, flows, _) = run(&chunks, &Policy::default(), 64 << 10);
    assert!(flows.iter().all(|f| *f == Flow::Continue));
    assert_eq!(out, input);
}

#[test]
fn a_leading_byte_order_mark_hides_nothing_for_every_split() {
    // Clients strip one leading BOM (UTF-8 decode), so the first line is a data field to them.
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(&stream());
    for split in 0..8 {
        let (a, b) = input.split_at(split);
        let (out, _, n) = run(&[a, b], &Policy::with_mode(Action::Redact), 1 << 20);
        assert_eq!(n, 6, "split at {split}");
        assert!(
            out.starts_with(b"\xEF\xBB\xBFid: 0\ndata:\n\n"),
            "split at {split}"
        );
        assert!(
            !String::from_utf8_lossy(&out).contains(AWS),
            "split at {split}"
        );
    }
    // Only one BOM is stripped; only at the start.
    let mut twice = b"\xEF\xBB\xBF\xEF\xBB\xBF".to_vec();
    twice.extend_from_slice(
        format!("data: {{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"k\":\"{AWS}\"}}}}\n\n")
            .as_bytes(),
    );
    let (out, _, _) = run(&[&twice], &Policy::with_mode(Action::Redact), 1 << 20);
    assert!(out.starts_with(b"\xEF\xBB\xBF\xEF\xBB\xBFdata"));
}

#[test]
fn the_start_of_a_byte_order_mark_alone_is_data() {
    let input = format!(
        "\u{FEFF}data: {{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"k\":\"{AWS}\"}}}}\n\n"
    );
    let bytes = input.as_bytes();
    let (out, _, n) = run(
        &[&bytes[..1], &bytes[1..2], &bytes[2..]],
        &Policy::with_mode(Action::Redact),
        1 << 20,
    );
    assert_eq!(n, 1);
    assert!(!String::from_utf8_lossy(&out).contains(AWS));
    // Two of its three bytes and then something else: not stripped, passed to the parser.
    let mut odd = b"\xEF\xBB".to_vec();
    odd.extend_from_slice(b"data: x\n\n");
    let (out, _, _) = run(
        &[&odd[..1], &odd[1..]],
        &Policy::with_mode(Action::Redact),
        1 << 20,
    );
    assert!(out.is_empty() || out.starts_with(b"\xEF\xBB"));
}
