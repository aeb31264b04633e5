//! fio's per-job logs (`write_bw_log`, `write_iops_log`, `write_lat_log`), recorded by the
//! job's own thread as its bios retire, kept in memory (as fio keeps them) and rendered at
//! the case's end in fio 3.33's format, one entry a line:
//!
//! ```text
//! time_ms, value, data_direction, block_size[, offset], prio
//! ```
//!
//! Time counts from the start of the job's measurement (after its start delay and ramp);
//! the direction is 0 for reads, 1 for writes; prio is always 0 (csumbench sets none).
//! With `log_avg_msec=0` every I/O is an entry: its bandwidth (KiB/s... as fio computes it,
//! bytes * 10^6 / clat in ns), 1 for IOPS, its latencies in ns. With windows, each entry is
//! a window's average, at the window's end, with block size (and offset) 0; as in fio, the
//! job's last, partial window is in the latency logs only.

use workloads::{JobSpec, LogKind, Logs, Op};

use super::clock::Stamp;

/// One retired I/O, as the logs see it: when it ended, and its latencies in ns.
#[derive(Clone, Copy)]
pub struct Sample {
    pub end: Stamp,
    pub op: Op,
    pub len: u64,
    pub offset: u64,
    /// Issue to submission (the csum stage of a write is in it).
    pub slat: u64,
    /// Submission to the device's completion.
    pub clat: u64,
    /// Issue to the end of endio.
    pub lat: u64,
}

/// What a window adds up, per direction.
#[derive(Clone, Copy, Default)]
struct Sums {
    bytes: u64,
    ios: u64,
    slat: u64,
    clat: u64,
    lat: u64,
}

impl Sums {
    fn add(&mut self, s: &Sample) {
        self.bytes += s.len;
        self.ios += 1;
        self.slat += s.slat;
        self.clat += s.clat;
        self.lat += s.lat;
    }
}

/// A closed window of one direction.
struct Window {
    end_ms: u64,
    op: Op,
    sums: Sums,
    partial: bool,
}

/// A job's entries: every I/O, or windows of `log_avg_msec`.
enum Entries {
    /// Each I/O, with when it ended (ns since the epoch).
    PerIo(Vec<(u64, Sample)>),
    Windows {
        len_ns: u64,
        /// When the open window ends, ns since the epoch.
        end: u64,
        open: [Sums; 2],
        closed: Vec<Window>,
    },
}

/// One job's logs while it runs.
pub struct JobLog {
    logs: Logs,
    name: String,
    /// fio's job number (from 1): the `N` of `PREFIX_bw.N.log`.
    number: u32,
    /// fio logs submission latency only for engines that queue (none for sync ones).
    slat: bool,
    /// The directions the job does: the ones its bandwidth and IOPS windows report.
    dirs: [bool; 2],
    epoch: Stamp,
    entries: Entries,
}

const NS_PER_MS: u64 = 1_000_000;

impl JobLog {
    /// The logs of job `number`, its times from `epoch`; `None` when it asks for none, so
    /// that a job without logs pays nothing.
    pub fn new(job: &JobSpec, number: u32, sync_engine: bool, epoch: Stamp) -> Option<JobLog> {
        if !job.logs.any() {
            return None;
        }
        let len_ns = u64::from(job.logs.avg_msec) * NS_PER_MS;
        let entries = match len_ns {
            0 => Entries::PerIo(Vec::new()),
            _ => Entries::Windows {
                len_ns,
                end: len_ns,
                open: [Sums::default(); 2],
                closed: Vec::new(),
            },
        };
        Some(JobLog {
            logs: job.logs.clone(),
            name: job.name.clone(),
            number,
            slat: !sync_engine,
            dirs: [job.rw.is_read(), job.rw.is_write()],
            epoch,
            entries,
        })
    }

    pub fn record(&mut self, sample: Sample) {
        let at = sample.end.nanos_since(self.epoch);
        if let Entries::PerIo(samples) = &mut self.entries {
            samples.push((at, sample));
            return;
        }
        self.close_until(at);
        if let Entries::Windows { open, .. } = &mut self.entries {
            open[slot(sample.op)].add(&sample);
        }
    }

    /// The job ended at `at`: the windows up to it close, the last one partial.
    pub fn finish(&mut self, at: Stamp) {
        let at = at.nanos_since(self.epoch);
        self.close_until(at);
        self.close(at / NS_PER_MS, true);
    }

    /// Closes every window that ended by `at` (ns since the epoch).
    fn close_until(&mut self, at: u64) {
        while let Entries::Windows { end, len_ns, .. } = &mut self.entries {
            if at < *end {
                return;
            }
            let closed_at = *end;
            *end += *len_ns;
            self.close(closed_at / NS_PER_MS, false);
        }
    }

    fn close(&mut self, end_ms: u64, partial: bool) {
        let dirs = self.dirs;
        if let Entries::Windows { open, closed, .. } = &mut self.entries {
            for op in [Op::Read, Op::Write]
                .into_iter()
                .filter(|&op| dirs[slot(op)])
            {
                let sums = std::mem::take(&mut open[slot(op)]);
                closed.push(Window {
                    end_ms,
                    op,
                    sums,
                    partial,
                });
            }
        }
    }

    /// Every log file the job asked for: fio's name for it, and its text.
    pub fn render(&self) -> Vec<(String, String)> {
        self.logs
            .files(&self.name)
            .into_iter()
            .map(|(kind, prefix)| {
                let name = self.logs.file_name(kind, prefix, self.number);
                (name, self.text(kind))
            })
            .collect()
    }

