//! Per-item cost of every registered backend (default knobs): wall time, CPU time of the
//! whole process (getrusage user+sys, so pool threads' spinning and sleeping count) and
//! context switches, for empty items and for 4 KiB crc32c items. `threads` is the pool's
//! `workers_started` (0: not tracked).
//!
//! `cargo run --release -p strategies --example dispatch_cost [ITEMS]`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strategies::csum::{Algo, SECTOR_SIZE};
use strategies::{build, descriptors, Strategy, Work};

/// Items run (and not measured) first, so pools that start threads on demand are warm.
const WARM_UP: usize = 10_000;

struct Usage {
    cpu: Duration,
    voluntary: i64,
    involuntary: i64,
}

fn usage() -> Usage {
    // SAFETY: getrusage only writes the struct we hand it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        voluntary: ru.ru_nvcsw,
        involuntary: ru.ru_nivcsw,
    }
}

fn run(strategy: &dyn Strategy, items: usize, sector: Option<&Arc<Vec<u8>>>) {
    for _ in 0..items {
        let sector = sector.cloned();
        strategy.dispatch(Work::new(move || {
            if let Some(sector) = sector {
                let mut sum = [0u8; 4];
                Algo::Crc32c.sectors(&sector, &mut sum);
                black_box(sum);
            }
        }));
    }
    strategy.quiesce();
}

fn main() {
    let items: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ITEMS is a number"))
        .unwrap_or(200_000);
    let sector = Arc::new((0..SECTOR_SIZE).map(|i| i as u8).collect::<Vec<u8>>());
    println!(
        "{items} items per row, {} online CPUs\n",
        strategies::registry::online_cpus()
    );
    println!(
        "{:<48} {:<10} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "backend", "item", "wall ns/it", "cpu ns/it", "vcsw/1k", "ivcsw/1k", "threads"
    );
    for desc in descriptors() {
        for (kind, sector) in [("tiny", None), ("crc32c-4k", Some(&sector))] {
            let strategy = build(desc.name).expect("default spec builds");
            run(&*strategy, WARM_UP, sector);
            let (before, start) = (usage(), Instant::now());
            run(&*strategy, items, sector);
            let (wall, after) = (start.elapsed(), usage());
            let per_item = |d: Duration| d.as_nanos() as f64 / items as f64;
            let per_1k = |n: i64| n as f64 * 1000.0 / items as f64;
            println!(
                "{:<48} {:<10} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>8}",
                strategy.name(),
                kind,
                per_item(wall),
                per_item(after.cpu - before.cpu),
                per_1k(after.voluntary - before.voluntary),
                per_1k(after.involuntary - before.involuntary),
                strategy.stats().workers_started,
            );
        }
    }
}
