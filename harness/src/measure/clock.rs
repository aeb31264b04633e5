//! The clock every latency is measured with: the CPU's time-stamp counter where it is
//! invariant and the kernel keeps time with it (fio's `clocksource=cpu`), calibrated against
//! CLOCK_MONOTONIC when the process first asks; CLOCK_MONOTONIC itself everywhere else. A
//! bio takes several readings, and a TSC read is a few nanoseconds where clock_gettime is
//! ~20 even through the vDSO.
//!
//! [`Stamp`]s are nanoseconds, so that latencies are a subtraction; every thread of the
//! process reads the same clock, so a stamp taken by a pool worker and one taken by the
//! submitter compare (the kernel only keeps time with the TSC when it is synchronised
//! across CPUs, which is one of the conditions).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A point in time on the process's clock: nanoseconds on CLOCK_MONOTONIC's scale (since
/// boot), whichever source reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    pub fn now() -> Stamp {
        clock().now()
    }

    /// Nanoseconds from `earlier` to this stamp; 0 if `earlier` is later (two CPUs' counters
    /// may disagree by a few nanoseconds).
    pub fn nanos_since(self, earlier: Stamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    pub fn saturating_duration_since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.nanos_since(earlier))
    }

    pub fn after(self, d: Duration) -> Stamp {
        Stamp(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    /// The stamp of an [`Instant`] (a deadline, a ramp's end), through the pair of readings
    /// taken when the clock was set up; instants before that are stamp 0.
    pub fn of(instant: Instant) -> Stamp {
        let (anchor_instant, anchor) = clock().anchor;
        match instant.checked_duration_since(anchor_instant) {
            Some(later) => anchor.after(later),
            None => Stamp(
                anchor
                    .0
                    .saturating_sub(duration_nanos(anchor_instant - instant)),
            ),
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Which clock the stamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// The time-stamp counter (RDTSC), scaled to nanoseconds by the calibration.
    Tsc,
    /// clock_gettime(CLOCK_MONOTONIC).
    ClockMonotonic,
}

/// What the manifest says about the clock.
#[derive(Debug, Clone, Serialize)]
pub struct ClockReport {
    pub source: ClockSource,
    /// Counter ticks per second, as calibrated (TSC only).
    pub tsc_hz: Option<f64>,
    /// How far the two calibration windows disagreed, in parts per million (TSC only).
    pub calibration_spread_ppm: Option<f64>,
    /// Why the TSC is not used (CLOCK_MONOTONIC only).
    pub fallback: Option<String>,
    /// What one reading cost when measured at start-up, in nanoseconds.
    pub read_ns: f64,
}

/// Ticks to nanoseconds: `ns = (ticks * mult) >> SHIFT`, to the nearest; 40 bits keep the
/// scale's own rounding below 1e-11 (the calibration is good to ~1e-5).
const SHIFT: u32 = 40;
/// Each calibration window; two of them must agree.
const WINDOW: Duration = Duration::from_millis(5);
/// The most the two windows may disagree before the counter is not trusted.
const MAX_SPREAD_PPM: f64 = 1000.0;

/// The TSC as a clock: the counter reading `base` was CLOCK_MONOTONIC's `base_ns`, and
/// later readings are scaled from there.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TscScale {
    base: u64,
    base_ns: u64,
    mult: u64,
}

impl TscScale {
    fn new((base, base_ns): (u64, u64), hz: f64) -> TscScale {
        TscScale {
            base,
            base_ns,
            mult: (1e9 * (1u64 << SHIFT) as f64 / hz).round() as u64,
        }
    }

    fn nanos(self, ticks: u64) -> u64 {
        let elapsed = ticks.saturating_sub(self.base) as u128;
        let half = 1u128 << (SHIFT - 1);
        self.base_ns + ((elapsed * self.mult as u128 + half) >> SHIFT) as u64
    }
}

pub struct Clock {
    /// `None`: CLOCK_MONOTONIC.
    tsc: Option<TscScale>,
    /// An instant and the stamp read together with it, for [`Stamp::of`].
    anchor: (Instant, Stamp),
    report: ClockReport,
}

/// The process's clock, set up (and, for the TSC, calibrated: ~10 ms) on first use.
pub fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::set_up)
}

impl Clock {
    fn set_up() -> Clock {
        match tsc::usable().and_then(|()| tsc::calibrate()) {
            Ok((scale, hz, spread_ppm)) => Clock::with(
                Some(scale),
                ClockSource::Tsc,
                Some(hz),
                Some(spread_ppm),
                None,
            ),
            Err(why) => Clock::monotonic(why),
        }
    }

