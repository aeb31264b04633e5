//! The sweep's axes: what a sector's checksum costs (btrfs's real algorithms at what they
//! cost on this CPU, and synthetic costs spread log-uniformly around them) and how many
//! submitters run at once.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use strategies::csum::{self, timing, Algo, SECTOR_SIZE};

/// One point of the cost axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    #[serde(serialize_with = "algo_name")]
    pub algorithm: Algo,
    /// What a synthetic cost asked for; `None` for a real algorithm.
    pub requested_ns: Option<u32>,
    /// Per 4 KiB sector on this machine, on a hot sector: `Algo::sectors` timed for a real
    /// algorithm, what the calibration achieved for a synthetic one.
    pub ns_per_sector: f64,
}

fn algo_name<S: serde::Serializer>(a: &Algo, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&a.name())
}

impl Cost {
    pub fn is_real(&self) -> bool {
        self.requested_ns.is_none()
    }
}

/// The points of the cost axis, cheapest first, and the synthetic requests left out.
pub struct CostAxis {
    pub costs: Vec<Cost>,
    /// Synthetic costs below the floor: they would run at it, which crc32c already shows.
    pub below_floor: Vec<Algo>,
    /// What a synthetic sector costs with no extra work: reading it for its crc32c.
    pub floor_ns: Option<f64>,
}

/// `points` costs from `min_ns` to `max_ns`, evenly spaced on a log scale, each rounded to
/// two significant digits (names stay short: `cost:2300ns`); one point is `min_ns`.
pub fn log_uniform(min_ns: u32, max_ns: u32, points: u32) -> Vec<u32> {
    let (lo, hi) = (f64::from(min_ns), f64::from(max_ns));
    let mut out: Vec<u32> = (0..points)
        .map(|i| {
            let t = if points == 1 {
                0.0
            } else {
                f64::from(i) / f64::from(points - 1)
            };
            two_significant(lo * (hi / lo).powf(t))
        })
        .collect();
    out.dedup();
    out
}

fn two_significant(x: f64) -> u32 {
    let scale = 10f64.powi(x.log10().floor() as i32 - 1).max(1.0);
    ((x / scale).round() * scale) as u32
}

/// Nanoseconds per 4 KiB sector of each real algorithm, timed as the calibrations time:
/// interleaved batches on one hot sector, the best batch kept.
fn timed_ns(algos: &[Algo]) -> Vec<f64> {
    let sector: Vec<u8> = (0..SECTOR_SIZE).map(|i| (i * 131 % 251) as u8).collect();
    let mut runs: Vec<_> = algos
        .iter()
        .map(|&algo| {
            let (sector, mut out) = (&sector, vec![0u8; algo.len()]);
            move || {
                algo.sectors(std::hint::black_box(sector), &mut out);
                std::hint::black_box(&out);
            }
        })
        .collect();
    timing::best_ns_per_call(&mut runs, timing::ROUNDS)
}

/// Measures every checksum of the sweep on this CPU and orders them by cost. `none` is
/// refused: it costs nothing, and a log axis has no place for that.
pub fn measure(algos: &[Algo]) -> Result<CostAxis> {
    if algos.contains(&Algo::None) {
        bail!("csum none costs nothing per sector: it has no place on the cost axis");
    }
    let (synthetic, real): (Vec<Algo>, Vec<Algo>) =
        algos.iter().partition(|a| matches!(a, Algo::Cost { .. }));
    let mut costs: Vec<Cost> = real
        .iter()
        .zip(timed_ns(&real))
        .map(|(&algorithm, ns_per_sector)| Cost {
            algorithm,
            requested_ns: None,
            ns_per_sector,
        })
        .collect();
    let mut below_floor = Vec::new();
    let mut floor_ns = None;
    for algorithm in synthetic {
        let Algo::Cost { ns_per_sector } = algorithm else {
            unreachable!("partitioned on Cost")
        };
        let c = csum::cost_calibration(ns_per_sector);
        floor_ns = Some(c.floor_ns);
        if c.clamped {
            below_floor.push(algorithm);
            continue;
        }
        costs.push(Cost {
            algorithm,
            requested_ns: Some(ns_per_sector),
            ns_per_sector: c.achieved_ns,
        });
    }
    costs.sort_by(|a, b| a.ns_per_sector.total_cmp(&b.ns_per_sector));
    if costs.is_empty() {
        bail!("no cost point is left to measure: every synthetic cost is below the floor here");
    }
    Ok(CostAxis {
        costs,
        below_floor,
        floor_ns,
    })
}

