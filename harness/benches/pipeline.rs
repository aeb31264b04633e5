//! The whole pipeline per strategy, on the null engine: fill, checksum, submit, endio with
//! its checksum-store update and metadata round trip, and nothing of the disk. What one
//! strategy costs over another shows here without device noise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use harness::pipeline::{self, CaseState, JobInput, JobProgress, Pools, Topology};
use strategies::csum::Algo;
use workloads::{CsumStore, JobSpec};

/// Big sequential bios, and small ones where per-item dispatch costs dominate.
const JOBS: [(&str, &str, &str); 2] = [
    ("write-64m-bs1m", "1m", "64m"),
    ("write-16m-bs4k", "4k", "16m"),
];

fn job(bs: &str, size: &str) -> JobSpec {
    let mut job = JobSpec::default();
    for (k, v) in [
        ("rw", "write"),
        ("bs", bs),
        ("size", size),
        ("iodepth", "8"),
        ("ioengine", "null"),
        ("csum", "crc32c"),
    ] {
        job.set(k, v).expect("valid bench job");
    }
    job
}

/// Pools (their threads) and the engine are set up outside the timing.
fn setup(strategy: &str, job: &JobSpec, store: &Arc<CsumStore>) -> (Pools, JobInput) {
    let pools = Pools::build(strategy, Topology::Separate).expect("registered strategy");
    let input = JobInput {
        engine: job.ioengine.open(None, job.iodepth).expect("null engine"),
        job: job.clone(),
        jobnum: 0,
        store: store.clone(),
        file_label: "bench".into(),
        algo: Algo::Crc32c,
        seed: 1,
        deadline: None,
        ramp_end: None,
    };
    (pools, input)
}

fn store(dir: &Path, job: &JobSpec) -> Arc<CsumStore> {
    let algo = Algo::Crc32c;
    let store = CsumStore::create(&dir.join("store"), algo.name(), algo.len(), job.io_end());
    Arc::new(store.expect("checksum store in a temporary folder"))
}

fn pipelines(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (label, bs, size) in JOBS {
        let job = job(bs, size);
        let store = store(tmp.path(), &job);
        group.throughput(Throughput::Bytes(job.blocks() * job.bs));
        for d in strategies::descriptors() {
            group.bench_function(BenchmarkId::new(label, d.name), |b| {
                b.iter_batched(
                    || setup(d.name, &job, &store),
                    |(pools, input)| {
                        let case = Arc::new(CaseState::default());
                        pipeline::run_job(input, &pools, &case, &JobProgress::default());
                        assert_eq!(case.errors(), Vec::<String>::new(), "{}", d.name);
                        // Dropped outside the timing: joining pool threads is not the pipeline.
                        pools
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pipelines);
criterion_main!(benches);
