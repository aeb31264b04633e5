//! fio's number syntax: sizes with k/m/g/t suffixes in base 1024, times with s/m/h/ms/us.

/// Parses a size such as `4k`, `1m`, `1MiB`, `256` (bytes). Base 1024, as fio's default
/// `kb_base=1024`; `KB`-style suffixes are also 1024 there, and so here.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if negative(t) {
        return Err(format!("'{text}': a size cannot be negative"));
    }
    if num.is_empty() {
        return Err(format!("'{text}' is not a size (expected e.g. 4k, 1m, 2g)"));
    }
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        other => return Err(format!("'{text}': unknown size suffix '{other}'")),
    };
    // In integers, not through an f64: every digit counts, up to u64::MAX.
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
        return Err(format!("'{text}' is not a size (expected e.g. 4k, 1m, 2g)"));
    }
    let too_large = || format!("'{text}' is too large (sizes stop below 16EiB, 2^64 bytes)");
    let whole: u64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| too_large())?,
    };
    let frac = fraction_bytes(frac, shift)
        .ok_or_else(|| format!("'{text}' is not a whole number of bytes"))?;
    whole
        .checked_mul(1 << shift)
        .and_then(|b| b.checked_add(frac))
        .ok_or_else(too_large)
}

/// `0.DIGITS` × 2^`shift` (`shift` at most 50), when that is a whole number.
fn fraction_bytes(digits: &str, shift: u32) -> Option<u64> {
    let digits = digits.trim_end_matches('0');
    // 0.DIGITS = F / 10^n, with F not a multiple of 10; F × 2^shift / (2^n × 5^n) is whole
    // only if n <= shift and 5^n divides F, and then it is F / 5^n × 2^(shift - n).
    let n = digits.len() as u32;
    if n > shift {
        return None;
    }
    let five_n = 5u128.pow(n); // n <= 50: fits.
    let (mut q, mut r) = (0u128, 0u128);
    for d in digits.bytes() {
        let cur = r * 10 + u128::from(d - b'0');
        (q, r) = (q * 10 + cur / five_n, cur % five_n);
    }
    // q < 2^n, so q × 2^(shift - n) < 2^shift.
    (r == 0).then(|| (q << (shift - n)) as u64)
}

/// A minus sign before a number (not before an option name given where a value belongs).
fn negative(t: &str) -> bool {
    t.strip_prefix('-')
        .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
}

/// Parses a duration as fio does for `runtime`: plain numbers are seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    if negative(&t) {
        return Err(format!("'{text}': a duration cannot be negative"));
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. 30, 30s, 2m)"))?;
    let micros = match suffix {
        "" | "s" | "sec" => n.checked_mul(1_000_000),
        "ms" | "msec" => n.checked_mul(1_000),
        "us" | "usec" => Some(n),
        "m" | "min" => n.checked_mul(60_000_000),
        "h" => n.checked_mul(3_600_000_000),
        other => return Err(format!("'{text}': unknown time suffix '{other}'")),
    }
    .ok_or_else(|| format!("'{text}' is too long"))?;
    Ok(std::time::Duration::from_micros(micros))
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
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
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
    fn durations_default_to_seconds() {
        use std::time::Duration;
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
        assert!(parse_duration("-1").unwrap_err().contains("negative"));
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
