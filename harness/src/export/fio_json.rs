//! `<case>.fio.json`: a case in the shape of fio's `--output-format=json` (and `json+`), so
//! that scripts and dashboards written for fio read it unchanged. The shape is fio 3.33's;
//! what csumbench does not measure is printed as fio prints what it lacks (zeros).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Map, Value};
use workloads::{JobSpec, Op};

use crate::case::Status;
use crate::measure::{op_index, DirectionHists, Stage, Usage, OPS};
use crate::pipeline::DEPTH_LEVELS;

/// How much fio's JSON says: `json`, or `json+` (clat histogram bins as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FioDetail {
    Json,
    JsonPlus,
}

/// What `--output-format` asks for besides csumbench's own output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormat {
    /// `<case>.fio.json` beside each case's files, in this detail.
    pub fio_json: Option<FioDetail>,
}

/// `--output-format`, as fio takes it: a comma list of `normal`, `json`, `json+`. `normal`
/// (csumbench's own table and files) is always written; the most detailed JSON asked for
/// wins. `terse` is refused.
pub fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    let mut detail = None;
    for format in s.split(',').map(str::trim) {
        let this = match format {
            "normal" => None,
            "json" => Some(FioDetail::Json),
            "json+" => Some(FioDetail::JsonPlus),
            "terse" => {
                return Err(
                    "terse: csumbench does not write fio's terse format; use json or \
                            json+ (a <case>.fio.json beside each case's files)"
                        .into(),
                )
            }
            other => return Err(format!("'{other}': expected normal, json or json+")),
        };
        detail = detail.max(this);
    }
    Ok(OutputFormat { fio_json: detail })
}

/// fio's default `percentile_list`.
const PERCENTILES: [f64; 17] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95,
    99.99,
];

/// One case, as much of it as fio's JSON shows.
pub struct FioCase<'a> {
    pub detail: FioDetail,
    pub ended: SystemTime,
    pub status: Status,
    /// The strategy spec and the endio topology: csumbench's, shown as global options.
    pub strategy: &'a str,
    pub topology: String,
    /// Whole-process CPU, context switches and faults over the case (fio's are per job).
    pub usage: Usage,
    pub elapsed: Duration,
    /// The collector's interval: the bandwidth and IOPS samples are taken over it.
    pub interval: Duration,
    /// The length of each of the case's intervals.
    pub interval_lengths: Vec<Duration>,
    /// The job file's group the case ran (fio's `groupid`, from 0).
    pub groupid: u32,
    pub jobs: Vec<FioJob<'a>>,
}

/// One job thread (one clone of `numjobs`), as fio lists it.
pub struct FioJob<'a> {
    pub spec: &'a JobSpec,
    pub runtime: Duration,
    pub latencies: &'a DirectionHists,
    /// Bytes and bios counted, per direction ([`OPS`]'s order).
    pub moved: [(u64, u64); 2],
    /// Bytes and bios per interval, per direction.
    pub per_interval: &'a [Vec<(u64, u64)>; 2],
    /// Submissions by the pipeline's depth at the time, in `iodepth_level`'s ranges.
    pub depth_levels: [u64; DEPTH_LEVELS],
}

/// The errno fio would report for a case that ended so.
fn errno(status: Status) -> i32 {
    match status {
        Status::Ok => 0,
        Status::VerifyFailed => libc::EILSEQ,
        Status::Error => libc::EIO,
        Status::Deadlock | Status::Stall => libc::ETIMEDOUT,
        Status::Interrupted => libc::EINTR,
    }
}

