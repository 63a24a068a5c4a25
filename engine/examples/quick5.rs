use hyperscan::prelude::*;
use sluice_engine::*;
fn build(pats: &[String]) -> BlockDatabase {
    Patterns(
        pats.iter()
            .enumerate()
            .map(|(i, p)| {
                let mut f = CompileFlags::empty();
                if !p.is_ascii() || p.contains("\\x{") {
                    f |= CompileFlags::UTF8;
                }
                let mut p = Pattern::with_flags(p.clone(), f).unwrap();
                p.id = Some(i);
                p
            })
            .collect(),
    )
    .build()
    .unwrap()
}
fn time(db: &BlockDatabase, data: &[u8]) -> f64 {
    let s = db.alloc_scratch().unwrap();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        db.scan(data, &s, |_, _, _, _| Matching::Continue).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    data.len() as f64 / best / 1e6
}
fn main() {
    let rs = Ruleset::embedded_default();
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let data = &data[..10_000_000];
    let drop: Vec<String> = std::env::args()
        .skip(2)
        .filter(|a| !a.starts_with("+"))
        .collect();
    let add: Vec<String> = std::env::args()
        .skip(2)
        .filter(|a| a.starts_with("+"))
        .map(|a| a[1..].to_string())
        .collect();
    let mut pats: Vec<String> = rs
        .rules
        .iter()
        .filter(|r| !drop.iter().any(|d| r.id.starts_with(d.as_str())))
        .map(|r| r.pattern.clone())
        .collect();
    println!(
        "full {:.0} MB/s ({} patterns)",
        time(
            &build(
                &rs.rules
                    .iter()
                    .map(|r| r.pattern.clone())
                    .collect::<Vec<_>>()
            ),
            data
        ),
        rs.len()
    );
    pats.extend(add);
    println!(
        "variant {:.0} MB/s ({} patterns)",
        time(&build(&pats), data),
        pats.len()
    );
}
