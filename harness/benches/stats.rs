//! What one comparison costs: `stats::compare` (Student's t plus a 10 000-resample
//! bootstrap) at 3, 5 and 15 pairs, the range `--repeat auto` works in.
//! `summary::rows_with` calls it once per metric (10) and strategy after the baseline,
//! and the compare loop calls that after every round.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use harness::stats::{self, Polarity};

/// Pairs with a 10 % difference and a few percent of spread, always the same.
fn pairs(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let wobble = 1.0 + 0.03 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
            (1000.0, 1100.0 * wobble)
        })
        .collect()
}

fn compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats_compare");
    for n in [3, 5, 15] {
        let data = pairs(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, data| {
            b.iter(|| {
                stats::compare(
                    black_box(data),
                    Polarity::HigherIsFaster,
                    stats::DEFAULT_NOISE_THRESHOLD,
                    stats::DEFAULT_SEED,
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = compare
}
criterion_main!(benches);