    fn text(&self, kind: LogKind) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        if kind == LogKind::Slat && !self.slat {
            return text;
        }
        let offset = self.logs.offset;
        let mut line = |ms: u64, value: u64, op: Op, bs: u64, at: u64| {
            let _ = write!(text, "{ms}, {value}, {}, {bs}", slot(op));
            if offset {
                let _ = write!(text, ", {at}");
            }
            text.push_str(", 0\n");
        };
        match &self.entries {
            Entries::PerIo(samples) => {
                for (at, s) in samples {
                    line(at / NS_PER_MS, per_io(kind, s), s.op, s.len, s.offset);
                }
            }
            Entries::Windows { len_ns, closed, .. } => {
                for w in closed {
                    if let Some(value) = windowed(kind, w, *len_ns) {
                        line(w.end_ms, value, w.op, 0, 0);
                    }
                }
            }
        }
        text
    }
}

/// fio's direction number, and the slot of a per-direction array.
fn slot(op: Op) -> usize {
    match op {
        Op::Read => 0,
        Op::Write => 1,
    }
}

/// One I/O's value in a log of `kind`.
fn per_io(kind: LogKind, s: &Sample) -> u64 {
    match kind {
        LogKind::Bw => s.len * 1_000_000 / s.clat.max(1),
        LogKind::Iops => 1,
        LogKind::Lat => s.lat,
        LogKind::Slat => s.slat,
        LogKind::Clat => s.clat,
    }
}

/// A window's value in a log of `kind` (KiB/s, I/Os per second, mean ns); none for a
/// partial window's rates, or a window without I/O's latency.
fn windowed(kind: LogKind, w: &Window, len_ns: u64) -> Option<u64> {
    let s = &w.sums;
    let per_second = |n: u64| (u128::from(n) * 1_000_000_000 / u128::from(len_ns)) as u64;
    let mean = |total: u64| (s.ios > 0).then(|| total / s.ios);
    match kind {
        LogKind::Bw | LogKind::Iops if w.partial => None,
        LogKind::Bw => Some(per_second(s.bytes) / 1024),
        LogKind::Iops => Some(per_second(s.ios)),
        LogKind::Lat => mean(s.lat),
        LogKind::Slat => mean(s.slat),
        LogKind::Clat => mean(s.clat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(options: &[(&str, &str)]) -> JobSpec {
        let mut job = JobSpec::default();
        job.set("name", "j").unwrap();
        for (k, v) in options {
            job.set(k, v).unwrap();
        }
        job
    }

    fn sample(epoch: Stamp, ms: u64, op: Op) -> Sample {
        Sample {
            end: epoch.after(Duration::from_millis(ms)),
            op,
            len: 4096,
            offset: 8192,
            slat: 100,
            clat: 400,
            lat: 1000,
        }
    }

    #[test]
    fn no_log_asked_for_no_recorder() {
        assert!(JobLog::new(&job(&[]), 1, true, Stamp::now()).is_none());
    }

    #[test]
    fn per_io_entries_are_fios_lines() {
        let epoch = Stamp::now();
        let j = job(&[
            ("write_bw_log", "p"),
            ("write_lat_log", ""),
            ("log_offset", "1"),
        ]);
        let mut log = JobLog::new(&j, 2, false, epoch).unwrap();
        log.record(sample(epoch, 3, Op::Write));
        log.record(sample(epoch, 1500, Op::Read));
        log.finish(epoch.after(Duration::from_secs(2)));
        let files = log.render();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["p_bw.2.log", "j_lat.2.log", "j_slat.2.log", "j_clat.2.log"]
        );
        assert_eq!(
            files[0].1,
            "3, 10240000, 1, 4096, 8192, 0\n1500, 10240000, 0, 4096, 8192, 0\n"
        );
        assert_eq!(files[1].1.lines().next(), Some("3, 1000, 1, 4096, 8192, 0"));
        assert_eq!(files[2].1.lines().next(), Some("3, 100, 1, 4096, 8192, 0"));
        assert_eq!(
            files[3].1.lines().nth(1),
            Some("1500, 400, 0, 4096, 8192, 0")
        );
    }

    #[test]
    fn windows_average_and_only_latency_logs_keep_the_last_partial_one() {
        let epoch = Stamp::now();
        let j = job(&[
            ("rw", "write"),
            ("write_iops_log", "p"),
            ("write_bw_log", "p"),
            ("write_lat_log", "p"),
            ("log_avg_msec", "500"),
            ("per_job_logs", "0"),
        ]);
        // A sync engine: no submission latencies, as in fio.
        let mut log = JobLog::new(&j, 1, true, epoch).unwrap();
        for ms in [10, 20, 30, 40, 1200, 1300] {
            log.record(sample(epoch, ms, Op::Write));
        }
        log.finish(epoch.after(Duration::from_millis(1400)));
        let files = log.render();
        let text = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
        // 4 I/Os of 4 KiB in the first 500 ms: 8 IOPS, 32 KiB/s; none in the second.
        assert_eq!(text("p_iops.log"), "500, 8, 1, 0, 0\n1000, 0, 1, 0, 0\n");
        assert_eq!(text("p_bw.log"), "500, 32, 1, 0, 0\n1000, 0, 1, 0, 0\n");
        assert_eq!(
            text("p_lat.log"),
            "500, 1000, 1, 0, 0\n1400, 1000, 1, 0, 0\n"
        );
        assert_eq!(text("p_slat.log"), "");
    }
}
