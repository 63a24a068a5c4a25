use hyperscan::prelude::*;
use sluice_engine::*;
fn main() {
    let rs = Ruleset::embedded_default();
    let c = CompiledRules::compile(rs).unwrap();
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let s = c.block.alloc_scratch().unwrap();
    let mut counts = vec![0usize; c.ruleset.len()];
    c.block
        .scan(&data[..], &s, |id, _, _, _| {
            counts[id as usize] += 1;
            Matching::Continue
        })
        .unwrap();
    let mut v: Vec<_> = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (*n, c.ruleset.rules[i].id.clone()))
        .collect();
    v.sort();
    v.reverse();
    println!("{} MB", data.len() / 1_000_000);
    for (n, id) in v.iter().take(15) {
        println!("{n:8} {id}");
    }
}
