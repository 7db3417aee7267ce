//! Placeholder replaced by the masker micro-benchmark.
fn main() {}
