use sluice_engine::*;
fn main() {
    let rs = Ruleset::embedded_default();
    let c = CompiledRules::compile(rs).unwrap();
    let mut s = Scanner::new(c.clone()).unwrap();
    let path = std::env::args().nth(1).unwrap();
    let data = std::fs::read(path).unwrap();
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..5 { n += s.scan_text(&data, Scope::Results).unwrap().len(); }
    let el = t.elapsed().as_secs_f64();
    println!("all rules: {:.0} MB/s, {} matches", 5.0 * data.len() as f64 / el / 1e6, n);
    // per-rule cost: db without each rule
    if std::env::args().nth(2).is_some() {
        let full = el;
        let rs = Ruleset::embedded_default();
        let mut costs = vec![];
        for i in 0..rs.len() {
            let mut r2 = rs.clone(); let id = r2.rules.remove(i).id;
            let c2 = CompiledRules::compile(r2).unwrap();
            let mut s2 = Scanner::new(c2).unwrap();
            let t = std::time::Instant::now();
            for _ in 0..5 { s2.scan_text(&data, Scope::Results).unwrap(); }
            costs.push((full / t.elapsed().as_secs_f64(), id));
        }
        costs.sort_by(|a,b| b.0.partial_cmp(&a.0).unwrap());
        for (x, id) in costs.iter().take(12) { println!("{x:.2}x without {id}"); }
    }
}