/// The CPUs online, as the default sweep's largest submitter count.
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// Submitter counts when none are given: 1, 2, 4, … below `cpus`, then `cpus`; `quick`
/// keeps the two ends.
pub fn default_numjobs(cpus: u32, quick: bool) -> Vec<u32> {
    let mut out: Vec<u32> = if quick {
        vec![1]
    } else {
        std::iter::successors(Some(1u32), |n| n.checked_mul(2))
            .take_while(|&n| n < cpus)
            .collect()
    };
    if out.last() != Some(&cpus) {
        out.push(cpus);
    }
    out
}

/// `--numjobs 1,2 --numjobs 8`: every count given, smallest first, each once.
pub fn parse_numjobs(given: &[String]) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for item in given.iter().flat_map(|g| g.split(',')) {
        let n: u32 = item.trim().parse().map_err(|_| {
            anyhow!("--numjobs {item}: expected submitter counts, e.g. --numjobs 1,2,4")
        })?;
        if !(1..=workloads::job::MAX_NUMJOBS).contains(&n) {
            bail!(
                "--numjobs {n}: from 1 to {} submitters",
                workloads::job::MAX_NUMJOBS
            );
        }
        out.push(n);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_spread_evenly_on_a_log_scale_in_two_digits() {
        assert_eq!(log_uniform(10, 1000, 3), [10, 100, 1000]);
        // 10 ns to 20 µs in 8: steps of 2000^(1/7) ≈ 2.96×.
        assert_eq!(
            log_uniform(10, 20_000, 8),
            [10, 30, 88, 260, 770, 2300, 6800, 20_000]
        );
        assert_eq!(log_uniform(200, 20_000, 1), [200]);
        assert!(log_uniform(10, 20_000, 0).is_empty());
        // Points that round alike are one point.
        assert_eq!(log_uniform(100, 101, 4), [100]);
    }

    #[test]
    fn default_submitters_double_up_to_the_cpus() {
        assert_eq!(default_numjobs(2, false), [1, 2]);
        assert_eq!(default_numjobs(12, false), [1, 2, 4, 8, 12]);
        assert_eq!(default_numjobs(1, false), [1]);
        assert_eq!(default_numjobs(16, true), [1, 16]);
        assert_eq!(default_numjobs(1, true), [1]);
    }

    #[test]
    fn numjobs_lists_are_sorted_and_bad_ones_named() {
        let given =
            |v: &[&str]| parse_numjobs(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(given(&["4,1", "2,4"]).unwrap(), [1, 2, 4]);
        let e = given(&["1,x"]).unwrap_err().to_string();
        assert!(e.contains("--numjobs x"), "{e}");
        let e = given(&["0"]).unwrap_err().to_string();
        assert!(e.contains("from 1 to"), "{e}");
    }

    #[test]
    fn every_point_is_measured_and_ordered_by_cost() {
        let floor = csum::cost_calibration(1).floor_ns;
        let above = (4.0 * floor) as u32;
        let axis = measure(&[
            Algo::Sha256,
            Algo::Cost { ns_per_sector: 1 },
            Algo::Cost {
                ns_per_sector: above,
            },
            Algo::Crc32c,
        ])
        .unwrap();
        assert_eq!(axis.below_floor, [Algo::Cost { ns_per_sector: 1 }]);
        assert_eq!(axis.floor_ns, Some(floor));
        assert_eq!(axis.costs.len(), 3);
        assert!(axis
            .costs
            .windows(2)
            .all(|w| w[0].ns_per_sector <= w[1].ns_per_sector));
        assert!(axis.costs.iter().all(|c| c.ns_per_sector > 0.0));
        let synthetic: Vec<&Cost> = axis.costs.iter().filter(|c| !c.is_real()).collect();
        assert_eq!(synthetic[0].requested_ns, Some(above));
        let e = measure(&[Algo::None]).err().unwrap().to_string();
        assert!(e.contains("none"), "{e}");
    }
}
