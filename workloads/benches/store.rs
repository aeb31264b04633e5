//! What the checksum store costs per I/O: recording a bio's checksums (the metadata
//! `pwrite` and the bitmap bits) and verifying a bio against them, at random places in
//! the first 4 GiB of a 1 TiB device's store (a job of a few GiB on a whole NVMe device),
//! and asking whether a job's range is covered.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workloads::store::{Algorithm, Identity, Overwrite};
use workloads::{CsumStore, SECTOR_SIZE};

const DEVICE: u64 = 1 << 40;
/// Where the bios go: a job of a few GiB.
const WINDOW: u64 = 4 << 30;
const CRC32C: Algorithm = Algorithm {
    name: "crc32c",
    csum_len: 4,
};

/// Sector numbers for bios of `sectors`, at random in the window, the same every run.
fn places(sectors: u64) -> impl FnMut() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let slots = WINDOW / SECTOR_SIZE / sectors;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % slots * sectors
    }
}

fn store(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let data = tmp.path().join("data");
    std::fs::write(&data, b"").expect("a file in it");
    let id = Identity::of(&data).expect("the file just made");
    let path = CsumStore::beside(&data);
    let store = CsumStore::create(&path, CRC32C, DEVICE, &id, Overwrite::StoresOnly)
        .expect("a store of a 1 TiB device");
    let chunk = vec![0xa5u8; 256 * 4];
    for first in (0..WINDOW / SECTOR_SIZE).step_by(256) {
        store.record(first, &chunk).expect("recording the window");
    }
    let mut group = c.benchmark_group("store");
    for (label, sectors) in [("4k", 1u64), ("1m", 256)] {
        let sums = vec![0xa5u8; sectors as usize * 4];
        group.throughput(Throughput::Bytes(sectors * SECTOR_SIZE));
        let mut at = places(sectors);
        group.bench_function(format!("record/{label}"), |b| {
            b.iter(|| store.record(at(), &sums).expect("record"))
        });
        let mut at = places(sectors);
        group.bench_function(format!("verify/{label}"), |b| {
            b.iter(|| assert!(store.verify(at(), &sums, sectors).is_empty()))
        });
    }
    group.throughput(Throughput::Bytes(WINDOW));
    group.bench_function("covers/4g", |b| b.iter(|| assert!(store.covers(0, WINDOW))));
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
