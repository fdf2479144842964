//! Side-by-side benchmarks against peer crates (see `benches/parse_peers.rs`).
