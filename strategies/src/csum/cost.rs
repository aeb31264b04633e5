//! A synthetic checksum whose cost per 4 KiB sector is whatever the user asks
//! (`csum=cost:2us`): a continuous axis between btrfs's four real algorithms.
//!
//! Each sector is read whole by the crc32c in use (so memory traffic is real, and the sum is
//! that crc32c: verifiable, and any corruption changes it), then a chain of dependent
//! multiply-xorshift steps seeded by it burns the rest of the requested time. The chain's
//! end goes through `black_box`, so the compiler cannot drop it, but not into the sum: the
//! step count comes from this process's calibration, and a store written by one process must
//! verify in another.
//!
//! Calibration, once per process at first use: the floor (the crc32c alone) and the time per
//! step, from timing the sector at 0 and at many steps. A request below the floor runs at
//! the floor and says so ([`CostCalibration::clamped`]).

use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use super::{crc32c, timing, SECTOR_SIZE};

/// The largest cost accepted: 10 ms per sector is 400 KB/s per core, slower than anything
/// worth modelling, and keeps the canonical name within the store's 16 bytes.
pub const MAX_NS: u32 = 10_000_000;

/// Steps timed to find the time per step: long enough (tens of µs) that the floor's noise
/// does not matter.
const PROBE_STEPS: u64 = 20_000;

/// The dependent work: `steps` rounds of an odd multiply and an xorshift, each waiting for
/// the last, seeded by the data. Returns the chain's end so it can be kept alive.
#[inline]
fn burn(seed: u32, steps: u64) -> u64 {
    let mut x = u64::from(seed) | 1 << 63;
    for _ in 0..steps {
        x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    x
}

/// The sum of one sector after `steps` steps of work: the crc32c of the sector.
#[inline]
pub(super) fn sector_sum(crc: crc32c::Crc32cFn, sector: &[u8], steps: u64) -> u32 {
    let sum = crc(sector);
    std::hint::black_box(burn(sum, steps));
    sum
}

/// What the calibration measured: the cost model of this CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Model {
    /// ns per sector at 0 steps: reading it and its crc32c.
    floor_ns: f64,
    ns_per_step: f64,
}

impl Model {
    fn steps_for(&self, ns_per_sector: u32) -> u64 {
        let extra = f64::from(ns_per_sector) - self.floor_ns;
        (extra / self.ns_per_step).round().max(0.0) as u64
    }
}

/// Nanoseconds per sector of [`sector_sum`] at each step count, timed in turns on one hot
/// sector of varied bytes.
fn time_steps(steps: &[u64]) -> Vec<f64> {
    let sector: Vec<u8> = (0..SECTOR_SIZE).map(|i| (i * 131 % 251) as u8).collect();
    let crc = crc32c::selected();
    let mut runs: Vec<_> = steps
        .iter()
        .map(|&n| {
            let sector = &sector;
            move || {
                std::hint::black_box(sector_sum(crc, std::hint::black_box(sector), n));
            }
        })
        .collect();
    timing::best_ns_per_call(&mut runs, timing::ROUNDS)
}

fn calibrate() -> Model {
    let [floor_ns, probe_ns] = time_steps(&[0, PROBE_STEPS])[..] else {
        unreachable!("two step counts, two times")
    };
    Model {
        floor_ns,
        // At least a fraction of a cycle: a clock hiccup must not make the steps free.
        ns_per_step: ((probe_ns - floor_ns) / PROBE_STEPS as f64).max(0.05),
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(calibrate)
}

/// Steps of work per sector for a requested cost, from this process's calibration.
pub(super) fn steps_for(ns_per_sector: u32) -> u64 {
    model().steps_for(ns_per_sector)
}

/// A requested synthetic cost against what it achieves here: the record for the results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostCalibration {
    pub requested_ns: u32,
    /// What a sector costs with no extra work: reading it for its crc32c.
    pub floor_ns: f64,
    pub ns_per_step: f64,
    pub steps: u64,
    /// Measured at `steps`, per sector, on a hot sector.
    pub achieved_ns: f64,
    /// The request was below the floor, so the sector costs the floor.
    pub clamped: bool,
}

