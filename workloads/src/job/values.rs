//! The value parsers behind the option table: each reads one option's text and says, in
//! its error, `key=value` and what was expected.

use std::path::PathBuf;
use std::time::Duration;

use super::PerDir;
use crate::units::{evaluate_int, iec_read_as_decimal, parse_duration, parse_size_in, KbBase};
use crate::SECTOR_SIZE;

pub(crate) fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" | "true" | "yes" | "on" | "" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        v => Err(format!("{key}={v}: expected 0 or 1")),
    }
}

/// A whole number from `min` to `max`; a negative, oversized or non-numeric value is an
/// error saying which.
pub(crate) fn int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, String> {
    let v = value.trim();
    if v.starts_with('(') {
        let n = evaluate_int(v).map_err(|e| format!("{key}={value}: {e}"))?;
        return within(key, value, n, min, max);
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    // Any minus sign (even `-0`) where no negative value is allowed says so.
    if min >= 0 && v.strip_prefix('-').is_some_and(digits) {
        return Err(format!(
            "{key}={value}: cannot be negative; must be at least {min}"
        ));
    }
    let n: i64 = match v.parse() {
        Ok(n) => n,
        Err(_) if v.strip_prefix('-').is_some_and(digits) => {
            return Err(format!("{key}={value}: must be at least {min}"))
        }
        Err(_) if digits(v) => return Err(format!("{key}={value}: at most {max}")),
        Err(_) => return Err(format!("{key}={value}: expected a whole number")),
    };
    within(key, value, n, min, max)
}

fn within(key: &str, value: &str, n: i64, min: i64, max: i64) -> Result<i64, String> {
    if n < min {
        return Err(format!("{key}={value}: must be at least {min}"));
    }
    if n > max {
        return Err(format!("{key}={value}: at most {max}"));
    }
    Ok(n)
}

/// [`int`] for the counts a job keeps in `u32`.
pub(crate) fn count(key: &str, value: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = int(key, value, i64::from(min), i64::from(max))?;
    Ok(u32::try_from(n).expect("within u32 bounds"))
}

pub(crate) fn percent(key: &str, value: &str) -> Result<u32, String> {
    let v: u32 = value
        .trim()
        .parse()
        .map_err(|_| format!("{key}={value}: expected a percentage, 0 to 100"))?;
    if v > 100 {
        return Err(format!("{key}={value}: a percentage is at most 100"));
    }
    Ok(v)
}

pub(crate) fn non_empty<'a>(key: &str, value: &'a str) -> Result<&'a str, String> {
    match value.trim() {
        "" => Err(format!("{key}: needs a value")),
        v => Ok(v),
    }
}

pub(crate) fn path(key: &str, value: &str) -> Result<PathBuf, String> {
    non_empty(key, value).map(PathBuf::from)
}

/// A size, its prefix read by `kb` (fio's `kb_base`).
pub(crate) fn size(key: &str, value: &str, kb: KbBase) -> Result<u64, String> {
    parse_size_in(value, kb).map_err(|e| format!("{key}={value}: {e}"))
}

/// A size that must be whole 4 KiB sectors: one that is not because fio's default
/// `kb_base=1024` reads its `KiB`-style prefix as a power of 1000 says so (the other
/// multiples are the job's checks, which see every option).
pub(crate) fn sector_size(key: &str, value: &str, kb: KbBase) -> Result<u64, String> {
    let bytes = size(key, value, kb)?;
    if !bytes.is_multiple_of(SECTOR_SIZE) && iec_read_as_decimal(value, kb) {
        return Err(format!(
            "{key}={}: {bytes} bytes, not whole 4KiB checksum sectors: with kb_base=1024, \
             fio's default, fio reads KiB, MiB... as powers of 1000; write k, m... for \
             powers of 1024, or set kb_base=1000",
            value.trim()
        ));
    }
    Ok(bytes)
}

/// A duration; zero is `None`, fio's "not set".
pub(crate) fn duration(key: &str, value: &str) -> Result<Option<Duration>, String> {
    let d = parse_duration(value).map_err(|e| format!("{key}={value}: {e}"))?;
    Ok((!d.is_zero()).then_some(d))
}

