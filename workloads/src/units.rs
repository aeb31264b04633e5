//! fio's number syntax: sizes with k/m/g/t/p suffixes, read by `kb_base` as fio reads them;
//! times with d/h/m/s/ms/us; arithmetic in parentheses ([`expr`]); and the keywords
//! `$ncpus`, `$pagesize` and `$mb_memory`.

use std::borrow::Cow;

use serde::Serialize;

pub mod expr;

use expr::{evaluate, Grammar};

/// fio's `kb_base`: how the unit prefixes of a size read (fio's parse.c, `__get_mult_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KbBase {
    /// `kb_base=1024`, fio's default and its "compatibility mode": `k`, `m`, `KB`, `MB`...
    /// are powers of 1024, and `KiB`, `MiB`... powers of 1000 (opposite to the standards).
    #[default]
    Compat,
    /// `kb_base=1000`: as the standards have it, `KiB`... powers of 1024, `k`, `KB`... of 1000.
    Si,
}

impl KbBase {
    /// fio's two settings.
    pub fn names() -> Vec<&'static str> {
        vec!["1024", "1000"]
    }

    pub fn parse(key: &str, value: &str) -> Result<KbBase, String> {
        match value.trim() {
            "1024" => Ok(KbBase::Compat),
            "1000" => Ok(KbBase::Si),
            v => Err(format!("{key}={v}: expected 1024 or 1000")),
        }
    }

    /// What a prefix multiplies by: `iec` for a `KiB`-style one.
    fn base(self, iec: bool) -> u64 {
        match (self, iec) {
            (KbBase::Compat, false) | (KbBase::Si, true) => 1024,
            _ => 1000,
        }
    }
}

impl Serialize for KbBase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(match self {
            KbBase::Compat => 1024,
            KbBase::Si => 1000,
        })
    }
}

/// Parses a size as fio does with its default `kb_base=1024`: `4k` is 4096, `1MiB` 1000000.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size_in(text, KbBase::Compat)
}

/// Parses a size such as `4k`, `1m`, `1MiB`, `256` (bytes), `0x1000`, `(2*4k)`, reading its
/// prefix by `kb`. fio would read `1.5k` as 1 byte and an unknown suffix as none; here a
/// fraction is exact (when it is whole bytes) and an unknown suffix an error.
pub fn parse_size_in(text: &str, kb: KbBase) -> Result<u64, String> {
    let t = text.trim();
    if negative(t) {
        return Err(format!("'{text}': a size cannot be negative"));
    }
    if t.starts_with('(') {
        return arithmetic_size(text);
    }
    let not_a_size = || format!("'{text}' is not a size (expected e.g. 4k, 1m, 2g)");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| not_a_size());
    }
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(not_a_size());
    }
    let lower = suffix.trim().to_ascii_lowercase();
    let (power, iec) = prefix_power(&lower).ok_or_else(|| {
        format!("'{text}': unknown size suffix '{lower}'; use k, m, g, t or p (or KiB, MiB...)")
    })?;
    // In integers, not through an f64: every digit counts, up to u64::MAX.
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
        return Err(not_a_size());
    }
    let too_large = || format!("'{text}' is too large (sizes stop below 16EiB, 2^64 bytes)");
    let base = kb.base(iec);
    let unit = base.checked_pow(power).ok_or_else(too_large)?;
    let whole: u64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| too_large())?,
    };
    // base^power = 2^twos x 5^fives.
    let (twos, fives) = match base {
        1024 => (10 * power, 0),
        _ => (3 * power, 3 * power),
    };
    let frac = fraction_bytes(frac, twos, fives)
        .ok_or_else(|| format!("'{text}' is not a whole number of bytes"))?;
    whole
        .checked_mul(unit)
        .and_then(|b| b.checked_add(frac))
        .ok_or_else(too_large)
}

/// The power a size suffix (lower case) raises its prefix to, and whether the prefix is a
/// `KiB`-style one. fio reads `ki` as `k` (its parser, though not its HOWTO).
fn prefix_power(suffix: &str) -> Option<(u32, bool)> {
    let mut chars = suffix.chars();
    let power = match chars.next() {
        None | Some('b') if suffix.len() <= 1 => return Some((0, false)),
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        _ => return None,
    };
    match chars.as_str() {
        "" | "b" | "i" => Some((power, false)),
        "ib" => Some((power, true)),
        _ => None,
    }
}