/// The calibration for `ns_per_sector`, measured once per process per cost asked.
pub fn cost_calibration(ns_per_sector: u32) -> CostCalibration {
    static DONE: Mutex<Vec<CostCalibration>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = done.iter().find(|c| c.requested_ns == ns_per_sector) {
        return *c;
    }
    let m = model();
    let steps = m.steps_for(ns_per_sector);
    let c = CostCalibration {
        requested_ns: ns_per_sector,
        floor_ns: m.floor_ns,
        ns_per_step: m.ns_per_step,
        steps,
        achieved_ns: time_steps(&[steps])[0],
        clamped: f64::from(ns_per_sector) < m.floor_ns,
    };
    done.push(c);
    c
}

/// Parses the part after `cost:`: a whole number of nanoseconds given in ns, us (µs), ms
/// or s, decimals allowed (`1.5us`), from 1 ns to [`MAX_NS`].
pub(super) fn parse_ns(text: &str) -> Result<u32, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("cost:{text}: a cost cannot be negative"));
    }
    let unit_at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(unit_at);
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "" => {
            return Err(format!(
                "cost:{text}: give a unit, e.g. cost:{t}ns or cost:{t}us"
            ))
        }
        other => {
            return Err(format!(
                "cost:{text}: unknown unit '{other}' (ns, us, ms or s)"
            ))
        }
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!(
            "cost:{text}: expected a time per sector, e.g. cost:2us"
        ));
    }
    // In integers: ns = whole.frac × scale, exactly. Past these lengths it is out of range
    // (whole) or finer than a nanosecond (frac) in any unit.
    let (whole, frac) = (whole.trim_start_matches('0'), frac.trim_end_matches('0'));
    let too_large = || format!("cost:{text}: at most {} per sector", format_ns(MAX_NS));
    let not_whole = || format!("cost:{text}: not a whole number of nanoseconds");
    if whole.len() > 12 {
        return Err(too_large());
    }
    if frac.len() > 9 {
        return Err(not_whole());
    }
    let mantissa: u128 = format!("0{whole}{frac}").parse().map_err(|_| not_whole())?;
    let divisor = 10u128.pow(frac.len() as u32);
    if !(mantissa * scale).is_multiple_of(divisor) {
        return Err(not_whole());
    }
    match mantissa * scale / divisor {
        0 => Err(format!("cost:{text}: must be more than zero")),
        ns if ns > u128::from(MAX_NS) => Err(too_large()),
        ns => Ok(ns as u32),
    }
}

