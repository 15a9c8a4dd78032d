//! Parses the bench's message mix in a plain loop and prints messages/s: a
//! figure without criterion's machinery, and a fixed amount of work that
//! `valgrind --tool=callgrind` can count instructions of, which a noisy shared
//! machine cannot disturb.
//!
//! `cargo run --release -p parser --example throughput -- [ROUNDS]`
//! (one round is the 100-message mix; default 100 000 rounds).

use std::hint::black_box;
use std::time::Instant;

use parser::{parse, Command};

#[path = "../benches/mix/mod.rs"]
mod mix;

/// Rounds of the mix when none is given: ten million messages, a few seconds.
const ROUNDS_DEFAULT: u64 = 100_000;

fn main() {
    let rounds = match std::env::args().nth(1) {
        Some(rounds) => rounds.parse().expect("ROUNDS is a whole number"),
        None => ROUNDS_DEFAULT,
    };
    let messages = mix::messages();
    let started = Instant::now();
    let mut check_ins = 0u64;
    for _ in 0..rounds {
        for message in &messages {
            if matches!(parse(black_box(message)), Command::CheckIn { .. }) {
                check_ins += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let parsed = rounds * messages.len() as u64;
    if parsed == 0 {
        // `ROUNDS` 0: the baseline to subtract from an instruction count.
        println!("0 messages");
        return;
    }
    println!(
        "{parsed} messages ({check_ins} check-ins) in {elapsed:.2?}: {:.0} ns/message, {:.2} M messages/s",
        elapsed.as_nanos() as f64 / parsed as f64,
        parsed as f64 / elapsed.as_secs_f64() / 1e6,
    );
}