/// Whether `text` gives its size with a `KiB`-style prefix that `kb` reads as a power of
/// 1000: fio's compatibility mode, which breaks the 4 KiB sector rule for most values.
pub fn iec_read_as_decimal(text: &str, kb: KbBase) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    kb == KbBase::Compat && !lower.starts_with('(') && lower.ends_with("ib") && lower.len() > 3
}

/// A whole number in parentheses, by fio's evaluator (fio reads counts as sizes).
pub fn evaluate_int(text: &str) -> Result<i64, String> {
    evaluate(text.trim(), Grammar::Fio { time: false })
        .map(|v| v.int)
        .map_err(|e| format!("'{text}': {e}"))
}

/// A size in parentheses, by fio's evaluator.
fn arithmetic_size(text: &str) -> Result<u64, String> {
    let v = evaluate(text.trim(), Grammar::Fio { time: false })
        .map_err(|e| format!("'{text}': {e}"))?;
    u64::try_from(v.int).map_err(|_| format!("'{text}': a size cannot be negative"))
}

/// `0.DIGITS` x 2^`twos` x 5^`fives` (`fives` <= `twos` <= 50), when that is a whole number.
fn fraction_bytes(digits: &str, twos: u32, fives: u32) -> Option<u64> {
    let digits = digits.trim_end_matches('0');
    // 0.DIGITS = F / 10^n, F not a multiple of 10. F x 2^twos x 5^fives / (2^n x 5^n) is
    // whole only if n <= twos (F lacks a 2 or a 5); then it is F / 5^(n - fives) x
    // 2^(twos - n) when n >= fives (5^(n - fives) must divide F), else F x 5^(fives - n) x
    // 2^(twos - n), where F < 10^fives fits.
    let n = digits.len() as u32;
    if n > twos {
        return None;
    }
    if n < fives {
        let f: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        return u64::try_from((f * 5u128.pow(fives - n)) << (twos - n)).ok();
    }
    let divisor = 5u128.pow(n - fives); // n <= 50: fits.
    let (mut q, mut r) = (0u128, 0u128);
    for d in digits.bytes() {
        let cur = r * 10 + u128::from(d - b'0');
        (q, r) = (q * 10 + cur / divisor, cur % divisor);
    }
    // q < 2^n x 5^fives, so the result is below 2^twos x 5^fives, a unit.
    (r == 0).then(|| (q << (twos - n)) as u64)
}

/// A minus sign before a number (not before an option name given where a value belongs).
fn negative(t: &str) -> bool {
    t.strip_prefix('-')
        .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
}

/// Parses a duration as fio does for `runtime`: plain numbers are seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    parse_time(text, 1_000_000)
}

/// Parses a duration as fio does for `thinktime`: plain numbers are microseconds.
pub fn parse_duration_us(text: &str) -> Result<std::time::Duration, String> {
    parse_time(text, 1)
}

/// A duration whose plain numbers count `unit_us` microseconds each.
fn parse_time(text: &str, unit_us: u64) -> Result<std::time::Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    if negative(&t) {
        return Err(format!("'{text}': a duration cannot be negative"));
    }
    if t.starts_with('(') {
        return arithmetic_time(text, unit_us);
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. 30, 30s, 2m)"))?;
    let micros = match suffix {
        "" => n.checked_mul(unit_us),
        "s" | "sec" => n.checked_mul(1_000_000),
        "ms" | "msec" => n.checked_mul(1_000),
        "us" | "usec" => Some(n),
        "m" | "min" => n.checked_mul(60_000_000),
        "h" => n.checked_mul(3_600_000_000),
        "d" => n.checked_mul(86_400_000_000),
        other => return Err(format!("'{text}': unknown time suffix '{other}'")),
    }
    .ok_or_else(|| format!("'{text}' is too long"))?;
    Ok(std::time::Duration::from_micros(micros))
}

/// A duration in parentheses, by fio's evaluator: in microseconds when it names a unit,
/// else in the option's; fio keeps only the whole seconds of one counted in seconds.
fn arithmetic_time(text: &str, unit_us: u64) -> Result<std::time::Duration, String> {
    let v =
        evaluate(text.trim(), Grammar::Fio { time: true }).map_err(|e| format!("'{text}': {e}"))?;
    let n = u64::try_from(v.int).map_err(|_| format!("'{text}': a duration cannot be negative"))?;
    let micros = match v.units {
        true => n,
        false => n
            .checked_mul(unit_us)
            .ok_or_else(|| format!("'{text}' is too long"))?,
    };
    let micros = if unit_us == 1_000_000 {
        micros - micros % 1_000_000
    } else {
        micros
    };
    Ok(std::time::Duration::from_micros(micros))
}