    /// CLOCK_MONOTONIC, and why.
    fn monotonic(why: String) -> Clock {
        Clock::with(None, ClockSource::ClockMonotonic, None, None, Some(why))
    }

    fn with(
        tsc: Option<TscScale>,
        source: ClockSource,
        tsc_hz: Option<f64>,
        calibration_spread_ppm: Option<f64>,
        fallback: Option<String>,
    ) -> Clock {
        let mut clock = Clock {
            tsc,
            anchor: (Instant::now(), Stamp(0)),
            report: ClockReport {
                source,
                tsc_hz,
                calibration_spread_ppm,
                fallback,
                read_ns: 0.0,
            },
        };
        clock.anchor = (Instant::now(), clock.now());
        clock.report.read_ns = clock.read_cost();
        clock
    }

    #[inline]
    pub fn now(&self) -> Stamp {
        match self.tsc {
            Some(scale) => Stamp(scale.nanos(tsc::read())),
            None => Stamp(monotonic_nanos()),
        }
    }

    pub fn report(&self) -> &ClockReport {
        &self.report
    }

    /// Nanoseconds per reading, the cheapest of a few rounds of many.
    fn read_cost(&self) -> f64 {
        const READS: u32 = 1000;
        (0..5)
            .map(|_| {
                let start = self.now();
                for _ in 0..READS {
                    std::hint::black_box(self.now());
                }
                self.now().nanos_since(start) as f64 / f64::from(READS)
            })
            .fold(f64::INFINITY, f64::min)
    }
}

fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether the counter may be trusted, given what the CPU and the kernel say.
fn judge(invariant: bool, kernel_source: Option<&str>) -> Result<(), String> {
    if !invariant {
        return Err("the CPU does not report an invariant TSC".into());
    }
    match kernel_source.map(str::trim) {
        Some("tsc") | None => Ok(()),
        Some(other) => Err(format!(
            "the kernel keeps time with {other}, not the TSC (so it may not be synchronised \
             across CPUs)"
        )),
    }
}

