//! Per-item dispatch cost of every registered backend: each iteration dispatches a batch of
//! items and quiesces, for empty items and for 4 KiB crc32c items. A plain crossbeam-channel
//! pool (N threads pulling boxed closures) is the baseline. `cargo bench -p strategies
//! --bench dispatch`; `cargo test --benches` runs each once.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_channel::Sender;
use strategies::csum::{Algo, SECTOR_SIZE};
use strategies::registry::online_cpus;
use strategies::{build, descriptors, Work};

const BATCH: usize = 10_000;

type Job = Box<dyn FnOnce() + Send>;

/// The baseline: N threads receiving boxed closures from one unbounded channel, with an
/// outstanding count for quiesce.
struct ChannelPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    idle: Arc<Idle>,
}

#[derive(Default)]
struct Idle {
    outstanding: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl ChannelPool {
    fn new(threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let idle = Arc::new(Idle::default());
        let threads = (0..threads)
            .map(|_| {
                let (rx, idle) = (rx.clone(), idle.clone());
                std::thread::spawn(move || {
                    for job in rx {
                        job();
                        // The last one out takes the lock, so a waiter cannot miss it.
                        if idle.outstanding.fetch_sub(1, SeqCst) == 1 {
                            drop(idle.lock.lock().unwrap());
                            idle.cv.notify_all();
                        }
                    }
                })
            })
            .collect();
        ChannelPool {
            tx: Some(tx),
            threads,
            idle,
        }
    }

    fn dispatch(&self, job: impl FnOnce() + Send + 'static) {
        self.idle.outstanding.fetch_add(1, SeqCst);
        self.tx.as_ref().unwrap().send(Box::new(job)).unwrap();
    }

    fn quiesce(&self) {
        let mut guard = self.idle.lock.lock().unwrap();
        while self.idle.outstanding.load(SeqCst) != 0 {
            guard = self.idle.cv.wait(guard).unwrap();
        }
    }
}

impl Drop for ChannelPool {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// One item's worth of work: nothing, or checksumming one 4 KiB sector.
#[derive(Clone, Copy)]
enum Item {
    Tiny,
    Crc32c4k,
}

impl Item {
    fn name(self) -> &'static str {
        match self {
            Item::Tiny => "tiny",
            Item::Crc32c4k => "crc32c-4k",
        }
    }

    fn job(self, sector: &Arc<Vec<u8>>) -> impl FnOnce() + Send + 'static {
        let sector = match self {
            Item::Tiny => None,
            Item::Crc32c4k => Some(sector.clone()),
        };
        move || {
            if let Some(sector) = sector {
                let mut sum = [0u8; 4];
                Algo::Crc32c.sectors(&sector, &mut sum);
                black_box(sum);
            }
        }
    }
}

fn dispatch(c: &mut Criterion) {
    let sector = Arc::new((0..SECTOR_SIZE).map(|i| i as u8).collect::<Vec<u8>>());
    for item in [Item::Tiny, Item::Crc32c4k] {
        let mut group = c.benchmark_group(format!("dispatch/{}", item.name()));
        group
            .throughput(Throughput::Elements(BATCH as u64))
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let baseline = ChannelPool::new(online_cpus());
        group.bench_function("channel-baseline", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    baseline.dispatch(item.job(&sector));
                }
                baseline.quiesce();
            })
        });
        drop(baseline);
        for desc in descriptors() {
            let strategy = build(desc.name).expect("default spec builds");
            group.bench_function(BenchmarkId::from_parameter(strategy.name()), |b| {
                b.iter(|| {
                    for _ in 0..BATCH {
                        strategy.dispatch(Work::new(item.job(&sector)));
                    }
                    strategy.quiesce();
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
