//! `harness crossover` through the binary, small, on the null engine: the folder it leaves
//! (one compare per point, `crossover.csv` with the issue's columns, `crossings.csv`, the
//! manifest), and the printed answer checked against the CSV by working it out again here.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::{cases, harness, manifest};

/// A CSV file as rows of (column → cell); RFC 4180 quotes (specs and sentences have commas).
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut records: Vec<Vec<String>> = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (_, c) => field.push(c),
        }
    }
    let header = records.remove(0);
    records
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{r:?}");
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

fn number(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|e| panic!("'{cell}' is not a number: {e}"))
}

/// "2.41 µs" or "163 ns" at the start of `text`, in ns.
fn printed_cost(text: &str) -> f64 {
    let mut words = text.split_whitespace();
    let value = number(words.next().unwrap());
    match words.next().unwrap() {
        "ns" => value,
        "µs" => value * 1000.0,
        unit => panic!("unit {unit} in '{text}'"),
    }
}

/// A printed cost agrees with the CSV's to the digits it prints (3 significant).
fn agrees(printed: f64, csv: f64) {
    assert!(
        (printed - csv).abs() <= 0.006 * csv + 0.5,
        "printed {printed} ns, the CSV says {csv} ns"
    );
}

const ISSUE_COLUMNS: [&str; 11] = [
    "cost_ns_per_sector",
    "algorithm",
    "numjobs",
    "strategy",
    "mib_s_ratio",
    "mib_s_ci95_lo",
    "mib_s_ci95_hi",
    "cpu_s_per_gib_ratio",
    "cpu_s_per_gib_ci95_lo",
    "cpu_s_per_gib_ci95_hi",
    "verdict",
];

/// What the answer must say for one series, worked out from its CSV rows alone.
fn check_main_clause(sentence: &str, rows: &[&BTreeMap<String, String>]) {
    let sure: Vec<(f64, &str)> = rows
        .iter()
        .filter(|r| ["faster", "slower"].contains(&r["verdict"].as_str()))
        .map(|r| (number(&r["cost_ns_per_sector"]), r["verdict"].as_str()))
        .collect();
    let turns: Vec<(f64, f64)> = sure
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    if let Some(&(below, above)) = turns.first() {
        let (_, rest) = sentence.split_once(" above ~").expect(sentence);
        let at = printed_cost(rest);
        assert!(
            below <= at && at <= above,
            "crossing {at} ns outside its sure points {below}..{above}: {sentence}"
        );
    } else if sure.is_empty() {
        assert!(
            sentence.contains("no difference this run can show"),
            "{sentence}"
        );
    } else if sure.len() == rows.len() {
        assert!(sentence.contains("wins everywhere from"), "{sentence}");
    } else {
        let wins = format!("which wins at {} of {} points", sure.len(), rows.len());
        assert!(
            sentence.contains("no crossing from") && sentence.contains(&wins),
            "{wins}: {sentence}"
        );
    }
}

/// Every "ALGO costs N unit (who wins)" clause against the algorithm's CSV row.
fn check_algorithms(sentence: &str, rows: &[&BTreeMap<String, String>], strategy: &str) {
    let real: Vec<&&BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| r["requested_ns"].is_empty())
        .collect();
    assert!(!real.is_empty());
    for row in real {
        let clause = format!("{} costs ", row["algorithm"]);
        let (_, rest) = sentence.split_once(&clause).expect(&clause);
        agrees(printed_cost(rest), number(&row["cost_ns_per_sector"]));
        let words = match row["verdict"].as_str() {
            "faster" => format!("({strategy} wins)"),
            "slower" => "(inline wins)".to_string(),
            "same" => "(no difference)".to_string(),
            "unknown" => "(too few pairs to say)".to_string(),
            other => panic!("verdict {other}"),
        };
        let unit_end = rest.find(')').unwrap() + 1;
        assert!(rest[..unit_end].ends_with(&words), "{words}: {sentence}");
    }
}

/// Sweeps inline against kthread at numjobs 1 and 2, two real and two synthetic costs;
/// returns the folder and what the command printed.
fn small_sweep(tmp: &Path) -> (std::path::PathBuf, String) {
    let out = tmp.join("cx");
    let run = harness()
        .args([
            "crossover",
            "--quick",
            "--numjobs",
            "1,2",
            "--runtime",
            "200ms",
        ])
        // Tests run the unoptimized binary: sectors cost µs, not ns, so the synthetic
        // costs start above that floor, and 64 KiB bios keep each well inside the runtime.
        .args(["--bs", "64k", "--algorithms", "crc32c,sha256"])
        .args([
            "--cost-min",
            "20us",
            "--cost-max",
            "100us",
            "--cost-points",
            "2",
        ])
        .args(["--drop-caches", "false", "--out"])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    (out, stdout)
}