/// The whole `<case>.fio.json`.
pub fn render(case: &FioCase) -> Value {
    let since_epoch = case.ended.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Per direction, every job's bandwidth together: what `bw_agg` is a share of.
    let group_bw: Vec<f64> = OPS
        .iter()
        .map(|&op| case.jobs.iter().map(|j| bw_bytes(j, op)).sum())
        .collect();
    let jobs: Vec<Value> = case.jobs.iter().map(|j| job(case, j, &group_bw)).collect();
    json!({
        "fio version": format!("csumbench {}", env!("CARGO_PKG_VERSION")),
        "timestamp": since_epoch.as_secs(),
        "timestamp_ms": since_epoch.as_millis() as u64,
        "time": ctime(since_epoch.as_secs()),
        "global options": {"strategy": case.strategy, "endio": case.topology},
        "jobs": jobs,
    })
}

/// fio's `time`: ctime(3) in local time, without its newline.
fn ctime(secs: u64) -> String {
    let t = secs as libc::time_t;
    let mut buf = [0 as libc::c_char; 64];
    // SAFETY: ctime_r writes at most 26 bytes into a buffer of 64.
    let s = unsafe { libc::ctime_r(&t, buf.as_mut_ptr()) };
    if s.is_null() {
        return String::new();
    }
    // SAFETY: ctime_r returned `buf`, NUL-terminated.
    let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    text.to_string_lossy().trim_end().to_string()
}

fn bw_bytes(job: &FioJob, op: Op) -> f64 {
    let secs = job.runtime.as_secs_f64();
    match secs > 0.0 {
        true => job.moved[op_index(op)].0 as f64 / secs,
        false => 0.0,
    }
}

fn job(case: &FioCase, job: &FioJob, group_bw: &[f64]) -> Value {
    let secs = case.elapsed.as_secs_f64().max(1e-9);
    let cpu = |s: f64| s / secs * 100.0;
    let per_op = |op: Op| direction(case, job, op, group_bw[op_index(op)]);
    let latencies = latency_maps(job);
    let unmeasured = |keys: &[&str]| -> Map<String, Value> {
        keys.iter().map(|k| (k.to_string(), json!(0.0))).collect()
    };
    json!({
        "jobname": job.spec.name,
        "groupid": case.groupid,
        "error": errno(case.status),
        "eta": 0,
        "elapsed": job.runtime.as_secs_f64().round() as u64,
        "job options": job_options(job.spec),
        "read": per_op(Op::Read),
        "write": per_op(Op::Write),
        "trim": idle_direction(),
        "sync": {"total_ios": 0, "lat_ns": empty_latency()},
        "job_runtime": job.runtime.as_millis() as u64,
        "usr_cpu": cpu(case.usage.user_s),
        "sys_cpu": cpu(case.usage.sys_s),
        "ctx": case.usage.voluntary_csw + case.usage.involuntary_csw,
        "majf": case.usage.major_faults,
        "minf": case.usage.minor_faults,
        "iodepth_level": depth_levels(&job.depth_levels),
        "iodepth_submit": unmeasured(&["0", "4", "8", "16", "32", "64", ">=64"]),
        "iodepth_complete": unmeasured(&["0", "4", "8", "16", "32", "64", ">=64"]),
        "latency_ns": latencies[0],
        "latency_us": latencies[1],
        "latency_ms": latencies[2],
        "latency_depth": job.spec.iodepth,
        "latency_target": 0,
        "latency_percentile": 100.0,
        "latency_window": 0,
    })
}

/// fio's `iodepth_level`: the share of submissions made at each depth range.
fn depth_levels(counts: &[u64; DEPTH_LEVELS]) -> Map<String, Value> {
    const KEYS: [&str; DEPTH_LEVELS] = ["1", "2", "4", "8", "16", "32", ">=64"];
    let total: u64 = counts.iter().sum();
    let share = |n: u64| match total {
        0 => 0.0,
        t => n as f64 / t as f64 * 100.0,
    };
    let each = KEYS.iter().zip(counts);
    each.map(|(k, &n)| (k.to_string(), json!(share(n))))
        .collect()
}