/// The values fio puts in place of its keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// `$ncpus`: the CPUs configured.
    pub ncpus: u64,
    /// `$pagesize`: bytes per page.
    pub pagesize: u64,
    /// `$mb_memory`: physical memory in MiB.
    pub mb_memory: u64,
}

impl Machine {
    /// This machine's.
    pub fn this() -> Machine {
        // SAFETY: sysconf has no preconditions.
        let (cpus, page) = unsafe {
            (
                libc::sysconf(libc::_SC_NPROCESSORS_CONF),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Machine {
            ncpus: u64::try_from(cpus).unwrap_or(1),
            pagesize: u64::try_from(page).unwrap_or(4096),
            mb_memory: crate::job::physical_memory() >> 20,
        }
    }
}

/// `value` with fio's `$ncpus`, `$pagesize` and `$mb_memory` replaced by `machine`'s; a
/// value that had one and has an operator (`8*$mb_memory`) is computed as fio has `bc`
/// compute it: whole numbers only.
pub fn substitute_keywords<'a>(value: &'a str, machine: &Machine) -> Result<Cow<'a, str>, String> {
    let keywords = [
        ("$pagesize", machine.pagesize),
        ("$mb_memory", machine.mb_memory),
        ("$ncpus", machine.ncpus),
    ];
    if !keywords.iter().any(|(word, _)| value.contains(word)) {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = value.to_string();
    for (word, v) in keywords {
        out = out.replace(word, &v.to_string());
    }
    if !out.contains(['+', '-', '*', '/']) || out.contains('\'') {
        return Ok(Cow::Owned(out));
    }
    let v = evaluate(&out, Grammar::Bc).map_err(|e| {
        format!("'{value}' is {out}, which fio has bc compute, whole numbers only: {e}")
    })?;
    Ok(Cow::Owned(v.int.to_string()))
}

/// Formats bytes the way fio prints them (`1MiB`, `4KiB`, `1536B`).
pub fn format_size(bytes: u64) -> String {
    // Up to PiB, the largest suffix parse_size reads back.
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut v = bytes;
    while unit + 1 < UNITS.len() && v >= 1024 && v.is_multiple_of(1024) {
        v /= 1024;
        unit += 1;
    }
    format!("{v}{}", UNITS[unit])
}

/// Formats bytes for people, in the largest unit that fits: exact when whole (`100TiB`),
/// else to one decimal (`49.6GiB`). For messages about free space and memory, whose sizes
/// are rarely round.
pub fn format_size_approx(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let unit = (bytes.max(1).ilog2() / 10) as usize;
    let scale = 1u64 << (10 * unit);
    if bytes.is_multiple_of(scale) {
        format!("{}{}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1}{}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_base_1024() {
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").unwrap_err().contains("negative"));
        assert!(parse_size(" -1m").unwrap_err().contains("negative"));
        assert!(parse_size("--rw").unwrap_err().contains("is not a size"));
        assert!(parse_size("16777216t").unwrap_err().contains("too large"));
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("4x").unwrap_err().contains("suffix"));
        assert!(parse_size("99999999999999999999p").is_err());
        assert!(parse_size("1.3").is_err());
    }

    #[test]
    fn kb_base_reads_prefixes_as_fio_does() {
        // fio's HOWTO, kb_base=1024 (the default): 4 KiB is 4k, 4kb, 4K, 4KB; 1 MB is 1mi...
        // (its parser reads mi as m) and 1000ki; KiB-style prefixes are powers of 1000.
        let compat = |t: &str| parse_size_in(t, KbBase::Compat).unwrap();
        for four_kib in ["4096", "4096b", "4096B", "4k", "4kb", "4kB", "4K", "4KB"] {
            assert_eq!(compat(four_kib), 4096, "{four_kib}");
        }
        assert_eq!(compat("1KiB"), 1000);
        assert_eq!(compat("4KiB"), 4000);
        assert_eq!(compat("1MiB"), 1_000_000);
        assert_eq!(compat("1mi"), 1 << 20, "fio's parser reads mi as m");
        assert_eq!(compat("1TiB"), 1_000_000_000_000);
        assert_eq!(compat("1.5KiB"), 1500);
        // kb_base=1000: as the standards have it.
        let si = |t: &str| parse_size_in(t, KbBase::Si).unwrap();
        for four_kib in ["4096", "4kib", "4kiB", "4KiB"] {
            assert_eq!(si(four_kib), 4096, "{four_kib}");
        }
        assert_eq!(
            si("4Ki"),
            4000,
            "fio's parser reads ki as k (its HOWTO says 4096)"
        );
        assert_eq!(si("1m"), 1_000_000);
        assert_eq!(si("1000k"), 1_000_000);
        assert_eq!(si("1mib"), 1 << 20);
        assert_eq!(si("1ti"), 1_000_000_000_000, "fio's parser reads ti as t");
        assert_eq!(si("0.5k"), 500);
        assert!(parse_size_in("0.0005k", KbBase::Si).is_err(), "half a byte");
        assert!(iec_read_as_decimal("4KiB", KbBase::Compat));
        assert!(!iec_read_as_decimal("4KiB", KbBase::Si));
        assert!(!iec_read_as_decimal("4k", KbBase::Compat));
        assert_eq!(KbBase::parse("kb_base", "1000"), Ok(KbBase::Si));
        assert!(KbBase::parse("kb_base", "1001").is_err());
    }

    #[test]
    fn hex_and_arithmetic_sizes() {
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("(2*4k)"), Ok(8192));
        assert_eq!(
            parse_size("(4KiB)"),
            Ok(4000),
            "KiB is 1000 in fio's expressions"
        );
        assert_eq!(
            parse_size_in("(4KiB)", KbBase::Si),
            Ok(4000),
            "whatever kb_base"
        );
        assert!(parse_size("(1-2)").unwrap_err().contains("negative"));
        assert!(parse_size("(2*)").unwrap_err().starts_with("'(2*)': "));
        assert!(parse_size("0xg").is_err());
    }

