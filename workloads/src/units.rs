//! fio's number syntax: sizes with k/m/g/t suffixes in base 1024, times with s/m/h/ms/us.

/// Parses a size such as `4k`, `1m`, `1MiB`, `256` (bytes). Base 1024, as fio's default
/// `kb_base=1024`; `KB`-style suffixes are also 1024 there, and so here.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
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
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size (expected e.g. 4k, 1m, 2g)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("'{text}' is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// Parses a duration as fio does for `runtime`: plain numbers are seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim().to_ascii_lowercase();
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
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut v = bytes;
    while unit + 1 < UNITS.len() && v >= 1024 && v.is_multiple_of(1024) {
        v /= 1024;
        unit += 1;
    }
    format!("{v}{}", UNITS[unit])
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
        assert!(parse_size("-1").is_err());
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
    }

    #[test]
    fn sizes_format_like_fio() {
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(1536), "1536B");
    }
}
