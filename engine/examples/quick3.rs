use hyperscan::prelude::*;
use sluice_engine::*;
fn main() {
    let rs = Ruleset::embedded_default();
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let data = &data[..10_000_000];
    let mut res = vec![];
    for r in &rs.rules {
        let mut f = CompileFlags::empty();
        if !r.pattern.is_ascii() || r.pattern.contains("\\x{") { f |= CompileFlags::UTF8; }
        let db: BlockDatabase = Patterns(vec![Pattern::with_flags(r.pattern.clone(), f).unwrap()]).build().unwrap();
        let s = db.alloc_scratch().unwrap();
        let t = std::time::Instant::now();
        let mut n = 0usize;
        db.scan(data, &s, |_, _, _, _| { n += 1; Matching::Continue }).unwrap();
        let mbs = data.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
        res.push((mbs, r.id.clone(), n));
    }
    res.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    for (m, id, n) in res.iter().take(30) { println!("{m:8.0} MB/s {n:8} hits {id}"); }
}
