//! What else the machine did while a case ran: CPU stolen by the hypervisor, CPU used by
//! other processes, pressure stalls, load, clock frequency, and dirty pages waiting for
//! writeback. A case measured while a neighbour was busy is flagged, never dropped.
//!
//! Everything comes from /proc and /sys; a file the kernel does not offer (PSI before
//! 4.20 or disabled, cpufreq in most VMs) leaves its fields `None`, never an error.
//!
//! Caveats, so the figures are read right:
//! - *Others' CPU* is user + nice + system time of the whole machine minus the harness's
//!   own (getrusage, every thread). Kernel threads working for the harness (writeback
//!   flushers, kworkers) count as others; interrupt and softirq time, mostly our own
//!   I/O completing, is reported apart (`irq_pct`) and not counted.
//! - PSI includes the pressure the harness puts on itself (a pool with more workers than
//!   CPUs stalls on CPU), so it is recorded, not used for the flag.
//! - /proc/stat counts in clock ticks (usually 100 Hz): on a case shorter than a second
//!   the percentages are good to a few points.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::measure::Usage;

/// A case is flagged when more than this share (%) of all CPU time was stolen by the
/// hypervisor or used by other processes: then its figures say as much about the
/// neighbours as about the strategy.
pub const INTERFERENCE_PCT: f64 = 10.0;

/// The aggregate `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// The first line of /proc/stat: `cpu  user nice system idle iowait irq softirq
    /// steal guest guest_nice` (older kernels stop earlier; missing fields are 0).
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        (fields.len() >= 4).then(|| CpuTimes {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        })
    }

    /// Every tick of every CPU (guest time is already inside user and nice).
    fn total(&self) -> u64 {
        self.busy() + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }

    /// Ticks spent running tasks, the harness's and everyone else's.
    fn busy(&self) -> u64 {
        self.user + self.nice + self.system
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        CpuTimes {
            user: d(self.user, earlier.user),
            nice: d(self.nice, earlier.nice),
            system: d(self.system, earlier.system),
            idle: d(self.idle, earlier.idle),
            iowait: d(self.iowait, earlier.iowait),
            irq: d(self.irq, earlier.irq),
            softirq: d(self.softirq, earlier.softirq),
            steal: d(self.steal, earlier.steal),
        }
    }
}

/// The `some` line's `total=` (µs stalled since boot) of a /proc/pressure file.
pub fn parse_psi_some_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The three load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// A /proc/meminfo field in kB (`Dirty:  1234 kB`).
pub fn parse_meminfo_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Pressure stall totals (µs) of /proc/pressure/{cpu,io,memory}.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub cpu: Option<u64>,
    pub io: Option<u64>,
    pub memory: Option<u64>,
}

/// The machine at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub cpu: Option<CpuTimes>,
    pub pressure: Pressure,
    pub loadavg: Option<[f64; 3]>,
    /// scaling_cur_freq of every CPU that exposes it, in kHz.
    pub cpu_khz: Vec<u64>,
    pub dirty_kib: Option<u64>,
    pub writeback_kib: Option<u64>,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        Snapshot::read_from(Path::new("/"))
    }

    /// Reads the files under `root` (`/` for the real machine; tests pass a folder with
    /// sample files laid out the same way).
    pub fn read_from(root: &Path) -> Snapshot {
        let read = |path: &str| fs::read_to_string(root.join(path)).ok();
        let psi = |name: &str| {
            read(&format!("proc/pressure/{name}")).and_then(|t| parse_psi_some_total(&t))
        };
        let meminfo = read("proc/meminfo");
        let mem = |field| meminfo.as_deref().and_then(|t| parse_meminfo_kib(t, field));
        Snapshot {
            cpu: read("proc/stat").and_then(|t| CpuTimes::parse(&t)),
            pressure: Pressure {
                cpu: psi("cpu"),
                io: psi("io"),
                memory: psi("memory"),
            },
            loadavg: read("proc/loadavg").and_then(|t| parse_loadavg(&t)),
            cpu_khz: cpu_frequencies(&root.join("sys/devices/system/cpu")),
            dirty_kib: mem("Dirty"),
            writeback_kib: mem("Writeback"),
        }
    }
}

fn cpu_frequencies(cpus: &Path) -> Vec<u64> {
    let Ok(entries) = fs::read_dir(cpus) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq")).ok())
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

/// What the machine did between two snapshots (the `noise` of a case's JSON).
/// Percentages are of all CPU time (every CPU, the whole window) or, for PSI, of the wall
/// time; `None` where the kernel did not say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub wall_s: f64,
    /// The harness's own user + system time over the window (getrusage, every thread).
    pub own_cpu_s: f64,
    pub steal_pct: Option<f64>,
    pub others_cpu_pct: Option<f64>,
    pub irq_pct: Option<f64>,
    pub psi_cpu_some_pct: Option<f64>,
    pub psi_io_some_pct: Option<f64>,
    pub psi_memory_some_pct: Option<f64>,
    pub loadavg_start: Option<[f64; 3]>,
    pub loadavg_end: Option<[f64; 3]>,
    pub cpu_mhz_min: Option<f64>,
    pub cpu_mhz_max: Option<f64>,
    pub dirty_kib_start: Option<u64>,
    pub dirty_kib_end: Option<u64>,
    pub writeback_kib_start: Option<u64>,
    pub writeback_kib_end: Option<u64>,
    /// Steal or others' CPU above [`INTERFERENCE_PCT`]: the case was measured under
    /// interference.
    pub interference: bool,
}

