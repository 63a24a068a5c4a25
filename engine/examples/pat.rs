use hyperscan::prelude::*;
fn main() {
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let data = &data[..10_000_000];
    for p in std::env::args().skip(2) {
        let db: BlockDatabase = match Patterns(vec![Pattern::with_flags(p.clone(), CompileFlags::empty()).unwrap()]).build() { Ok(d) => d, Err(e) => { println!("ERR {p}: {e}"); continue } };
        let s = db.alloc_scratch().unwrap();
        let t = std::time::Instant::now();
        let mut n = 0usize;
        db.scan(data, &s, |_, _, _, _| { n += 1; Matching::Continue }).unwrap();
        println!("{:8.0} MB/s {n} {p}", data.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
}