/// fio's `job options` are strings: every option csumbench holds as one value (not only
/// those given), booleans as fio's 0 and 1.
fn job_options(spec: &JobSpec) -> Map<String, Value> {
    let Ok(Value::Object(all)) = serde_json::to_value(spec) else {
        return Map::new();
    };
    all.into_iter()
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => u8::from(b).to_string(),
                _ => return None,
            };
            Some((name, Value::String(text)))
        })
        .collect()
}

/// One direction of a job: `read` or `write`. clat is csumbench's `io` stage (submission to
/// completion), lat its `e2e` (issue to retirement); slat is not timed (fio's sync engines
/// print it empty too).
fn direction(case: &FioCase, job: &FioJob, op: Op, group_bw: f64) -> Value {
    let (bytes, ios) = job.moved[op_index(op)];
    if ios == 0 {
        return idle_direction();
    }
    let hists = job.latencies.get(op);
    let bw_bytes = bw_bytes(job, op);
    let secs = job.runtime.as_secs_f64().max(1e-9);
    let samples = Samples::of(case, &job.per_interval[op_index(op)]);
    let mut clat = latency(hists.get(Stage::Io));
    clat.insert("percentile".into(), percentiles(hists.get(Stage::Io)));
    if case.detail == FioDetail::JsonPlus {
        clat.insert("bins".into(), bins(hists.get(Stage::Io)));
    }
    let mut value = fields(json!({
        "io_bytes": bytes,
        "io_kbytes": bytes / 1024,
        "bw_bytes": bw_bytes.round() as u64,
        "bw": (bw_bytes / 1024.0).round() as u64,
        "iops": ios as f64 / secs,
        "runtime": job.runtime.as_millis() as u64,
        "total_ios": ios,
        "short_ios": 0,
        "drop_ios": 0,
        "slat_ns": empty_latency(),
        "clat_ns": clat,
        "lat_ns": latency(hists.get(Stage::E2e)),
    }));
    value.extend(samples.fields(group_bw / 1024.0));
    Value::Object(value)
}

/// A direction the job did not go: what fio prints for it.
fn idle_direction() -> Value {
    let mut value = fields(json!({
        "io_bytes": 0, "io_kbytes": 0, "bw_bytes": 0, "bw": 0, "iops": 0.0, "runtime": 0,
        "total_ios": 0, "short_ios": 0, "drop_ios": 0,
        "slat_ns": empty_latency(), "clat_ns": empty_latency(), "lat_ns": empty_latency(),
    }));
    value.extend(Samples::default().fields(0.0));
    Value::Object(value)
}

/// The fields of a `json!({...})`.
fn fields(object: Value) -> Map<String, Value> {
    match object {
        Value::Object(fields) => fields,
        _ => unreachable!("json! of an object"),
    }
}