impl Noise {
    /// The noise of the window from `start` to `end`, `own_cpu_s` the harness's CPU
    /// seconds in it and `wall` its length.
    pub fn between(start: &Snapshot, end: &Snapshot, own_cpu_s: f64, wall: Duration) -> Noise {
        let ticks = end.cpu.zip(start.cpu).map(|(e, s)| e.since(&s));
        let tick_s = clock_tick_s();
        let share = |part: f64, all: u64| (all > 0).then(|| 100.0 * part / all as f64);
        let pct = |f: fn(&CpuTimes) -> f64| ticks.and_then(|t| share(f(&t), t.total()));
        let others = ticks.and_then(|t| {
            let others_ticks = (t.busy() as f64 - own_cpu_s / tick_s).max(0.0);
            share(others_ticks, t.total())
        });
        let wall_us = wall.as_secs_f64() * 1e6;
        let stalled = |f: fn(&Pressure) -> Option<u64>| {
            let us = f(&end.pressure)?.saturating_sub(f(&start.pressure)?);
            (wall_us > 0.0).then(|| 100.0 * us as f64 / wall_us)
        };
        let mhz = start
            .cpu_khz
            .iter()
            .chain(&end.cpu_khz)
            .map(|&k| k as f64 / 1000.0);
        let steal = pct(|t| t.steal as f64);
        Noise {
            wall_s: wall.as_secs_f64(),
            own_cpu_s,
            steal_pct: steal,
            others_cpu_pct: others,
            irq_pct: pct(|t| (t.irq + t.softirq) as f64),
            psi_cpu_some_pct: stalled(|p| p.cpu),
            psi_io_some_pct: stalled(|p| p.io),
            psi_memory_some_pct: stalled(|p| p.memory),
            loadavg_start: start.loadavg,
            loadavg_end: end.loadavg,
            cpu_mhz_min: mhz.clone().reduce(f64::min),
            cpu_mhz_max: mhz.reduce(f64::max),
            dirty_kib_start: start.dirty_kib,
            dirty_kib_end: end.dirty_kib,
            writeback_kib_start: start.writeback_kib,
            writeback_kib_end: end.writeback_kib,
            interference: [steal, others]
                .iter()
                .any(|p| p.is_some_and(|p| p > INTERFERENCE_PCT)),
        }
    }
}

/// Seconds per /proc/stat tick (USER_HZ, almost always 100).
fn clock_tick_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1.0 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// Watches one case: start it just before the measured part, stop it just after.
pub struct Watch {
    snapshot: Snapshot,
    usage: Usage,
    at: Instant,
}

impl Watch {
    pub fn start() -> Watch {
        Watch {
            snapshot: Snapshot::take(),
            usage: Usage::now(),
            at: Instant::now(),
        }
    }

