//! Fuzzing the fio job-file reader, `JobSpec::set` and the number parsers with arbitrary
//! and fio-shaped text. Every input must come back, quickly, as `Ok` or as an error that
//! says what is wrong: an error about a line starts `line N:` with the right N (the lines
//! before it parse, the lines up to it fail the same way) and names the option, the
//! variable or the line at fault; an error about an option names the option.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use workloads::job::{options, JobSpec};
use workloads::jobfile::{parse_with, strip_comment, JobGroup};
use workloads::units::{format_size, parse_duration, parse_size, parse_size_in, KbBase};

/// Far more than any of these inputs needs, even in a debug build on a busy machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `f(input)` on its own thread and fails, naming the input, if it has not returned
/// by [`DEADLINE`]: a hang is reported instead of stalling `cargo test`. A panic in `f`
/// is re-raised here, so proptest shrinks it like any other failure.
fn within<T: Send + 'static>(input: &str, f: fn(&str) -> T) -> T {
    let (tx, rx) = mpsc::channel();
    let owned = input.to_string();
    let worker = std::thread::spawn(move || {
        let out = f(&owned);
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no answer after {DEADLINE:?} for {input:?}")
        }
    }
}

/// The environment every fuzzed file sees: a few set variables, one set but empty.
fn env(var: &str) -> Option<String> {
    match var {
        "BS" => Some("64k".into()),
        "DEV" => Some("/dev/null".into()),
        "EMPTY" => Some(String::new()),
        "N" => Some("4".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Vec<JobGroup>, String> {
    parse_with(text, env)
        .map(|file| file.groups)
        .map_err(|problems| problems.to_string())
}

/// Every key `JobSpec::set` accepts: every name and alias of the options that set a job,
/// the engines' included.
fn set_keys() -> Vec<&'static str> {
    options::every()
        .filter(|o| o.sets_job())
        .flat_map(|o| o.names())
        .collect()
}

/// Every key the reader knows: every option's names, and `include`.
fn known_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = options::every().flat_map(|o| o.names()).collect();
    keys.push("include");
    keys
}

/// Values at the edges of every option's syntax: numbers, sizes, times, flags, lists.
const EDGE_VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "-1",
    "+1",
    "01",
    "100",
    "101",
    "4096",
    "4k",
    "4K",
    "4KiB",
    "1.5k",
    "0.5",
    ".",
    ".5k",
    "5.",
    "1..2",
    "4 k",
    "1m",
    "1g",
    "16t",
    "1p",
    "99999999999p",
    "18446744073709551615",
    "18446744073709551616",
    "9007199254740993",
    "4294967295",
    "4294967296",
    "1e99",
    "1e3",
    "NaN",
    "inf",
    "0x10",
    "0xffffffffffffffff",
    "0x10000000000000000",
    "0x",
    "30s",
    "30 s",
    "500ms",
    "10us",
    "2m",
    "1h",
    "99999999999999999h",
    "1.5s",
    "true",
    "yes",
    "off",
    "maybe",
    "read",
    "randrw",
    "rw",
    "io_uring",
    "libaio",
    "sync",
    "crc32c-intel",
    "sha256",
    "none",
    "0-3,5",
    "3-1",
    "0-1023",
    "1024",
    "0--1",
    "1,,2",
    "1m,2m",
    ",500k",
    "1m,",
    "1,2,3",
    "10%",
    "${BS}",
    "${DEV}/x",
    "${EMPTY}",
    "${N}k",
    "${NOPE}",
    "${",
    "${BS",
    "$${BS}}",
    "}{$",
    "a#b",
    "a ;b",
    "é",
    "４",
    "١",
    "\u{202e}x",
    "\u{0}",
];

/// A value: one of the edges, a small or huge number with a suffix, or arbitrary text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(EDGE_VALUES).prop_map(str::to_string),
        2 => (any::<u64>(), proptest::sample::select(&["", "k", "m", "g", "t", "p", "s", "ms", "h", "%", ".5", "kib"][..]))
            .prop_map(|(n, s)| format!("{n}{s}")),
        1 => (0u64..100_000).prop_map(|n| n.to_string()),
        2 => "[0-9a-z.,$#;{}%+ -]{0,12}",
        1 => "\\PC{0,10}",
    ]
}

