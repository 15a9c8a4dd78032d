//! Criterion bench of `parser::parse` (written next).

fn main() {}
