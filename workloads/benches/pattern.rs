//! What drawing one I/O of a job's pattern costs, per kind of pattern: the submitter draws
//! one per I/O it issues, so this is its overhead per I/O.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use workloads::offsets::IoPattern;
use workloads::JobSpec;

/// I/Os drawn per measurement: a 4 GiB region in 4 KiB blocks is a million of them.
const IOS: u64 = 1 << 20;

fn job(options: &[(&str, &str)]) -> JobSpec {
    let mut j = JobSpec::default();
    for (k, v) in [("size", "4g"), ("bs", "4k")].iter().chain(options) {
        j.set(k, v).expect("a valid job");
    }
    j
}

fn patterns(c: &mut Criterion) {
    let kinds: [(&str, &[(&str, &str)]); 6] = [
        ("sequential", &[("rw", "read")]),
        ("random map", &[("rw", "randread")]),
        ("randrw", &[("rw", "randrw")]),
        ("norandommap", &[("rw", "randread"), ("norandommap", "1")]),
        (
            "bssplit map",
            &[("rw", "randwrite"), ("bssplit", "4k/50:64k/50")],
        ),
        (
            "zipf",
            &[("rw", "randread"), ("random_distribution", "zipf:1.2")],
        ),
    ];
    let mut group = c.benchmark_group("io_pattern");
    group.throughput(Throughput::Elements(IOS));
    group.sample_size(10);
    for (name, options) in kinds {
        let j = job(options);
        group.bench_with_input(BenchmarkId::from_parameter(name), &j, |b, j| {
            b.iter(|| IoPattern::new(j, 0, 0, 1).take(IOS as usize).count());
        });
    }
    group.finish();
}

criterion_group!(benches, patterns);
criterion_main!(benches);