/// A key: a real one (most of the time), a near miss, or anything.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(known_keys()).prop_map(str::to_string),
        1 => proptest::sample::select(vec!["BS", "Bs", "bs ", " bs", "include x", "verify_pattern", "loops", "name "])
            .prop_map(str::to_string),
        1 => "[a-z_ ]{0,10}",
        1 => "\\PC{0,6}",
    ]
}

/// Options that read, so that many fuzzed files get as far as `validate`.
const GOOD_OPTIONS: &[&str] = &[
    "rw=randwrite",
    "readwrite=randrw",
    "bs=64k",
    "blocksize=8k",
    "bs=512",
    "size=1g",
    "size=4k",
    "size=0",
    "numjobs=2",
    "iodepth=8",
    "direct=1",
    "buffered",
    "fsync=4",
    "end_fsync=1",
    "runtime=10",
    "timeout=2m",
    "time_based",
    "filename=/tmp/x",
    "filename=${DEV}",
    "directory=/tmp",
    "ioengine=null",
    "ioengine=io_uring",
    "ioengine=libaio",
    "ioengine=sync",
    "hipri=1",
    "libaio_vectored=1",
    "csum=sha256",
    "rwmixread=70",
    "rwmixwrite=20",
    "offset=1m",
    "offset=18446744073709547520",
    "ramp_time=2",
    "rate=1m,2m",
    "rate_iops=100",
    "cpus_allowed=0-1",
    "randrepeat=0",
    "randseed=0x10",
    "invalidate=0",
    "verify=crc32c-intel",
    "verify_async=4",
    "stonewall",
    "wait_for_previous=1",
    "group_reporting",
    "description=a job ; with a comment",
    "bs=${BS}",
];

/// One option line: a real option that reads, or a key with a fuzzed value.
fn option_line() -> impl Strategy<Value = String> {
    let fuzzed = (
        key(),
        proptest::sample::select(&["=", " = ", "\t=\t", "==", ""][..]),
        value(),
    )
        .prop_map(|(k, sep, v)| {
            if sep.is_empty() {
                k
            } else {
                format!("{k}{sep}{v}")
            }
        });
    let comment = proptest::sample::select(vec!["", "", " ; note", " # note", "\t#", ";"]);
    let body = prop_oneof![
        3 => proptest::sample::select(GOOD_OPTIONS).prop_map(str::to_string),
        1 => fuzzed,
    ];
    (body, comment).prop_map(|(l, c)| format!("{l}{c}"))
}

/// A section header, well-formed or nearly.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9_-]{1,8}".prop_map(|n| format!("[{n}]")),
        3 => Just("[global]".to_string()),
        1 => proptest::sample::select(vec![
            "[", "[]", "[ ]", "[job", "job]", "[[x]]", "[a]b", "[ global ]", "[${BS}]",
            "[a] ; c", "[global];",
        ])
        .prop_map(str::to_string),
    ]
}

/// Any line at all: an option, a header, a blank or comment, or noise.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => option_line(),
        1 => header(),
        1 => proptest::sample::select(vec!["", "   ", "; comment", "# comment", "\t"])
            .prop_map(str::to_string),
        1 => "\\PC{0,16}",
    ]
}

/// A fio-shaped file: mostly sections of options, sometimes any lines, joined by `\n` or
/// `\r\n`.
fn fio_file() -> impl Strategy<Value = String> {
    let section = (header(), proptest::collection::vec(line(), 0..5))
        .prop_map(|(h, lines)| std::iter::once(h).chain(lines).collect::<Vec<_>>());
    let lines = prop_oneof![
        4 => proptest::collection::vec(section, 1..4)
            .prop_map(|s| s.into_iter().flatten().collect::<Vec<_>>()),
        1 => proptest::collection::vec(line(), 0..12),
    ];
    (lines, any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, trailing)| {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(nl);
        if trailing {
            text.push_str(nl);
        }
        text
    })
}

/// Any text, and text over the characters fio files are made of.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof!["(?s).{0,200}", "[\\[\\]=;#${} \t\r\na-z0-9_.,%:-]{0,300}",]
}

