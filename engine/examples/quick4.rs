use hyperscan::prelude::*;
use sluice_engine::*;
fn build(rules: &[Rule]) -> BlockDatabase {
    Patterns(rules.iter().enumerate().map(|(i, r)| {
        let mut f = CompileFlags::empty();
        if !r.pattern.is_ascii() || r.pattern.contains("\\x{") { f |= CompileFlags::UTF8; }
        let mut p = Pattern::with_flags(r.pattern.clone(), f).unwrap(); p.id = Some(i); p
    }).collect()).build().unwrap()
}
fn time(db: &BlockDatabase, data: &[u8]) -> f64 {
    let s = db.alloc_scratch().unwrap();
    let mut best = f64::MAX;
    for _ in 0..3 { let t = std::time::Instant::now(); db.scan(data, &s, |_, _, _, _| Matching::Continue).unwrap(); best = best.min(t.elapsed().as_secs_f64()); }
    data.len() as f64 / best / 1e6
}
fn main() {
    let rs = Ruleset::embedded_default();
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let data = &data[..10_000_000];
    let full = time(&build(&rs.rules), data);
    println!("full {full:.0} MB/s");
    let filter: Vec<String> = std::env::args().skip(2).collect();
    let mut res = vec![];
    for i in 0..rs.len() {
        if !filter.is_empty() && !filter.iter().any(|f| rs.rules[i].id.starts_with(f.as_str())) { continue; }
        let mut r = rs.rules.clone(); let id = r.remove(i).id;
        res.push((time(&build(&r), data), id));
    }
    res.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    for (m, id) in res.iter().take(15) { println!("{m:8.0} MB/s without {id}"); }
    let without: Vec<Rule> = rs.rules.iter().filter(|r| !r.id.starts_with("pii.") ).cloned().collect();
    println!("without pii: {:.0}", time(&build(&without), data));
    let without: Vec<Rule> = rs.rules.iter().filter(|r| !r.id.starts_with("injection.") ).cloned().collect();
    println!("without injection: {:.0}", time(&build(&without), data));
    let only: Vec<Rule> = rs.rules.iter().filter(|r| r.category == Category::Secret ).cloned().collect();
    println!("secrets only: {:.0}", time(&build(&only), data));
}
