//! Criterion bench of `parser::parse` over a realistic mix of MO texts, reported
//! as messages per second (`Throughput::Elements`). The target is ≥ 1M
//! messages/s on one core; figures and the command are in `BENCHMARKS-parser.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parser::{parse, Command};

/// A day's traffic to 7377 as we expect it, by weight: mostly the poster's
/// format and its variants, then bare codes, wrong lengths, the copied template,
/// help and stop, and chatter. Weights are out of 100.
const MIX: &[(u32, &str)] = &[
    (30, "ВХОД*123-456-789"),
    (10, "вход*123-456-789"),
    (6, "Вход 123 456 789"),
    (4, "ВХОД123456789"),
    (3, "  ВХОД * 123 – 456 — 789  "),
    (3, "BXOД*123-456-789"),
    (2, "VHOD 123456789"),
    (2, "ВХОД\u{a0}123\u{a0}456\u{a0}789."),
    (2, "ВХОД*123-456-789 спасибо!"),
    (8, "123-456-789"),
    (3, "123456789"),
    (4, "ВХОД*12345678"),
    (2, "ВХОД*1234567890"),
    (4, "ВХОД*ХХХ-ХХХ-ХХХ"),
    (2, "?"),
    (2, "СТОП"),
    (1, "помощь"),
    (5, "Привет! Как отметиться в кафе?"),
    (3, ""),
    (2, "ВХОД 123-456-789 кв 5"),
    (
        2,
        "Здравствуйте! Я был в этом кафе вчера вечером, но не смог отправить код, \
         подскажите, пожалуйста, что делать, если QR не сканируется и сайт не открывается",
    ),
];

/// The mix expanded to 100 messages in a fixed interleaved order, so the branch
/// predictor sees a realistic sequence rather than long runs of one kind.
fn messages() -> Vec<&'static str> {
    let total: u32 = MIX.iter().map(|(weight, _)| weight).sum();
    assert_eq!(total, 100, "weights are percentages");
    let mut messages = Vec::with_capacity(total as usize);
    let mut left: Vec<u32> = MIX.iter().map(|(weight, _)| *weight).collect();
    while messages.len() < total as usize {
        for (i, (_, text)) in MIX.iter().enumerate() {
            if left[i] > 0 {
                left[i] -= 1;
                messages.push(*text);
            }
        }
    }
    messages
}

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