/// The canonical spelling: the largest unit that keeps the number whole (`2us`, `1500ns`).
pub(super) fn format_ns(ns: u32) -> String {
    match ns {
        n if n.is_multiple_of(1_000_000) => format!("{}ms", n / 1_000_000),
        n if n.is_multiple_of(1_000) => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_parse_in_every_unit_and_print_canonically() {
        for (text, ns, canonical) in [
            ("2us", 2_000, "2us"),
            ("2000ns", 2_000, "2us"),
            ("1.5us", 1_500, "1500ns"),
            ("0.25ms", 250_000, "250us"),
            ("3µs", 3_000, "3us"),
            ("0.001s", 1_000_000, "1ms"),
            ("1ns", 1, "1ns"),
            ("10ms", MAX_NS, "10ms"),
            (" 7ns ", 7, "7ns"),
        ] {
            assert_eq!(parse_ns(text), Ok(ns), "{text}");
            assert_eq!(format_ns(ns), canonical, "{text}");
            assert_eq!(parse_ns(&format_ns(ns)), Ok(ns), "{text} round trip");
        }
    }

    #[test]
    fn bad_costs_say_what_is_wrong() {
        for (text, why) in [
            ("2", "give a unit"),
            ("2h", "unknown unit 'h'"),
            ("0us", "more than zero"),
            ("1.5ns", "whole number of nanoseconds"),
            ("11ms", "at most 10ms"),
            ("us", "expected a time"),
            ("1.2.3us", "expected a time"),
            ("-2us", "cannot be negative"),
            ("99999999999999999999999999999999s", "at most 10ms"),
            ("0.0000000000000000000001s", "whole number of nanoseconds"),
            (".s", "expected a time"),
        ] {
            let err = parse_ns(text).unwrap_err();
            assert!(
                err.contains(why) && err.contains(text.trim()),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_sum_is_the_crc32c_whatever_the_work() {
        let sector = vec![0x5Au8; SECTOR_SIZE];
        let want = crc32c::crc32c(&sector);
        for steps in [0, 1, 1000] {
            assert_eq!(sector_sum(crc32c::selected(), &sector, steps), want);
        }
    }

    #[test]
    fn the_chain_depends_on_the_data_and_the_step_count() {
        assert_ne!(burn(1, 100), burn(2, 100));
        assert_ne!(burn(1, 100), burn(1, 101));
        assert_eq!(burn(7, 0), 7 | 1 << 63);
    }

    #[test]
    fn steps_fill_the_gap_above_the_floor_and_clamp_below_it() {
        let m = Model {
            floor_ns: 100.0,
            ns_per_step: 2.0,
        };
        assert_eq!(m.steps_for(2_000), 950);
        assert_eq!(m.steps_for(101), 1, "rounded to the nearest step");
        assert_eq!(m.steps_for(100), 0);
        assert_eq!(m.steps_for(10), 0, "below the floor: no extra work");
    }

    /// Median of `xs`, which it sorts.
    fn median(xs: &mut [f64]) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    /// Calibrates afresh and at once times the work that calibration picks for `ns`, on
    /// every sector of `data` as `Algo::sectors` runs it: achieved over requested.
    fn fresh_calibration_ratio(ns: u32, data: &[u8]) -> f64 {
        let steps = calibrate().steps_for(ns);
        let crc = crc32c::selected();
        let per_call = timing::best_ns_per_call(
            &mut [|| {
                for sector in std::hint::black_box(data).chunks_exact(SECTOR_SIZE) {
                    std::hint::black_box(sector_sum(crc, sector, steps));
                }
            }],
            timing::ROUNDS,
        )[0];
        per_call / (data.len() / SECTOR_SIZE) as f64 / f64::from(ns)
    }

    /// A calibration check, not a speed test: whatever the machine's speed, the work a
    /// calibration picks must take what was asked. A shared VM's speed drifts (a busy
    /// neighbour on the host), so each of 5 calibrations is checked right after it is made
    /// and the median decides, loosely (±20 %). 2 µs and 20 µs, or in an unoptimized build,
    /// whose floor can be above 2 µs, the same multiples of twice the floor.
    #[test]
    fn the_achieved_cost_is_within_20_percent_of_the_request() {
        let data: Vec<u8> = (0..16 * SECTOR_SIZE).map(|i| (i % 253) as u8).collect();
        let base = 2_000u32.max((2.0 * model().floor_ns) as u32);
        for ns in [base, 10 * base] {
            let mut ratios: Vec<f64> = (0..5).map(|_| fresh_calibration_ratio(ns, &data)).collect();
            let ratio = median(&mut ratios);
            assert!(
                (0.8..=1.2).contains(&ratio),
                "cost:{}: achieved/requested {ratio:.3} (each calibration: {ratios:.3?})",
                format_ns(ns)
            );
        }
    }

    #[test]
    fn the_calibration_record_is_what_the_stage_runs() {
        let ns = (3.0 * model().floor_ns) as u32;
        let cal = cost_calibration(ns);
        assert_eq!(cal.steps, steps_for(ns));
        assert!(cal.steps > 0 && !cal.clamped, "{cal:?}");
        assert_eq!(
            (cal.floor_ns, cal.ns_per_step),
            (model().floor_ns, model().ns_per_step)
        );
        assert!(cal.achieved_ns > 0.0, "{cal:?}");
    }

    #[test]
    fn a_request_below_the_floor_is_clamped_and_says_so() {
        let cal = cost_calibration(1);
        assert!(cal.clamped, "{cal:?}");
        assert_eq!(cal.steps, 0);
        assert!(cal.floor_ns > 1.0 && cal.achieved_ns > 1.0, "{cal:?}");
        assert_eq!(cost_calibration(1), cal, "measured once per cost");
    }
}