fn empty_latency() -> Value {
    json!({"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0})
}

fn latency(h: &Histogram<u64>) -> Map<String, Value> {
    fields(match h.is_empty() {
        true => empty_latency(),
        false => json!({
            "min": h.min(), "max": h.max(), "mean": h.mean(), "stddev": h.stdev(),
            "N": h.len(),
        }),
    })
}

/// fio's default percentiles, keyed as fio prints them ("99.990000").
fn percentiles(h: &Histogram<u64>) -> Value {
    let each = PERCENTILES
        .iter()
        .map(|&p| (format!("{p:.6}"), json!(h.value_at_quantile(p / 100.0))));
    Value::Object(each.collect())
}

/// fio's histogram layout (`FIO_IO_U_PLAT_BITS` 6: 64 buckets per power of two, values
/// below 128 exact, 29 groups).
const PLAT_BITS: u32 = 6;
const PLAT_VAL: u64 = 1 << PLAT_BITS;
const PLAT_NR: u64 = 29 * PLAT_VAL;

/// fio's `plat_val_to_idx`: the bucket of a latency.
fn fio_bucket(ns: u64) -> u64 {
    let msb = 63 - ns.max(1).leading_zeros();
    if msb <= PLAT_BITS {
        return ns;
    }
    let error_bits = msb - PLAT_BITS;
    let base = u64::from(error_bits + 1) << PLAT_BITS;
    let offset = (PLAT_VAL - 1) & (ns >> error_bits);
    (base + offset).min(PLAT_NR - 1)
}

/// fio's `plat_idx_to_val`: the value a bucket stands for (its middle), its key in `bins`.
fn fio_bucket_value(index: u64) -> u64 {
    if index < PLAT_VAL << 1 {
        return index;
    }
    let error_bits = (index >> PLAT_BITS) - 1;
    let base = 1u64 << (error_bits + u64::from(PLAT_BITS));
    let k = index % PLAT_VAL;
    base + ((k as f64 + 0.5) * (1u64 << error_bits) as f64) as u64
}

/// json+'s `bins`: the clat histogram in fio's buckets (value in ns: count), from
/// csumbench's finer HdrHistogram buckets, each counted where its middle falls.
fn bins(h: &Histogram<u64>) -> Value {
    let mut counts = std::collections::BTreeMap::<u64, u64>::new();
    for v in h.iter_recorded() {
        let ns = h.median_equivalent(v.value_iterated_to());
        *counts.entry(fio_bucket_value(fio_bucket(ns))).or_default() += v.count_at_value();
    }
    let each = counts.into_iter().map(|(ns, n)| (ns.to_string(), json!(n)));
    Value::Object(each.collect())
}

/// fio's `latency_ns`, `latency_us`, `latency_ms`: the share of the job's I/Os (both
/// directions) whose clat falls in each range; a key is the range's exclusive top.
fn latency_maps(job: &FioJob) -> [Map<String, Value>; 3] {
    const TOPS: [u64; 10] = [2, 4, 10, 20, 50, 100, 250, 500, 750, 1000];
    let mut counts = [[0u64; 12]; 3];
    for op in OPS {
        let h = job.latencies.get(op).get(Stage::Io);
        for v in h.iter_recorded() {
            let ns = h.median_equivalent(v.value_iterated_to());
            let (unit, value) = match ns {
                0..1_000 => (0, ns),
                1_000..1_000_000 => (1, ns / 1_000),
                _ => (2, ns / 1_000_000),
            };
            let slot = match (unit, value) {
                (2, 1000..2000) => 10,
                (2, 2000..) => 11,
                _ => TOPS.iter().position(|&top| value < top).unwrap_or(9),
            };
            counts[unit][slot] += v.count_at_value();
        }
    }
    let total: u64 = job.moved.iter().map(|m| m.1).sum();
    let share = |n: u64| match total {
        0 => 0.0,
        t => n as f64 / t as f64 * 100.0,
    };
    let keys = |unit: usize| -> Vec<String> {
        let mut keys: Vec<String> = TOPS.iter().map(u64::to_string).collect();
        if unit == 2 {
            keys.extend(["2000".into(), ">=2000".into()]);
        }
        keys
    };
    [0, 1, 2].map(|unit| {
        let each = keys(unit).into_iter().zip(counts[unit]);
        each.map(|(k, n)| (k, json!(share(n)))).collect()
    })
}

/// A direction's bandwidth (KiB/s) and IOPS over the case's intervals, fio's `bw_*` and
/// `iops_*`: the intervals from its first I/O to its last, less a closing sliver.
#[derive(Default)]
struct Samples {
    bw: Vec<f64>,
    iops: Vec<f64>,
}

impl Samples {
    fn of(case: &FioCase, per_interval: &[(u64, u64)]) -> Samples {
        let first = per_interval.iter().position(|m| m.1 > 0);
        let last = per_interval.iter().rposition(|m| m.1 > 0);
        let (Some(first), Some(last)) = (first, last) else {
            return Samples::default();
        };
        let lengths = case.interval_lengths.iter();
        let streaming = per_interval.iter().zip(lengths).take(last + 1).skip(first);
        let full = streaming.filter(|(_, &length)| length >= case.interval / 2);
        let (bw, iops) = full
            .map(|(&(bytes, ios), length)| {
                let secs = length.as_secs_f64();
                (bytes as f64 / 1024.0 / secs, ios as f64 / secs)
            })
            .unzip();
        Samples { bw, iops }
    }

    /// The `bw_*` and `iops_*` fields; `bw_agg` is the mean's share of the group's
    /// bandwidth in KiB/s.
    fn fields(&self, group_kib_s: f64) -> Map<String, Value> {
        let (bw, iops) = (Summary::of(&self.bw), Summary::of(&self.iops));
        let agg = match group_kib_s > 0.0 {
            true => (bw.mean / group_kib_s * 100.0).min(100.0),
            false => 0.0,
        };
        fields(json!({
            "bw_min": bw.min, "bw_max": bw.max, "bw_agg": agg, "bw_mean": bw.mean,
            "bw_dev": bw.dev, "bw_samples": bw.n,
            "iops_min": iops.min, "iops_max": iops.max, "iops_mean": iops.mean,
            "iops_stddev": iops.dev, "iops_samples": iops.n,
        }))
    }
}

/// min, max (whole, as fio prints them), mean and sample standard deviation.
struct Summary {
    min: u64,
    max: u64,
    mean: f64,
    dev: f64,
    n: usize,
}

impl Summary {
    fn of(xs: &[f64]) -> Summary {
        let n = xs.len();
        if n == 0 {
            return Summary {
                min: 0,
                max: 0,
                mean: 0.0,
                dev: 0.0,
                n,
            };
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        let squares: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
        Summary {
            min: xs.iter().cloned().fold(f64::INFINITY, f64::min).round() as u64,
            max: xs.iter().cloned().fold(0.0, f64::max).round() as u64,
            mean,
            dev: match n {
                1 => 0.0,
                n => (squares / (n - 1) as f64).sqrt(),
            },
            n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::StageCounts;

    #[test]
    fn output_formats_read_as_fio_reads_them() {
        let detail = |s: &str| parse_output_format(s).map(|f| f.fio_json);
        assert_eq!(detail("normal"), Ok(None));
        assert_eq!(detail("json"), Ok(Some(FioDetail::Json)));
        assert_eq!(detail("normal,json"), Ok(Some(FioDetail::Json)));
        assert_eq!(detail("json+,json"), Ok(Some(FioDetail::JsonPlus)));
        assert!(detail("terse").unwrap_err().contains("json or json+"));
        assert!(detail("json,xml").unwrap_err().contains("'xml'"));
    }

    #[test]
    fn buckets_are_fios() {
        // From fio 3.33's own output: a max of 12834 ns is reported as 12864.
        assert_eq!(fio_bucket_value(fio_bucket(12834)), 12864);
        assert_eq!(fio_bucket_value(fio_bucket(127)), 127, "exact below 128");
        for index in 0..PLAT_NR {
            assert_eq!(fio_bucket(fio_bucket_value(index)), index, "{index}");
        }
        assert_eq!(
            fio_bucket(u64::MAX),
            PLAT_NR - 1,
            "the last bucket takes the rest"
        );
    }

    const FIO_JOB_KEYS: [&str; 26] = [
        "jobname",
        "groupid",
        "error",
        "eta",
        "elapsed",
        "job options",
        "read",
        "write",
        "trim",
        "sync",
        "job_runtime",
        "usr_cpu",
        "sys_cpu",
        "ctx",
        "majf",
        "minf",
        "iodepth_level",
        "iodepth_submit",
        "iodepth_complete",
        "latency_ns",
        "latency_us",
        "latency_ms",
        "latency_depth",
        "latency_target",
        "latency_percentile",
        "latency_window",
    ];

    /// A read-only job of 100 reads: 90 of 500 ns, 10 of 2 ms, over two 100 ms intervals.
    fn render_reads(detail: FioDetail) -> Value {
        let mut counts = StageCounts::default();
        for i in 0..100 {
            let ns = if i < 90 { 500 } else { 2_000_000 };
            counts.record(Op::Read, Stage::Io, ns);
            counts.record(Op::Read, Stage::E2e, ns + 100);
        }
        let (mut all, mut latencies) = (Default::default(), DirectionHists::default());
        counts.drain_into(&mut all, &mut latencies);
        let spec = JobSpec::default();
        let per_interval = [vec![(40 * 4096, 40), (60 * 4096, 60)], vec![(0, 0), (0, 0)]];
        let case = FioCase {
            detail,
            ended: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            status: Status::Ok,
            strategy: "inline",
            topology: "separate".into(),
            usage: Usage::default(),
            elapsed: Duration::from_millis(200),
            interval: Duration::from_millis(100),
            interval_lengths: vec![Duration::from_millis(100); 2],
            groupid: 1,
            jobs: vec![FioJob {
                spec: &spec,
                runtime: Duration::from_millis(200),
                latencies: &latencies,
                moved: [(100 * 4096, 100), (0, 0)],
                per_interval: &per_interval,
                depth_levels: [0, 0, 75, 25, 0, 0, 0],
            }],
        };
        render(&case)
    }

    #[test]
    fn a_case_renders_in_fios_shape() {
        let fio = render_reads(FioDetail::Json);
        assert_eq!(fio["timestamp"], 1_700_000_000);
        assert_eq!(fio["timestamp_ms"], 1_700_000_000_123u64);
        let job = &fio["jobs"][0];
        let keys: Vec<&str> = job
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = FIO_JOB_KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let read = &job["read"];
        assert_eq!(
            (read["io_bytes"].as_u64(), read["total_ios"].as_u64()),
            (Some(409600), Some(100))
        );
        assert_eq!(read["bw_bytes"], 2_048_000, "409600 bytes in 200 ms");
        assert_eq!(read["bw"], 2000);
        assert_eq!(read["runtime"], 200);
        assert_eq!(
            (read["bw_min"].as_u64(), read["bw_max"].as_u64()),
            (Some(1600), Some(2400))
        );
        assert_eq!(read["iops_samples"], 2);
        assert_eq!(job["groupid"], 1, "the case's group of the job file");
        assert_eq!(read["clat_ns"]["N"], 100);
        assert_eq!(read["lat_ns"]["min"], 600);
        let percentile = read["clat_ns"]["percentile"].as_object().unwrap();
        assert_eq!(percentile.len(), PERCENTILES.len());
        assert_eq!(percentile["50.000000"], 500);
        assert!(percentile.contains_key("99.990000") && percentile.contains_key("1.000000"));
        assert!(read["clat_ns"].get("bins").is_none(), "bins are json+'s");
        assert_eq!(job["write"]["total_ios"], 0);
        assert!(
            job["write"]["clat_ns"].get("percentile").is_none(),
            "none without I/O"
        );
        assert_eq!(job["latency_ns"]["750"], 90.0, "500 ns falls in [500, 750)");
        assert_eq!(job["latency_ms"]["4"], 10.0, "2 ms falls in [2, 4)");
        assert_eq!(job["job options"]["rw"], "read");
        assert_eq!(
            (
                job["iodepth_level"]["4"].as_f64(),
                job["iodepth_level"]["8"].as_f64()
            ),
            (Some(75.0), Some(25.0))
        );
    }

    #[test]
    fn json_plus_bins_count_every_io() {
        let fio = render_reads(FioDetail::JsonPlus);
        let bins = fio["jobs"][0]["read"]["clat_ns"]["bins"]
            .as_object()
            .unwrap();
        assert_eq!(bins.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 100);
        // fio's bucket [500, 504) is named by its middle.
        assert_eq!(bins["502"], 90, "{bins:?}");
    }
}