/// fio's `R`, `R,W`, `,W`, `R,` forms (and `R,W,T`, the trims' ignored); one value applies
/// to both directions.
pub(crate) fn per_dir(
    key: &str,
    value: &str,
    one: impl Fn(&str) -> Result<u64, String>,
) -> Result<PerDir, String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let get = |p: &str| if p.is_empty() { Ok(0) } else { one(p) };
    match parts[..] {
        [both] => {
            let v = one(both)?;
            Ok(PerDir { read: v, write: v })
        }
        // A third value is the trims', and csumbench issues none.
        [r, w] | [r, w, _] => Ok(PerDir {
            read: get(r)?,
            write: get(w)?,
        }),
        _ => Err(format!("{key}={value}: expected R, R,W or R,W,T")),
    }
}

/// fio's CPU list: `0-3,5,8-15`.
pub(crate) fn cpu_list(key: &str, value: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("{key}={value}: expected a CPU list such as 0-3,5");
    let cpu = |t: &str| -> Result<usize, String> {
        let c: usize = t.trim().parse().map_err(|_| bad())?;
        if c >= libc::CPU_SETSIZE as usize {
            return Err(format!(
                "{key}={value}: CPU {c} is beyond the kernel's limit"
            ));
        }
        Ok(c)
    };
    let mut cpus = Vec::new();
    for part in value.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(cpu(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// fio's `cpumask`: a bit per CPU, decimal or `0x` hex.
pub(crate) fn cpu_mask(key: &str, value: &str) -> Result<Vec<usize>, String> {
    let mask = seed(key, value)?;
    if mask == 0 {
        return Err(format!("{key}={value}: a mask without any CPU"));
    }
    Ok((0..64).filter(|cpu| mask & (1 << cpu) != 0).collect())
}

/// `a, b or c`: the choices an error message offers.
pub(crate) fn alternatives(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A seed: decimal, or hexadecimal with `0x`.
pub(crate) fn seed(key: &str, value: &str) -> Result<u64, String> {
    let v = value.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    }
    .map_err(|_| format!("{key}={value}: expected a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_say_which_bound_they_miss() {
        assert_eq!(int("k", "-1", -1, 1), Ok(-1));
        assert_eq!(
            int("k", "-2", -1, 1).unwrap_err(),
            "k=-2: must be at least -1"
        );
        assert_eq!(
            int("k", "-2", 0, 1).unwrap_err(),
            "k=-2: cannot be negative; must be at least 0"
        );
        assert_eq!(
            int("k", "-99999999999999999999", 1, 9).unwrap_err(),
            "k=-99999999999999999999: cannot be negative; must be at least 1"
        );
        assert_eq!(
            int("k", "99999999999999999999", 1, 9).unwrap_err(),
            "k=99999999999999999999: at most 9"
        );
        assert_eq!(int("k", " 7 ", 1, 9), Ok(7));
        assert_eq!(
            int("k", "7k", 1, 9).unwrap_err(),
            "k=7k: expected a whole number"
        );
        assert_eq!(count("k", "4294967295", 0, u32::MAX), Ok(u32::MAX));
    }

    #[test]
    fn alternatives_read_as_a_sentence() {
        assert_eq!(alternatives(&[]), "");
        assert_eq!(alternatives(&["a"]), "a");
        assert_eq!(alternatives(&["a", "b"]), "a or b");
        assert_eq!(alternatives(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn cpu_masks_are_bits() {
        assert_eq!(cpu_mask("m", "0x5"), Ok(vec![0, 2]));
        assert_eq!(cpu_mask("m", "12"), Ok(vec![2, 3]));
        assert!(cpu_mask("m", "0").is_err());
        assert!(cpu_mask("m", "x").is_err());
    }

    #[test]
    fn flags_take_fios_spellings() {
        for yes in ["1", "true", "yes", "on", ""] {
            assert_eq!(flag("f", yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "no", "off"] {
            assert_eq!(flag("f", no), Ok(false), "{no}");
        }
        assert_eq!(flag("f", "2").unwrap_err(), "f=2: expected 0 or 1");
    }
}