/// The rate from two calibration windows of `(ticks, nanoseconds)`, and how far apart they
/// are in parts per million; an error when they disagree.
fn rate(first: (u64, u64), second: (u64, u64)) -> Result<(f64, f64), String> {
    let hz = |(ticks, ns): (u64, u64)| ticks as f64 * 1e9 / ns.max(1) as f64;
    let (a, b) = (hz(first), hz(second));
    let spread_ppm = (a - b).abs() / a.min(b) * 1e6;
    if !(a > 0.0 && b > 0.0) || spread_ppm > MAX_SPREAD_PPM {
        return Err(format!(
            "the TSC rate moved during calibration ({a:.0} Hz, then {b:.0} Hz)"
        ));
    }
    Ok(((a + b) / 2.0, spread_ppm))
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use std::arch::x86_64::{__cpuid, _rdtsc};

    use super::{judge, monotonic_nanos, rate, TscScale, WINDOW};

    #[inline]
    pub fn read() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU and has no preconditions.
        unsafe { _rdtsc() }
    }

    pub fn usable() -> Result<(), String> {
        // CPUID leaf 0x8000_0007, EDX bit 8: the TSC runs at a constant rate in every state.
        // SAFETY: CPUID exists on every x86_64 CPU; the extended leaf is asked for only when
        // the maximum extended leaf says it is there.
        #[allow(unused_unsafe)]
        let invariant = unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        };
        let kernel = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .ok();
        judge(invariant, kernel.as_deref())
    }

    /// A counter reading and a CLOCK_MONOTONIC reading taken as close together as a few
    /// tries allow (a preemption between them would skew the rate).
    fn pair() -> (u64, u64) {
        (0..16)
            .map(|_| {
                let before = read();
                let ns = monotonic_nanos();
                let after = read();
                (after - before, before + (after - before) / 2, ns)
            })
            .min()
            .map(|(_, ticks, ns)| (ticks, ns))
            .expect("16 tries")
    }

    /// Two back-to-back windows: their rates must agree.
    pub fn calibrate() -> Result<(TscScale, f64, f64), String> {
        let window = || {
            let (t0, n0) = pair();
            std::thread::sleep(WINDOW);
            let (t1, n1) = pair();
            ((t1.wrapping_sub(t0), n1.saturating_sub(n0)), (t0, n0))
        };
        let (first, base) = window();
        let (second, _) = window();
        let (hz, spread_ppm) = rate(first, second)?;
        Ok((TscScale::new(base, hz), hz, spread_ppm))
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    use super::TscScale;

    pub fn read() -> u64 {
        unreachable!("no TSC clock is set up off x86_64")
    }

    pub fn usable() -> Result<(), String> {
        Err("not an x86_64 CPU".into())
    }

    pub fn calibrate() -> Result<(TscScale, f64, f64), String> {
        unreachable!("usable() refuses first")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_scale_to_nanoseconds() {
        let scale = TscScale::new((1_000, 7), 2.5e9);
        assert_eq!(scale.nanos(1_000), 7);
        assert_eq!(scale.nanos(1_000 + 2_500_000_000), 1_000_000_007);
        assert_eq!(scale.nanos(1_000 + 25), 17);
        // An hour at 2.5 GHz is 9e12 ticks: no overflow, within a few nanoseconds.
        let hour = scale.nanos(1_000 + 9_000_000_000_000);
        assert!(hour.abs_diff(3_600_000_000_007) < 10, "{hour}");
        assert_eq!(scale.nanos(0), 7, "before the base is the base");
    }

    #[test]
    fn two_windows_must_agree() {
        let (hz, spread) = rate((2_500_000, 1_000_000), (5_000_000, 2_000_000)).unwrap();
        assert_eq!((hz, spread), (2.5e9, 0.0));
        let (hz, spread) = rate((2_500_000, 1_000_000), (2_500_250, 1_000_000)).unwrap();
        assert!((hz - 2.500125e9).abs() < 1.0 && (spread - 100.0).abs() < 0.01);
        let e = rate((2_500_000, 1_000_000), (2_600_000, 1_000_000)).unwrap_err();
        assert!(e.contains("moved during calibration"), "{e}");
    }

    #[test]
    fn the_tsc_needs_an_invariant_counter_the_kernel_trusts() {
        assert!(judge(true, Some("tsc\n")).is_ok());
        assert!(judge(true, None).is_ok(), "no sysfs: the CPU's word");
        assert!(judge(false, Some("tsc")).unwrap_err().contains("invariant"));
        let e = judge(true, Some("kvm-clock\n")).unwrap_err();
        assert!(e.contains("kvm-clock, not the TSC"), "{e}");
    }

    /// Readings bracketed by two instants, retried until the bracket is tight.
    fn bracketed(clock: &Clock) -> (Instant, Stamp, Instant) {
        (0..100)
            .map(|_| (Instant::now(), clock.now(), Instant::now()))
            .min_by_key(|(a, _, b)| *b - *a)
            .unwrap()
    }

    /// Whatever the source, the clock measures what CLOCK_MONOTONIC measures.
    fn agrees_with_instant(clock: &Clock) {
        let (a0, s0, b0) = bracketed(clock);
        std::thread::sleep(Duration::from_millis(20));
        let (a1, s1, b1) = bracketed(clock);
        let measured = s1.nanos_since(s0) as f64;
        let (shortest, longest) = ((a1 - b0).as_nanos() as f64, (b1 - a0).as_nanos() as f64);
        // The calibration is good to ~100 ppm; allow 0.5 %.
        assert!(
            measured >= shortest * 0.995 && measured <= longest * 1.005,
            "{:?}: {measured} ns against {shortest}-{longest}",
            clock.report.source
        );
        assert!(clock.now() >= s1, "monotonic");
    }

    #[test]
    fn both_sources_agree_with_clock_monotonic() {
        agrees_with_instant(clock());
        let fallback = Clock::monotonic("asked for".into());
        assert_eq!(fallback.report.source, ClockSource::ClockMonotonic);
        agrees_with_instant(&fallback);
        assert!(clock().report().read_ns > 0.0);
    }

    #[test]
    fn instants_map_onto_stamps() {
        clock();
        let now = Instant::now();
        let (stamp, later) = (Stamp::of(now), Stamp::of(now + Duration::from_millis(250)));
        assert_eq!(later.nanos_since(stamp), 250_000_000);
        assert_eq!(stamp.nanos_since(later), 0, "saturates");
        let read = Stamp::now();
        assert!(read >= stamp, "the same time base");
        let monotonic = monotonic_nanos();
        assert!(
            monotonic.abs_diff(Stamp::now().0) < 1_000_000_000,
            "CLOCK_MONOTONIC's scale"
        );
    }
}