/// Every point is a whole compare: 3 rounds of inline and kthread, A B A B.
fn check_points(out: &Path, points: &[Value]) {
    assert_eq!(points.len(), 2 * 4, "4 costs x numjobs 1, 2: {points:?}");
    for p in points {
        let folder = out.join(p["folder"].as_str().unwrap());
        let ran = cases(&folder);
        let strategies: Vec<&str> = ran.iter().map(|c| c["spec"].as_str().unwrap()).collect();
        let want = ["inline", "kthread"].repeat(3);
        assert_eq!(strategies, want, "{}", folder.display());
        assert!(ran.iter().all(|c| c["status"] == "ok"));
        assert!(folder.join("summary.csv").is_file());
    }
}

/// The issue's columns, each ratio inside its interval, synthetic costs near their ask.
fn check_rows(rows: &[BTreeMap<String, String>]) {
    let header: Vec<&String> = rows[0].keys().collect();
    for column in ISSUE_COLUMNS {
        assert!(header.iter().any(|h| *h == column), "no column {column}");
    }
    for r in rows {
        let ratio = number(&r["mib_s_ratio"]);
        let (lo, hi) = (number(&r["mib_s_ci95_lo"]), number(&r["mib_s_ci95_hi"]));
        assert!(lo <= ratio && ratio <= hi, "{r:?}");
        assert!(number(&r["cpu_s_per_gib_ci95_lo"]) <= number(&r["cpu_s_per_gib_ratio"]));
        assert_eq!(r["pairs"], "3");
        assert!(number(&r["cost_ns_per_sector"]) > 0.0);
        // Loosely: the machine is shared.
        if let Ok(asked) = r["requested_ns"].parse::<f64>() {
            let got = number(&r["cost_ns_per_sector"]);
            assert!((0.5..2.0).contains(&(got / asked)), "{r:?}");
        }
    }
}

/// crossings.csv carries each series' sentence, and each crossing's cost is the one said.
fn check_crossings(out: &Path, answers: &[&str]) {
    let crossings = read_csv(&out.join("crossings.csv"));
    assert!(crossings.iter().all(|c| c["strategy"] == "kthread"));
    for c in &crossings {
        let answer = answers[if c["numjobs"] == "1" { 0 } else { 1 }];
        assert_eq!(c["answer"], answer);
        if ["rises", "falls"].contains(&c["kind"].as_str()) {
            let (_, rest) = answer.split_once(" above ~").unwrap();
            agrees(printed_cost(rest), number(&c["cost_ns_per_sector"]));
            assert!(
                number(&c["ci95_lo_ns"]) <= number(&c["ci95_hi_ns"]),
                "{c:?}"
            );
        }
    }
}

#[test]
fn a_small_sweep_leaves_its_map_and_says_what_the_csv_says() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, stdout) = small_sweep(tmp.path());
    let m = manifest(&out);
    let kind = (m["kind"].as_str(), m["status"].as_str());
    assert_eq!(kind, (Some("crossover"), Some("complete")));
    assert_eq!(
        m["config"]["strategies"],
        serde_json::json!(["inline", "kthread"])
    );
    let points = m["points"].as_array().unwrap();
    check_points(&out, points);
    let rows = read_csv(&out.join("crossover.csv"));
    assert_eq!(rows.len(), points.len());
    check_rows(&rows);

    let answers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("on this machine, with "))
        .collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert_eq!(m["answer"], serde_json::json!(answers));
    for (numjobs, sentence) in [(1, answers[0]), (2, answers[1])] {
        let submitters = ["1 submitter,", "2 submitters,"][numjobs - 1];
        assert!(sentence.contains(submitters), "{sentence}");
        let series: Vec<&BTreeMap<String, String>> = rows
            .iter()
            .filter(|r| r["numjobs"] == numjobs.to_string())
            .collect();
        assert_eq!(series.len(), 4);
        check_main_clause(sentence, &series);
        check_algorithms(sentence, &series, "kthread");
    }
    check_crossings(&out, &answers);
}

fn refused(args: &[&str], why: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let run = harness()
        .arg("crossover")
        .args(args)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(stderr.contains(why), "{args:?}: {stderr}");
    assert!(!out.exists(), "{args:?} made {}", out.display());
}

#[test]
fn bad_sweeps_are_refused_before_anything_runs() {
    refused(
        &["--csum", "sha256"],
        "--csum: crossover sets each point's checksum",
    );
    refused(&["--verify", "crc32c"], "--verify: crossover sets");
    refused(&["--numjobs", "0"], "--numjobs 0: from 1 to");
    refused(&["--numjobs", "two"], "--numjobs two");
    refused(&["--strategy", "inline"], "give one that is not inline");
    refused(&["--strategy", "kthread:max_workers=0"], "max_workers");
    refused(
        &["--cost-min", "20us", "--cost-max", "1us"],
        "--cost-min cost:20us is above",
    );
    refused(&["--cost-min", "5"], "give a unit");
    refused(&["--algorithms", "none"], "csum none costs nothing");
    refused(&["--algorithms", "md5"], "unknown checksum 'md5'");
}
