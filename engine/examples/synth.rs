fn main() {
    let mut s = String::new();
    sluice_engine::corpus::synth::benign_text(&mut sluice_engine::corpus::synth::Rng::new(11), 12 << 20, &mut s);
    std::fs::write("/tmp/synth.txt", s).unwrap();
}