    pub fn stop(self) -> Noise {
        let own = Usage::now().since(self.usage);
        let wall = self.at.elapsed();
        Noise::between(
            &self.snapshot,
            &Snapshot::take(),
            own.user_s + own.sys_s,
            wall,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  142785 3068 47308 65740 1830 10 238 618 0 0\n\
                        cpu0 68493 1471 21158 38673 650 0 32 297 0 0\n\
                        intr 1234 0 0\nctxt 99\n";

    #[test]
    fn parses_the_aggregate_cpu_line() {
        let t = CpuTimes::parse(STAT).unwrap();
        assert_eq!(
            (t.user, t.nice, t.system, t.idle),
            (142785, 3068, 47308, 65740)
        );
        assert_eq!((t.iowait, t.irq, t.softirq, t.steal), (1830, 10, 238, 618));
        assert_eq!(
            t.total(),
            142785 + 3068 + 47308 + 65740 + 1830 + 10 + 238 + 618
        );
        // A 2.6.11 kernel has no steal column; a garbled line is no line.
        let old = CpuTimes::parse("cpu  1 2 3 4 5 6 7\n").unwrap();
        assert_eq!((old.softirq, old.steal), (7, 0));
        assert_eq!(CpuTimes::parse("cpu  1 2 x 4\n"), None);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4\n"), None);
        assert_eq!(CpuTimes::parse(""), None);
    }

    #[test]
    fn parses_pressure_load_and_meminfo() {
        let psi = "some avg10=46.63 avg60=76.27 avg300=71.02 total=528487476\n\
                   full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_psi_some_total(psi), Some(528487476));
        assert_eq!(parse_psi_some_total("full total=3\n"), None);
        assert_eq!(
            parse_loadavg("4.00 4.87 3.71 2/115 4761\n"),
            Some([4.0, 4.87, 3.71])
        );
        assert_eq!(parse_loadavg("4.00 x"), None);
        let meminfo = "MemTotal: 24682416 kB\nDirty:            179844 kB\n\
                       Writeback:             0 kB\nWritebackTmp: 5 kB\n";
        assert_eq!(parse_meminfo_kib(meminfo, "Dirty"), Some(179844));
        assert_eq!(parse_meminfo_kib(meminfo, "Writeback"), Some(0));
        assert_eq!(parse_meminfo_kib(meminfo, "Shmem"), None);
    }

    fn lay_out(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn noise_between_two_sample_machines() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let freq = "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq";
        let freq1 = "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq";
        lay_out(
            a.path(),
            &[
                ("proc/stat", "cpu  1000 0 500 3000 0 0 0 100 0 0\n"),
                (
                    "proc/pressure/cpu",
                    "some avg10=0 avg60=0 avg300=0 total=1000000\n",
                ),
                (
                    "proc/pressure/io",
                    "some avg10=0 avg60=0 avg300=0 total=0\n",
                ),
                ("proc/loadavg", "0.50 0.40 0.30 1/100 10\n"),
                ("proc/meminfo", "Dirty: 100 kB\nWriteback: 0 kB\n"),
                (freq, "2000000\n"),
                (freq1, "2400000\n"),
                ("sys/devices/system/cpu/cpufreq/policy0", "not a cpu"),
            ],
        );
        // Over the window: 400 ticks busy, 400 idle, 100 stolen, 100 irq: 1000 in all.
        lay_out(
            b.path(),
            &[
                ("proc/stat", "cpu  1300 0 600 3400 0 50 50 200 0 0\n"),
                (
                    "proc/pressure/cpu",
                    "some avg10=0 avg60=0 avg300=0 total=1500000\n",
                ),
                (
                    "proc/pressure/io",
                    "some avg10=0 avg60=0 avg300=0 total=100000\n",
                ),
                ("proc/loadavg", "1.50 0.60 0.35 3/100 12\n"),
                ("proc/meminfo", "Dirty: 9000 kB\nWriteback: 512 kB\n"),
                (freq, "1800000\n"),
            ],
        );
        let (start, end) = (Snapshot::read_from(a.path()), Snapshot::read_from(b.path()));
        assert_eq!(start.cpu_khz.len(), 2);
        // The harness used 310 of the 400 busy ticks.
        let own = 310.0 * clock_tick_s();
        let n = Noise::between(&start, &end, own, Duration::from_secs(5));
        assert_eq!(n.steal_pct, Some(10.0));
        assert!((n.others_cpu_pct.unwrap() - 9.0).abs() < 1e-9, "{n:?}");
        assert_eq!(n.irq_pct, Some(10.0));
        assert_eq!(n.psi_cpu_some_pct, Some(10.0));
        assert_eq!(n.psi_io_some_pct, Some(2.0));
        assert_eq!(n.psi_memory_some_pct, None);
        assert_eq!(n.loadavg_end, Some([1.5, 0.6, 0.35]));
        assert_eq!((n.cpu_mhz_min, n.cpu_mhz_max), (Some(1800.0), Some(2400.0)));
        assert_eq!(
            (n.dirty_kib_start, n.dirty_kib_end),
            (Some(100), Some(9000))
        );
        assert_eq!(n.writeback_kib_end, Some(512));
        // Exactly 10 % stolen is not above the threshold.
        assert!(!n.interference);
        let busier = Noise::between(&start, &end, 0.0, Duration::from_secs(5));
        assert_eq!(busier.others_cpu_pct, Some(40.0));
        assert!(busier.interference);
    }

    #[test]
    fn a_machine_that_exposes_nothing_gives_nones() {
        let empty = tempfile::tempdir().unwrap();
        let s = Snapshot::read_from(empty.path());
        assert_eq!(s, Snapshot::default());
        let n = Noise::between(&s, &s, 1.0, Duration::from_secs(1));
        assert_eq!(
            (n.steal_pct, n.others_cpu_pct, n.psi_cpu_some_pct),
            (None, None, None)
        );
        assert_eq!(
            (n.cpu_mhz_min, n.dirty_kib_end, n.loadavg_end),
            (None, None, None)
        );
        assert!(!n.interference);
    }

    #[test]
    fn watching_this_machine_gives_sane_shares() {
        let watch = Watch::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let n = watch.stop();
        assert!(n.wall_s > 0.0 && n.own_cpu_s >= 0.0, "{n:?}");
        for pct in [n.steal_pct, n.others_cpu_pct, n.irq_pct]
            .into_iter()
            .flatten()
        {
            assert!((0.0..=100.0).contains(&pct), "{n:?}");
        }
        if Path::new("/proc/stat").exists() {
            assert!(
                n.loadavg_end.is_some() && n.dirty_kib_end.is_some(),
                "{n:?}"
            );
        }
    }
}
