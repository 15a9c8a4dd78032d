//! The realistic mix of MO texts that the bench (`benches/parse.rs`) and the
//! throughput example (`examples/throughput.rs`) both parse, so their figures
//! describe the same traffic.

/// A day's traffic to 7377 as we expect it, by weight: mostly the poster's
/// format and its variants, then bare codes, wrong lengths, the copied template,
/// help and stop, and chatter. Weights are out of 100.
pub const MIX: &[(u32, &str)] = &[
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
pub fn messages() -> Vec<&'static str> {
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
