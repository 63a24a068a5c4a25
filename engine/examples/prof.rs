use sluice_engine::corpus::synth::tool_result;
use sluice_engine::*;
fn main() {
    let size: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let mut insp = Inspector::new(rules).unwrap();
    let policy = Policy::with_mode(Action::Redact);
    let msg = tool_result(7, size, &[]);
    let iters = (1_000_000_000 / msg.len()).max(10);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            insp.inspect(&msg, Direction::ServerToClient, None, &policy)
                .unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} bytes: {:.2} us/msg, {:.0} MB/s (best of 5)",
        msg.len(),
        best * 1e6 / iters as f64,
        (iters * msg.len()) as f64 / best / 1e6
    );
}
