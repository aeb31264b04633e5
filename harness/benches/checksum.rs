//! Checksum throughput per algorithm and implementation, on hot buffers: a 4 KiB sector
//! (what the pipeline checksums, one at a time) and 1 MiB (a whole bio, the best case).
//!
//! Every crc32c implementation must first reproduce the RFC 3720 known answers, and agree
//! with the crc32c crate (the one the harness uses) on the bench buffers themselves: the
//! short vectors and the long buffers take different SIMD paths. One that fails is not
//! benched, and says why.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::{Digest, Sha256};

/// Both crc32c implementations are called through a function pointer: the same few
/// nanoseconds of indirection for each, so the comparison stays fair.
type Crc32c = fn(&[u8]) -> u32;

const CRC32C_IMPLS: [(&str, Crc32c); 2] = [
    ("crc32c-crate", crc32c::crc32c),
    ("crc-fast", crc_fast::crc32_iscsi),
];

/// RFC 3720, appendix B.4, plus the CRC catalogue's check value for "123456789".
fn known_answers() -> [(&'static str, Vec<u8>, u32); 4] {
    [
        ("32 bytes of 0x00", vec![0; 32], 0x8A91_36AA),
        ("32 bytes of 0xFF", vec![0xFF; 32], 0x62A8_AB43),
        ("32 incrementing bytes", (0..32).collect(), 0x46DD_794E),
        ("\"123456789\"", b"123456789".to_vec(), 0xE306_9283),
    ]
}

const SIZES: [(usize, &str); 2] = [(4 << 10, "4KiB"), (1 << 20, "1MiB")];

fn buffer(len: usize) -> Vec<u8> {
    // Not all zeros: no implementation gets to shortcut on trivial input.
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

/// Why `f` cannot be trusted, if it cannot.
fn fault(f: Crc32c) -> Option<String> {
    for (what, data, want) in known_answers() {
        let got = f(&data);
        if got != want {
            return Some(format!("{what}: got {got:#010X}, want {want:#010X}"));
        }
    }
    for (len, label) in SIZES {
        let data = buffer(len);
        let (got, want) = (f(&data), crc32c::crc32c(&data));
        if got != want {
            return Some(format!(
                "{label} buffer: got {got:#010X}, crc32c crate {want:#010X}"
            ));
        }
    }
    None
}

fn checksums(c: &mut Criterion) {
    let trusted: Vec<(&str, Crc32c)> = CRC32C_IMPLS
        .into_iter()
        .filter(|(name, f)| match fault(*f) {
            None => true,
            Some(why) => {
                eprintln!("NOT BENCHED: crc32c/{name} is wrong ({why})");
                false
            }
        })
        .collect();
    eprintln!(
        "crc-fast dispatches to {}",
        crc_fast::get_calculator_target(crc_fast::CrcAlgorithm::Crc32Iscsi)
    );

    let mut group = c.benchmark_group("checksum");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (len, label) in SIZES {
        // Hot: written once here and read again by every iteration.
        let data = buffer(len);
        group.throughput(Throughput::Bytes(len as u64));
        for &(name, f) in &trusted {
            group.bench_with_input(
                BenchmarkId::new(format!("crc32c/{name}"), label),
                &data,
                |b, d| b.iter(|| f(black_box(d))),
            );
        }
        group.bench_with_input(BenchmarkId::new("sha256/sha2", label), &data, |b, d| {
            b.iter(|| Sha256::digest(black_box(d)))
        });
    }
    group.finish();
}

criterion_group!(benches, checksums);
criterion_main!(benches);