    #[test]
    fn keywords_are_the_machines_and_bc_computes_with_them() {
        let m = Machine {
            ncpus: 8,
            pagesize: 4096,
            mb_memory: 16000,
        };
        let sub = |v: &str| substitute_keywords(v, &m).map(|c| c.into_owned());
        assert_eq!(sub("$ncpus").unwrap(), "8");
        assert_eq!(sub("${ncpus}x").unwrap(), "${ncpus}x", "not a keyword");
        assert_eq!(sub("$pagesize").unwrap(), "4096");
        assert_eq!(
            sub("8*$mb_memory").unwrap(),
            "128000",
            "bytes: fio has bc compute it"
        );
        assert_eq!(sub("$ncpus/3").unwrap(), "2", "bc's whole numbers");
        assert_eq!(sub("$ncpus*2-1").unwrap(), "15");
        assert_eq!(sub("4k").unwrap(), "4k", "no keyword, untouched");
        let e = sub("$mb_memory*2m").unwrap_err();
        assert!(e.contains("whole numbers only"), "{e}");
        assert!(Machine::this().ncpus >= 1 && Machine::this().pagesize >= 512);
    }

    #[test]
    fn durations_default_to_seconds() {
        use std::time::Duration;
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
        assert!(parse_duration("-1").unwrap_err().contains("negative"));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("(2*3)").unwrap(), Duration::from_secs(6));
        assert_eq!(parse_duration("(2m)").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("(1500ms)").unwrap(),
            Duration::from_secs(1),
            "fio keeps the whole seconds of a seconds option"
        );
        assert_eq!(parse_duration_us("10").unwrap(), Duration::from_micros(10));
        assert_eq!(
            parse_duration_us("(10ms+5)").unwrap(),
            Duration::from_micros(10_005)
        );
        assert_eq!(parse_duration_us("2s").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn sizes_format_like_fio() {
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(8 << 60), "8192PiB");
    }

    #[test]
    fn approximate_sizes_are_exact_when_round() {
        assert_eq!(format_size_approx(1 << 20), "1MiB");
        assert_eq!(format_size_approx(100 << 40), "100TiB");
        assert_eq!(format_size_approx(1000), "1000B");
        assert_eq!(format_size_approx(1536), "1.5KiB");
        assert_eq!(format_size_approx((49 << 30) + (600 << 20) + 5), "49.6GiB");
        assert_eq!(format_size_approx(u64::MAX), "16.0EiB");
    }
}
