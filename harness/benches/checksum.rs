//! Checksum throughput on hot buffers: a 4 KiB sector (what the pipeline checksums, one at
//! a time) and 1 MiB (a whole bio).
//!
//! - `crc32c/<impl>`: every crc32c implementation that passed the start-up known-answer
//!   checks, called directly on the whole buffer (1 MiB in one call: its best case).
//! - `stage/<algo>`: `Algo::sectors`, the csum stage's own path, one checksum per 4 KiB
//!   sector, for every algorithm and two synthetic costs.
//! - `direct/<impl>`: the crc32c that start-up chose, called per sector in a plain loop:
//!   `stage/crc32c` over this is what the stage's dispatch costs (issue 14 wants ≥ 0.9).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strategies::csum::{self, Algo, SECTOR_SIZE};

const SIZES: [(usize, &str); 2] = [(4 << 10, "4KiB"), (1 << 20, "1MiB")];

/// The synthetic costs benched: a cheap and a dear one.
const COSTS: [Algo; 2] = [
    Algo::Cost {
        ns_per_sector: 1_000,
    },
    Algo::Cost {
        ns_per_sector: 10_000,
    },
];

fn buffer(len: usize) -> Vec<u8> {
    // Not all zeros: no implementation gets to shortcut on trivial input.
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

/// Says what start-up found, and returns the implementations fit to bench.
fn verified_impls() -> Vec<&'static csum::Crc32cImpl> {
    let cal = csum::crc32c_calibration();
    for c in &cal.candidates {
        match &c.fault {
            None => eprintln!(
                "crc32c/{}: {}, start-up timing {:.1} GiB/s on 4 KiB, {:.1} on 1 MiB{}",
                c.name,
                c.detail,
                c.gib_s_4k.unwrap_or(f64::NAN),
                c.gib_s_1m.unwrap_or(f64::NAN),
                if c.name == cal.chosen {
                    " (chosen)"
                } else {
                    ""
                }
            ),
            Some(why) => eprintln!("NOT BENCHED: crc32c/{} is wrong ({why})", c.name),
        }
    }
    csum::crc32c_implementations()
        .iter()
        .filter(|i| {
            cal.candidates
                .iter()
                .any(|c| c.name == i.name && c.verified)
        })
        .collect()
}

/// The stage's per-sector loop (`through_stage`) or the same loop calling `direct` itself.
fn per_sector_loop<'a>(
    data: &'a [u8],
    direct: csum::Crc32cFn,
    through_stage: bool,
) -> impl FnMut() + 'a {
    let mut out = vec![0u8; data.len() / SECTOR_SIZE * 4];
    move || {
        let data = black_box(data);
        if through_stage {
            Algo::Crc32c.sectors(data, &mut out);
        } else {
            for (s, o) in data.chunks_exact(SECTOR_SIZE).zip(out.chunks_exact_mut(4)) {
                o.copy_from_slice(&direct(s).to_le_bytes());
            }
        }
        black_box(&out);
    }
}

/// Issue 14's check, `stage/crc32c` over `direct/<chosen>`, measured so a busy machine
/// cannot fake it: the two take turns batch by batch, and each keeps its best batch.
fn stage_against_direct(direct: &csum::Crc32cImpl) {
    for (len, label) in SIZES {
        let data = buffer(len);
        let mut runs = [true, false].map(|stage| per_sector_loop(&data, direct.checksum, stage));
        let ns = csum::timing::best_ns_per_call(&mut runs, 50);
        eprintln!(
            "{label}: stage {:.1} GiB/s, {} called directly {:.1} GiB/s: ratio {:.3}",
            csum::timing::gib_per_s(len, ns[0]),
            direct.name,
            csum::timing::gib_per_s(len, ns[1]),
            ns[1] / ns[0]
        );
    }
}

fn checksums(c: &mut Criterion) {
    let impls = verified_impls();
    let chosen = csum::crc32c_calibration().chosen;
    let direct = impls
        .iter()
        .find(|i| i.name == chosen)
        .expect("chosen is verified");
    stage_against_direct(direct);
    for cost in COSTS {
        eprintln!("{cost}: {}", cost.implementation());
    }

    let mut group = c.benchmark_group("checksum");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (len, label) in SIZES {
        // Hot: written once here and read again by every iteration.
        let data = buffer(len);
        group.throughput(Throughput::Bytes(len as u64));
        for i in &impls {
            let id = BenchmarkId::new(format!("crc32c/{}", i.name), label);
            group.bench_with_input(id, &data, |b, d| b.iter(|| (i.checksum)(black_box(d))));
        }
        let mut direct_loop = per_sector_loop(&data, direct.checksum, false);
        group.bench_function(
            BenchmarkId::new(format!("direct/{}", direct.name), label),
            |b| b.iter(&mut direct_loop),
        );
        for algo in Algo::ALL.into_iter().filter(|a| a.len() > 0).chain(COSTS) {
            let mut out = vec![0u8; len / SECTOR_SIZE * algo.len()];
            let id = BenchmarkId::new(format!("stage/{algo}"), label);
            group.bench_with_input(id, &data, |b, d| {
                b.iter(|| algo.sectors(black_box(d), black_box(&mut out)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, checksums);
criterion_main!(benches);
