//! Criterion bench of `parser::parse` over a realistic mix of MO texts, reported
//! as messages per second (`Throughput::Elements`). The target is ≥ 1M
//! messages/s on one core; figures and the command are in the repository's `BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parser::{parse, Command};

mod mix;
use mix::{messages, MIX};

fn bench_parse(c: &mut Criterion) {
    let messages = messages();
    let bytes: usize = messages.iter().map(|m| m.len()).sum();
    let mut group = c.benchmark_group("parse");

    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function(BenchmarkId::new("mix", messages.len()), |b| {
        b.iter(|| {
            let mut check_ins = 0usize;
            for message in &messages {
                if matches!(parse(black_box(message)), Command::CheckIn { .. }) {
                    check_ins += 1;
                }
            }
            check_ins
        })
    });

    for (name, text) in [
        ("canonical", "ВХОД*123-456-789"),
        ("sloppy", "  ВХОД * 123 – 456 — 789  "),
        ("bare", "123-456-789"),
        ("chatter", MIX[MIX.len() - 1].1),
    ] {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("one", name), text, |b, text| {
            b.iter(|| parse(black_box(text)))
        });
    }
    group.finish();

    eprintln!(
        "mix: {} messages, {bytes} bytes of UTF-8 ({:.1} bytes/message)",
        messages.len(),
        bytes as f64 / messages.len() as f64
    );
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
