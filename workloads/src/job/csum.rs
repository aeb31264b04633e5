//! Which checksum a job computes per 4 KiB sector, by `csum=` or fio's `verify=`. The
//! strategies crate computes them and workloads knows nothing of strategies, so this is a
//! name checked against the list here: a job naming an unknown checksum is refused when it
//! is read, before anything runs. A checksum added to strategies is added to [`CSUMS`] and,
//! where fio has a name for it, to [`VERIFY`].

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

use super::values::{alternatives, non_empty};

/// Every name `csum=` takes (btrfs's four checksums, and none), besides `cost:TIME`.
pub const CSUMS: &[&str] = &["crc32c", "xxhash64", "sha256", "blake2b", "none"];

/// Other names `csum=` takes for them.
const ALIASES: &[&str] = &["xxhash", "blake2b-256"];

/// The synthetic checksum: `cost:TIME` per 4 KiB sector. Its TIME is the strategies
/// crate's to read (it knows the range it can calibrate); the harness parses it with the
/// job, before anything runs.
const COST: &str = "cost:";

/// fio's `verify=` names and the checksum each means here. fio's `xxhash` is XXH32;
/// btrfs's is xxhash64, which is what csumbench measures.
pub const VERIFY: &[(&str, &str)] = &[
    ("crc32c", "crc32c"),
    ("crc32c-intel", "crc32c"),
    ("xxhash", "xxhash64"),
    ("sha256", "sha256"),
    ("0", "none"),
    ("none", "none"),
];

/// A checksum name, one of [`CSUMS`]; it reads as the `&str` it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CsumName(String);

impl CsumName {
    /// `csum=NAME`.
    pub fn parse(key: &str, value: &str) -> Result<CsumName, String> {
        let name = non_empty(key, value)?;
        if let Some(cost) = name.strip_prefix(COST) {
            if cost.is_empty() {
                return Err(format!(
                    "{key}={name}: give the cost per sector, e.g. cost:2us"
                ));
            }
        } else if !CSUMS.contains(&name) && !ALIASES.contains(&name) {
            let mut all = CSUMS.to_vec();
            all.push("cost:TIME");
            return Err(format!("{key}={name}: expected {}", alternatives(&all)));
        }
        Ok(CsumName(name.to_string()))
    }

    /// fio's `verify=NAME`, mapped onto ours.
    pub fn from_verify(key: &str, value: &str) -> Result<CsumName, String> {
        let v = value.trim();
        match VERIFY.iter().find(|(fio, _)| *fio == v) {
            Some((_, ours)) => Ok(CsumName(ours.to_string())),
            None => {
                let fio: Vec<&str> = VERIFY.iter().map(|(fio, _)| *fio).collect();
                Err(format!(
                    "{key}={v}: csumbench checksums 4KiB sectors with btrfs's algorithms; \
                     expected {} (csum= also takes blake2b and cost:TIME)",
                    alternatives(&fio)
                ))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CsumName {
    fn default() -> Self {
        CsumName(CSUMS[0].to_string())
    }
}

impl Deref for CsumName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CsumName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for CsumName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csum_names_are_checked_when_read() {
        for name in CSUMS {
            assert_eq!(CsumName::parse("csum", name).unwrap(), *name);
        }
        assert_eq!(
            CsumName::parse("csum", "md5").unwrap_err(),
            "csum=md5: expected crc32c, xxhash64, sha256, blake2b, none or cost:TIME"
        );
        for ok in [
            "xxhash",
            "blake2b-256",
            "cost:2us",
            "cost:1500ns",
            "cost:10ms",
        ] {
            assert_eq!(CsumName::parse("csum", ok).unwrap(), ok);
        }
        assert!(CsumName::parse("csum", "cost:").is_err());
        assert_eq!(
            CsumName::parse("csum", " ").unwrap_err(),
            "csum: needs a value"
        );
        assert_eq!(CsumName::default().as_str(), "crc32c");
    }

    #[test]
    fn verify_maps_fios_names() {
        assert_eq!(
            CsumName::from_verify("verify", "crc32c-intel").unwrap(),
            "crc32c"
        );
        assert_eq!(CsumName::from_verify("verify", "0").unwrap(), "none");
        assert_eq!(
            CsumName::from_verify("verify", "xxhash").unwrap(),
            "xxhash64"
        );
        assert_eq!(
            CsumName::from_verify("verify", "md5").unwrap_err(),
            "verify=md5: csumbench checksums 4KiB sectors with btrfs's algorithms; expected \
             crc32c, crc32c-intel, xxhash, sha256, 0 or none (csum= also takes blake2b and \
             cost:TIME)"
        );
        for (_, ours) in VERIFY {
            assert!(CSUMS.contains(ours), "{ours}");
        }
    }
}
