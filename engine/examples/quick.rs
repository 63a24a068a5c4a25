use sluice_engine::*;
fn main() {
    let t = std::time::Instant::now();
    let rs = Ruleset::embedded_default();
    println!("loaded {} rules in {:?}", rs.len(), t.elapsed());
    let t = std::time::Instant::now();
    let c = CompiledRules::compile(rs).unwrap_or_else(|e| { eprintln!("{e}"); std::process::exit(1) });
    println!("compiled in {:?}, max window {}", t.elapsed(), c.max_window);
    let mut s = Scanner::new(c.clone()).unwrap();
    let mut bad = 0;
    for (i, r) in c.ruleset.rules.iter().enumerate() {
        let scope = r.scopes.iter().next().unwrap();
        for e in &r.examples {
            let m = s.scan_text(e.as_bytes(), scope).unwrap();
            if !m.iter().any(|m| m.rule == i) { println!("MISS {} {:?}", r.id, e); bad += 1; }
        }
        for e in &r.negative_examples {
            let m = s.scan_text(e.as_bytes(), scope).unwrap();
            if m.iter().any(|m| m.rule == i) { println!("FP {} {:?}", r.id, e); bad += 1; }
        }
    }
    println!("bad {bad}");
}