/// The first `n` lines of `text`, exactly as written (same line ends).
fn first_lines(text: &str, n: usize) -> &str {
    let end: usize = text.split_inclusive('\n').take(n).map(str::len).sum();
    &text[..end]
}

/// What a line-`n` error must name, judged from the line itself.
fn check_line_error(line: &str, n: usize, rest: &str) {
    let l = strip_comment(line).trim();
    assert!(!l.is_empty(), "line {n} is blank or a comment, yet: {rest}");
    if l.starts_with('[') {
        assert!(
            rest.contains("section header") && rest.contains(l),
            "a bad header names itself: {rest}"
        );
        return;
    }
    let key = l.split_once('=').map_or(l, |(k, _)| k.trim());
    if key == "include" || key.starts_with("include ") {
        assert!(rest.contains("include"), "{rest}");
    } else if key.is_empty() {
        assert!(
            rest.contains("no option name") && rest.contains(l),
            "{rest}"
        );
    } else {
        assert!(
            rest.contains(key),
            "an option's error names the option '{key}': {rest}"
        );
    }
}

/// The oracle for one file: whatever it returns must make sense for that file.
fn check_file(text: &str) {
    match within(text, parse) {
        Ok(groups) => {
            assert!(!groups.is_empty());
            for group in &groups {
                assert!(!group.jobs.is_empty(), "an empty group: {text:?}");
                for job in &group.jobs {
                    assert!(!job.name.is_empty());
                    assert!(job.rwmixread <= 100, "{job:?}");
                    check_validate(job);
                }
            }
        }
        Err(e) => {
            assert!(!e.trim().is_empty(), "an empty error for {text:?}");
            if e.starts_with("no jobs") {
                check_no_jobs(text, &e);
            } else {
                check_problems(text, &e);
            }
        }
    }
}

/// Every line of a file's error is a problem on one line, in line order: the right line
/// (the first problem's lines before it read, the lines up to it fail the same way), and
/// naming the option, the header or the line at fault.
fn check_problems(text: &str, e: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut last = 0;
    for (i, problem) in e.lines().enumerate() {
        let rest = problem
            .strip_prefix("line ")
            .unwrap_or_else(|| panic!("'line N: ...' expected: {e}"));
        let (n, rest) = rest
            .split_once(": ")
            .unwrap_or_else(|| panic!("'line N: ...' expected: {e}"));
        let n: usize = n.parse().unwrap_or_else(|_| panic!("a line number: {e}"));
        assert!(
            (1..=lines.len()).contains(&n),
            "line {n} of {}: {e}",
            lines.len()
        );
        assert!(n >= last, "problems in line order: {e}");
        last = n;
        assert!(!rest.trim().is_empty(), "{e}");
        // A section's kb_base applies before its other lines, so a later line may change
        // how an earlier one reads, and a wait_for names a job of the whole file: only
        // without them is each line's problem its own.
        if i == 0 && !text.contains("kb_base") && !rest.starts_with("wait_for=") {
            if let Err(before) = parse(first_lines(text, n - 1)) {
                assert!(
                    before.starts_with("no jobs"),
                    "lines 1..{n} already fail ({before}), yet the first problem is {problem}"
                );
            }
            assert_eq!(parse(first_lines(text, n)).unwrap_err(), problem);
        }
        check_line_error(lines[n - 1], n, rest);
    }
}

/// A file reported as having no jobs has no job section.
fn check_no_jobs(text: &str, e: &str) {
    assert_eq!(e.lines().count(), 1, "no jobs, and nothing else: {e}");
    let headers = text
        .lines()
        .filter_map(|l| strip_comment(l).trim().strip_prefix('['))
        .filter_map(|l| l.strip_suffix(']'))
        .any(|name| !name.trim().is_empty() && name.trim() != "global");
    assert!(!headers, "a file with a job section: {e}");
}

/// `validate` answers without panicking, and its errors name an option.
fn check_validate(job: &JobSpec) {
    if let Err(e) = job.validate() {
        assert!(
            options::every().any(|o| e.contains(o.name)),
            "a validation error names an option: {e} ({job:?})"
        );
    }
}

