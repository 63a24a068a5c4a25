//! Properties over generated messages: redaction yields valid JSON that re-scans clean of
//! what was redacted; clean messages come back byte-identical; the streaming and block
//! databases agree for any chunking.

mod common;

use proptest::prelude::*;
use sluice_engine::scan::dedup_matches;
use sluice_engine::{Action, Direction, Inspector, Policy, Scanner, Scope, Verdict};

fn examples() -> Vec<String> {
    common::default_rules()
        .ruleset
        .rules
        .iter()
        .filter(|r| {
            r.scopes.contains(Scope::Results) && r.category != sluice_engine::Category::Injection
        })
        .flat_map(|r| r.examples.iter().cloned())
        .collect()
}

fn piece() -> impl Strategy<Value = String> {
    let ex = examples();
    prop_oneof![
        3 => "[a-zA-Z0-9 ,.:/_-]{0,40}",
        1 => "\\PC{0,20}",
        2 => proptest::sample::select(ex),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 1..5).prop_map(|v| v.join(" "))
}

fn message() -> impl Strategy<Value = String> {
    proptest::collection::vec(("[a-z_]{1,8}", text()), 1..6).prop_map(|fields| {
        let mut obj = serde_json::Map::new();
        for (k, v) in fields {
            obj.insert(k, serde_json::Value::String(v));
        }
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "result": {"content": [{"type": "text", "text": "see structured"}], "structuredContent": obj}
        })
        .to_string()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn redaction_is_valid_json_and_rescans_clean(msg in message()) {
        let mut insp = Inspector::new(common::default_rules()).unwrap();
        let policy = Policy::with_mode(Action::Redact);
        let res = insp.inspect(msg.as_bytes(), Direction::ServerToClient, None, &policy).unwrap();
        match res.verdict {
            Verdict::Forward => prop_assert!(res.findings.is_empty()),
            Verdict::Redacted(out) => {
                let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
                prop_assert!(v.is_object());
                let again = insp.inspect(&out, Direction::ServerToClient, None, &policy).unwrap();
                let before: Vec<&str> = res.findings.iter().map(|f| f.rule_id.as_str()).collect();
                for f in &again.findings {
                    prop_assert!(!before.contains(&f.rule_id.as_str()), "{} still found", f.rule_id);
                }
            }
            Verdict::Block { .. } => prop_assert!(false, "redact mode never blocks"),
        }
    }

    #[test]
    fn clean_messages_are_byte_identical(msg in proptest::collection::vec(("[a-z]{1,8}", "[a-z ]{0,30}"), 1..8)
        .prop_map(|f| {
            let body: Vec<String> = f.iter().map(|(k, v)| format!("\"{k}\" :  \"{v}\"")).collect();
            format!("{{\"jsonrpc\":\"2.0\", \"id\":3,\"result\":{{ {} }} }}", body.join(" ,"))
        })) {
        let mut insp = Inspector::new(common::default_rules()).unwrap();
        let res = insp.inspect(msg.as_bytes(), Direction::ServerToClient, None, &Policy::with_mode(Action::Redact)).unwrap();
        if res.findings.is_empty() {
            prop_assert_eq!(res.verdict, Verdict::Forward);
        }
    }

    #[test]
    fn stream_and_block_agree_for_any_chunking(t in text(), cuts in proptest::collection::vec(0usize..400, 0..6)) {
        let rules = common::default_rules();
        let mut scanner = Scanner::new(rules).unwrap();
        let bytes = t.as_bytes();
        let mut block = scanner.scan_text(bytes, Scope::Results).unwrap();
        dedup_matches(&mut block);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut stream = scanner.open_stream(Scope::Results).unwrap();
        let mut streamed = Vec::new();
        let mut pos = 0;
        for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            stream.feed(&bytes[pos..c], &mut streamed).unwrap();
            pos = c;
        }
        stream.finish(&mut streamed).unwrap();
        dedup_matches(&mut streamed);
        let key = |v: &[sluice_engine::Match]| v.iter().map(|m| (m.rule, m.start, m.end)).collect::<Vec<_>>();
        prop_assert_eq!(key(&block), key(&streamed));
    }
}

#[test]
fn pool_inspects_on_workers() {
    let pool = sluice_engine::Pool::new(common::default_rules(), 2).unwrap();
    let policy = std::sync::Arc::new(Policy::with_mode(Action::Redact));
    let futs: Vec<_> = (0..50)
        .map(|i| {
            let msg = format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{{"content":[{{"type":"text","text":"AKIAQX7ZR2M4KD5T6WYB"}}]}}}}"#);
            pool.inspect(msg.into_bytes(), Direction::ServerToClient, None, policy.clone())
        })
        .collect();
    for f in futs {
        let res = futures_executor::block_on(f).unwrap().unwrap();
        assert!(matches!(res.verdict, Verdict::Redacted(_)));
    }
    assert_eq!(pool.threads(), 2);
}

#[test]
fn small_messages_are_inspected_on_the_calling_thread_large_ones_on_workers() {
    let pool = sluice_engine::Pool::new(common::default_rules(), 2)
        .unwrap()
        .with_inline_max(1024);
    let here = std::thread::current().id();
    let thread_of = |bytes: usize| {
        let f = pool.run_for(7, bytes, |_| std::thread::current().id());
        futures_executor::block_on(f).unwrap()
    };
    assert_eq!(thread_of(100), here);
    assert_eq!(thread_of(1024), here);
    assert_ne!(thread_of(1025), here);
    let none_inline = sluice_engine::Pool::new(common::default_rules(), 1)
        .unwrap()
        .with_inline_max(0);
    let f = none_inline.run_for(7, 1, |_| std::thread::current().id());
    assert_ne!(futures_executor::block_on(f).unwrap(), here);
    // The same small message gives the same inspection either way.
    let policy = std::sync::Arc::new(Policy::with_mode(Action::Redact));
    let msg = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"AKIAQX7ZR2M4KD5T6WYB"}]}}"#;
    for p in [&pool, &none_inline] {
        let f = p.inspect_for(7, &msg[..], Direction::ServerToClient, None, policy.clone());
        let res = futures_executor::block_on(f).unwrap().unwrap();
        assert!(matches!(res.verdict, Verdict::Redacted(_)));
    }
}
