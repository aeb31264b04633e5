//! Start-up timing for the calibrations: short batches, interleaved across the things being
//! compared so drift hits each alike, and the best batch kept, as the kernel's raid6 and
//! crypto self-benchmarks do — the best batch is the one no other thread interrupted.
//! Public for the benches, which compare paths the same way on a busy machine.

use std::time::{Duration, Instant};

/// How long one timed batch runs: long against the clock's cost (~30 ns), short against a
/// scheduler tick, so most batches run uninterrupted.
const BATCH: Duration = Duration::from_micros(100);

/// Batches of each function, taken in turns.
pub const ROUNDS: usize = 8;

/// Runs `f` `calls` times and returns the mean nanoseconds per call.
fn batch_ns(calls: u64, f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// Calls per batch so a batch lasts about [`BATCH`], from one warm-up call.
fn calls_per_batch(f: &mut impl FnMut()) -> u64 {
    f(); // warm: caches, page faults, lazy set-up inside `f`
    let one = batch_ns(1, f).max(1.0);
    ((BATCH.as_nanos() as f64 / one) as u64).max(1)
}

/// The best mean nanoseconds per call of each function over `rounds` batches, the
/// functions taking turns batch by batch. One closure type with different captures (an
/// implementation, a step count) keeps the calls direct.
pub fn best_ns_per_call<F: FnMut()>(fs: &mut [F], rounds: usize) -> Vec<f64> {
    let calls: Vec<u64> = fs.iter_mut().map(calls_per_batch).collect();
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..rounds.max(1) {
        for ((f, &n), b) in fs.iter_mut().zip(&calls).zip(&mut best) {
            *b = b.min(batch_ns(n, f));
        }
    }
    best
}

/// GiB/s for `bytes` bytes per call at `ns` nanoseconds per call.
pub fn gib_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns * 1e9 / f64::from(1u32 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gib_per_s_is_bytes_over_time() {
        // 1 GiB in one second.
        assert!((gib_per_s(1 << 30, 1e9) - 1.0).abs() < 1e-12);
        // 4 KiB in 4096 ns is 1 byte/ns = 1e9/2^30 GiB/s.
        assert!((gib_per_s(4096, 4096.0) - 0.931_322_574_615_478_5).abs() < 1e-12);
    }

    #[test]
    fn every_function_is_timed_and_slower_work_takes_longer() {
        let mut calls = [0u64; 2];
        let ns = {
            let mut fs: Vec<_> = calls
                .iter_mut()
                .zip([1u64, 10_000])
                .map(|(count, steps)| {
                    move || {
                        *count += 1;
                        let mut x = *count;
                        for _ in 0..steps {
                            x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
                        }
                    }
                })
                .collect();
            best_ns_per_call(&mut fs, 3)
        };
        assert_eq!(ns.len(), 2);
        assert!(
            calls.iter().all(|&c| c >= 4),
            "each warmed up and batched: {calls:?}"
        );
        // The ordering, not a speed: 10,000 dependent steps cannot take less time than one,
        // however slow the machine.
        assert!(ns[1] > ns[0], "{ns:?}");
        assert!(ns.iter().all(|x| x.is_finite() && *x > 0.0), "{ns:?}");
    }
}