/// One `JobSpec::set`: errors name the option (or, for unknown ones, say so).
fn check_set(key: &str, value: &str) {
    let mut job = JobSpec::default();
    match job.set(key, value) {
        Ok(()) => {
            assert!(job.rwmixread <= 100);
            assert!(!job.name.is_empty() && !job.csum.is_empty());
            check_validate(&job);
        }
        Err(e) => {
            assert!(!e.trim().is_empty());
            let k = key.trim();
            assert!(e.contains(k), "'{k}={value}': the error names '{k}': {e}");
            if !set_keys().contains(&k) {
                assert_eq!(e, options::unsupported(k));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn jobfile_any_text_is_read_or_rejected_by_line(text in any_text()) {
        check_file(&text);
    }

    #[test]
    fn jobfile_fio_shaped_text_is_read_or_rejected_by_line(text in fio_file()) {
        check_file(&text);
    }

    #[test]
    fn jobspec_set_names_the_option_in_every_error(k in key(), v in value()) {
        check_set(&k, &v);
    }

    /// Every option with every edge value, in a job file: the error is on the option's line.
    #[test]
    fn jobfile_bad_value_is_reported_on_its_line(
        before in 0usize..4,
        k in proptest::sample::select(known_keys()),
        v in value(),
    ) {
        let mut text = String::from("[job]\n");
        for _ in 0..before {
            text.push_str("bs=4k\n");
        }
        text.push_str(&format!("{k}={v}\n[other]\n"));
        let n = before + 2;
        match parse(&text) {
            Ok(_) => {}
            Err(e) => {
                let prefix = format!("line {n}: ");
                prop_assert!(e.starts_with(&prefix), "{e}");
                check_file(&text);
            }
        }
    }

    /// Integers are read exactly, whatever their size: no trip through a float.
    #[test]
    fn sizes_are_exact(n in any::<u64>(), shift in 0u32..6) {
        let suffix = ["", "k", "m", "g", "t", "p"][shift as usize];
        let text = format!("{n}{suffix}");
        match n.checked_mul(1u64 << (10 * shift)) {
            Some(bytes) => prop_assert_eq!(parse_size(&text), Ok(bytes), "{}", text),
            None => {
                let e = parse_size(&text).unwrap_err();
                prop_assert!(e.contains(&text) && e.contains("too large"), "{}", e);
            }
        }
    }

    #[test]
    fn sizes_round_trip_through_format_size(n in any::<u64>()) {
        // fio prints the standard prefixes (KiB: 1024), which read back as such with
        // kb_base=1000.
        prop_assert_eq!(parse_size_in(&format_size(n), KbBase::Si), Ok(n));
        prop_assert_eq!(parse_size_in(&format_size(n & !4095), KbBase::Si), Ok(n & !4095));
    }

    /// Errors from the number parsers quote the text they were given.
    #[test]
    fn number_errors_quote_the_text(v in value()) {
        if let Err(e) = parse_size(&v) {
            prop_assert!(e.contains(&format!("'{v}'")), "{}", e);
        }
        if let Err(e) = parse_duration(&v) {
            prop_assert!(e.contains(&format!("'{v}'")), "{}", e);
        }
    }

    #[test]
    fn durations_are_exact(n in any::<u64>()) {
        prop_assert_eq!(parse_duration(&format!("{n}us")), Ok(Duration::from_micros(n)));
        match n.checked_mul(1_000_000) {
            Some(us) => prop_assert_eq!(parse_duration(&n.to_string()), Ok(Duration::from_micros(us))),
            None => prop_assert!(parse_duration(&n.to_string()).unwrap_err().contains("too long")),
        }
    }
}

// Edge inputs, spelled out.

#[test]
fn every_option_with_every_edge_value() {
    for k in known_keys() {
        for v in EDGE_VALUES {
            check_set(k, v);
            check_file(&format!("[a]\n{k}={v}\n"));
            check_file(&format!("[global]\n{k} = {v} ; c\n[a]\n"));
        }
    }
}

#[test]
fn large_integers_keep_every_digit() {
    assert_eq!(parse_size("9007199254740993"), Ok(9_007_199_254_740_993));
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(
        parse_size("16383.99999999999999911182158029987476766109466552734375p"),
        Ok(u64::MAX)
    );
    assert!(parse_size("16384p").unwrap_err().contains("too large"));
    assert!(parse_size("16383.9999999999999999p")
        .unwrap_err()
        .contains("whole number"));
    assert!(parse_size("18446744073709551616")
        .unwrap_err()
        .contains("too large"));
    assert!(parse_size("99999999999p")
        .unwrap_err()
        .contains("too large"));
    assert!(parse_size("18014398509481984k")
        .unwrap_err()
        .contains("too large"));
    assert_eq!(parse_size("18014398509481983k"), Ok(u64::MAX - 1023));
    let mut j = JobSpec::default();
    j.set("size", "9007199254740993").unwrap();
    assert_eq!(j.size, 9_007_199_254_740_993);
}

#[test]
fn fractions_are_exact_or_rejected() {
    assert_eq!(parse_size("1.5k"), Ok(1536));
    assert_eq!(parse_size(".5k"), Ok(512));
    assert_eq!(parse_size("5."), Ok(5));
    assert_eq!(parse_size("0.25m"), Ok(1 << 18));
    assert_eq!(
        parse_size("1.000000000000000000000000000000000000000000k"),
        Ok(1024)
    );
    assert_eq!(parse_size("0.0009765625m"), Ok(1024));
    // 2^-20 MiB: exactly one byte, twenty decimal places.
    assert_eq!(parse_size("0.00000095367431640625m"), Ok(1));
    for bad in [
        "1.3",
        "0.5",
        "0.1k",
        "1.0000000000000000000000000000000000000000001k",
    ] {
        let e = parse_size(bad).unwrap_err();
        assert!(e.contains("whole number") && e.contains(bad), "{bad}: {e}");
    }
    for bad in [".", "..", "1..2", "1.2.3", ".k"] {
        let e = parse_size(bad).unwrap_err();
        assert!(e.contains("not a size") && e.contains(bad), "{bad}: {e}");
    }
    assert!(parse_size("1e99").unwrap_err().contains("suffix 'e99'"));
}

#[test]
fn line_numbers_count_crlf_and_blank_lines() {
    let e = parse("[job]\r\n\r\n; c\r\nbs=4q\r\n").unwrap_err();
    assert!(e.starts_with("line 4: bs=4q"), "{e}");
    let e = parse("\n\n\n[job]\nnumjobs=4294967296\n").unwrap_err();
    assert!(e.starts_with("line 5: numjobs=4294967296"), "{e}");
    let e = parse("[job]\nrate_iops=18446744073709551616\n").unwrap_err();
    assert!(e.starts_with("line 2: rate_iops="), "{e}");
    let e = parse("[job]\nfilename=${NOPE}\n").unwrap_err();
    assert_eq!(
        e, "line 2: filename: needs a value",
        "unset is empty, as in fio"
    );
    let e = parse("[job]\n=\n").unwrap_err();
    assert!(
        e.starts_with("line 2:") && e.contains("no option name"),
        "{e}"
    );
}

#[test]
fn unicode_and_control_characters_are_rejected_by_name() {
    let e = parse("[job]\nbs=４k\n").unwrap_err();
    assert!(e.starts_with("line 2: bs=４k"), "{e}");
    let e = parse("[job]\nnumjobs=١\n").unwrap_err();
    assert!(e.starts_with("line 2: numjobs=١"), "{e}");
    let e = parse("[job]\nb\u{0}s=1\n").unwrap_err();
    assert!(e.starts_with("line 2: b\u{0}s: not a fio option"), "{e}");
    // A section name may be anything printable; it is only a name.
    let groups = parse("[é ${BS}]\n").unwrap();
    assert_eq!(groups[0].jobs[0].name, "é ${BS}");
}

#[test]
fn counts_beyond_their_caps_say_the_limit() {
    for (k, max, min) in [
        ("numjobs", "4096", 1),
        ("iodepth", "65536", 1),
        ("fsync", "4294967295", 0),
        ("verify_async", "4294967295", 0),
    ] {
        let e = JobSpec::default().set(k, "4294967296").unwrap_err();
        assert_eq!(e, format!("{k}=4294967296: at most {max}"));
        let e = JobSpec::default().set(k, "-1").unwrap_err();
        assert_eq!(
            e,
            format!("{k}=-1: cannot be negative; must be at least {min}")
        );
    }
}
